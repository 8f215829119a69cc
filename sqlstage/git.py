"""What a file held at a git revision: the committed status.json a pull request is checked
against (`sqlstage check-edits --base REF`), so the branch cannot rewrite the record it is
judged by."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlstage.errors import ConfigError


def file_at(revision: str, path: Path) -> str | None:
    """`path`'s text at `revision`; None when the file did not exist there.

    Raises ConfigError (exit 2) when git is missing, `path` is outside a repository, or
    git does not know `revision`."""
    folder = path.parent
    _check_revision(folder, revision, "--base")
    shown = _git(folder, "show", f"{revision}:./{path.name}")
    return shown.stdout if shown.returncode == 0 else None


def changed_since(revision: str, folder: Path) -> set[Path]:
    """Files under `folder` added, modified or renamed since the point where the current
    branch left `revision` (what a pull request against `revision` changes), working
    tree included."""
    _check_revision(folder, revision, "--since")
    fork = _git(folder, "merge-base", revision, "HEAD")
    start = fork.stdout.strip() if fork.returncode == 0 else revision
    top = Path(_git(folder, "rev-parse", "--show-toplevel").stdout.strip())
    names = _git(
        folder, "diff", "--name-only", "--no-renames", "--diff-filter=AM", start, "--", "."
    )
    untracked = _git(folder, "ls-files", "--others", "--exclude-standard", "--full-name", ".")
    lines = [*names.stdout.splitlines(), *untracked.stdout.splitlines()]
    return {(top / line).resolve() for line in lines if line}


def _check_revision(folder: Path, revision: str, option: str) -> None:
    if revision.startswith("-"):  # never an option to git
        raise ConfigError(f"{option} {revision}: not a git revision")
    known = _git(folder, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if known.returncode != 0:
        raise ConfigError(
            f"{option} {revision}: git knows no such revision in {folder}",
            "fetch it first (in a GitHub Action: actions/checkout with fetch-depth: 0)",
        )


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as err:
        raise ConfigError(
            "comparing with a git revision needs git, which is not installed"
        ) from err
    if result.returncode == 128 and "not a git repository" in result.stderr:
        raise ConfigError(
            f"{folder} is not in a git repository: there is no revision to compare with"
        )
    return result
