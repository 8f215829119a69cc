"""`schema_dump`: an environment's schema as a committed text file, so a migration's effect on
the schema shows up in code review.

Written after each successful apply and rollback to an environment with `schema_dump` set,
and only when its content changed, so a run that changes nothing leaves git clean. The text
is `render_text` of a snapshot: deterministic, sorted, one object a line.
"""

from __future__ import annotations

from pathlib import Path

from sqlstage.drivers.base import Driver
from sqlstage.schema import render_text, snapshot

#: what `schema_dump = true` writes, relative to sqlstage.toml


def dump_text(driver: Driver, environment: str) -> str:
    """The file's content: a header naming the environment, then the snapshot."""
    header = (
        f"-- Schema of environment '{environment}' ({driver.dialect}), written by sqlstage after\n"
        "-- each apply and rollback. Do not edit: review it, commit it. (Not SQL to run.)\n"
    )
    body = render_text(snapshot(driver))
    return header + ("\n" + body if body else "")


def write_dump(driver: Driver, environment: str, path: Path) -> bool:
    """Write the environment's schema to `path` if it changed; returns whether it did."""
    from sqlstage.errors import ConfigError
    from sqlstage.status_file import write_atomic

    text = dump_text(driver, environment)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass  # missing or unreadable: write it
    try:
        write_atomic(path, text)
    except OSError as err:
        raise ConfigError(
            f"cannot write the schema dump {path}: {err.strerror or err}",
            "fix schema_dump in sqlstage.toml; the migrations themselves were applied",
        ) from err
    return True
