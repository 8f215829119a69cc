"""No terminal: every command that can change a protected environment is refused before it
connects anywhere, and a URL typed at a prompt is never read from a pipe."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ProjectDir

#: nothing listens there: a command that connected would fail with exit 4, not 3
UNREACHABLE = "postgresql://app:secret@127.0.0.1:9/app"


def _run(
    project: ProjectDir, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sqlstage", "-C", str(project.root), *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        ("apply", "pro", "--yes"),
        ("rollback", "pro", "--yes"),
        ("repair", "pro", "001", "--forget", "--yes"),
        ("baseline", "pro", "001", "--yes"),
        ("verify", "--env", "pro"),
    ],
)
def test_protected_is_refused_before_any_connection(
    four: ProjectDir, command: tuple[str, ...]
) -> None:
    four.configure(pro={"url": UNREACHABLE, "protected": True})

    result = _run(four, *command)

    assert result.returncode == 3, result.stderr
    assert "pro is protected and this run has no terminal" in result.stderr
    assert "cannot connect" not in result.stderr
    assert "secret" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [("apply", "dev", "--yes"), ("verify",), ("check", "dev")])
def test_a_prompted_url_is_never_read_from_a_pipe(
    four: ProjectDir, command: tuple[str, ...]
) -> None:
    four.configure(dev={"url": "prompt"})

    result = _run(four, *command, stdin="sqlite:///piped.db\n")

    assert result.returncode == 3, result.stderr
    assert "dev's URL is typed at a prompt, and this run has no terminal" in result.stderr
    assert not (four.root / "piped.db").exists()
