"""Files named on `sqlstage lint`'s command line -> Migration values, whatever their name."""

from __future__ import annotations

from pathlib import Path

from sqlstage.errors import MigrationFileError
from sqlstage.migration import Migration, parse_name, parse_text, read_migration


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
