"""Files named on `sqlstage lint`'s command line -> Migration values, whatever their name,
-> findings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlstage.errors import MigrationFileError
from sqlstage.lint.context import LintOptions
from sqlstage.lint.engine import Finding, lint_plan
from sqlstage.migration import Migration, parse_name, parse_text, read_migration

if TYPE_CHECKING:
    from sqlstage.config import Config


def lint_files(
    paths: Sequence[Path], config: Config, dialect: str
) -> tuple[list[Migration], list[Finding]]:
    """The files, read as the runner would, and their findings as one plan in the order
    given, under `[lint]` of `config`: what `sqlstage lint FILE...` reports."""
    migrations = [read_sql_file(path) for path in paths]
    return migrations, lint_plan(migrations, LintOptions.of_config(config, dialect))


def read_sql_file(path: Path) -> Migration:
    """A migration file as the runner would read it; a file without a migration name
    (`scratch.sql`) is read the same way, numbered 0."""
    if parse_name(path.name) is not None:
        return read_migration(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise MigrationFileError(f"{path}: cannot read: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise MigrationFileError(f"{path}: not valid UTF-8", "save the file as UTF-8") from err
    return parse_text(0, path.stem, path, text)
