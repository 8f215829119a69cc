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
    if revision.startswith("-"):  # never an option to git
        raise ConfigError(f"--base {revision}: not a git revision")
    known = _git(folder, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if known.returncode != 0:
        raise ConfigError(
            f"--base {revision}: git knows no such revision in {folder}",
            "fetch it first (in a GitHub Action: actions/checkout with fetch-depth: 0)",
        )
    shown = _git(folder, "show", f"{revision}:./{path.name}")
    return shown.stdout if shown.returncode == 0 else None


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as err:
        raise ConfigError("--base needs git, and git is not installed") from err
    if result.returncode == 128 and "not a git repository" in result.stderr:
        raise ConfigError(f"--base: {folder} is not in a git repository")
    return result
