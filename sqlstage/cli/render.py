"""Small formatting helpers shared by the commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    pass


def date_of(value: Any) -> str:
    """`2025-12-04` from a datetime or an ISO string; `applied` when unknown."""
    if value is None:
        return "applied"
    return str(value.isoformat() if hasattr(value, "isoformat") else value)[:10]


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path)


def annotation(severity: str, file: str, line: int, title: str, message: str, col: int = 0) -> str:
    """One GitHub Actions workflow command: `::error file=...,line=...,title=...::message`,
    escaped as the runner expects."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    where = f"file={prop(file)},line={line}" + (f",col={col}" if col else "")
    return f"::{severity} {where},title={prop(title)}::{data(message)}"
