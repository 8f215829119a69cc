"""Small formatting helpers shared by the commands."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    pass


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


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
