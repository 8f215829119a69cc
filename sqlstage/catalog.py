"""The migrations folder -> the ordered tuple of `Migration` values."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlstage.checksum_cache import read_migrations
from sqlstage.errors import ConfigError, MigrationFileError
from sqlstage.migration import Migration, parse_name, read_migration, refuse_non_regular

DEFAULT_WIDTH = 3


@dataclass(frozen=True)
class Catalog:
    """Every migration in the folder, ordered by number."""

    folder: Path
    migrations: tuple[Migration, ...]
    #: files with no SQL yet, left out (read-only commands only: `load_catalog(unwritten_ok)`)
    unwritten: tuple[Path, ...] = ()

    def by_name(self) -> dict[str, Migration]:
        return {m.name: m for m in self.migrations}

    def find(self, reference: str) -> Migration:
        """A migration by file name (with or without `.sql`) or by number (`4`, `004`)."""
        wanted = Path(reference).name.removesuffix(".sql")  # a tab-completed path works too
        for migration in self.migrations:
            if wanted == migration.name or (is_number(wanted) and int(wanted) == migration.number):
                return migration
        raise ConfigError(
            f"no migration '{reference}' in {self.folder}",
            "give its file name or number; `sqlstage status` lists them",
        )

    def number_width(self) -> int:
        """How many digits new files use: the width of the existing ones, 3 when none."""
        if not self.migrations:
            return DEFAULT_WIDTH
        return len(self.migrations[-1].name.split("_", 1)[0])


def is_number(text: str) -> bool:
    """ASCII digits only: `int()` would read full-width digits (U+FF10..U+FF19) too."""
    return text.isascii() and text.isdigit()


def load_catalog(
    folder: Path, cache_dir: Path | None = None, unwritten_ok: bool = False
) -> Catalog:
    """Read every `*.sql` file in `folder`; other files (README.md, .keep) are ignored.
    With `cache_dir`, files unchanged since the last run are not read (sqlstage.checksum_cache).

    Raises MigrationFileError naming the file for a bad name, a duplicate number, a file that
    is not UTF-8 or one with no forward SQL (`unwritten_ok`: such a file is left out and
    named in `Catalog.unwritten`).
    """
    if not folder.is_dir():
        raise ConfigError(
            f"the migrations folder {folder} does not exist",
            "run `sqlstage init` or set `migrations` in sqlstage.toml",
        )
    # names, not Paths: sorting 10,000 Path objects alone took a tenth of a second
    entries = [
        entry
        for entry in os.scandir(folder)
        if entry.name.endswith(".sql") and not entry.name.startswith(".")
    ]
    for entry in entries:
        # the directory listing already says a plain file is one: no system call, and
        # anything else (a FIFO would block the read forever) is refused before it is opened
        if not entry.is_file() and parse_name(entry.name) is not None:
            refuse_non_regular(folder / entry.name)
    names = sorted(entry.name for entry in entries)
    seen: dict[int, str] = {}  # file names: building 10,000 Paths costs more than reading
    for file_name in names:
        parsed = parse_name(file_name)
        if parsed is None:
            read_migration(folder / file_name)  # raises the naming error
            continue
        number = parsed[0]
        if number in seen:
            raise MigrationFileError(
                f"{folder / file_name}: number {number} is also used by {seen[number]}",
                "give each migration its own number (`sqlstage new NAME` picks the next one)",
            )
        seen[number] = file_name
    unwritten: list[Path] | None = [] if unwritten_ok else None
    migrations = read_migrations(folder, sorted(seen.items()), cache_dir, unwritten)
    return Catalog(folder, tuple(migrations), tuple(unwritten or ()))


def next_number(folder: Path) -> tuple[int, int]:
    """The next migration's number and digit width, from the file names alone.

    `sqlstage new` must not parse the files: the newest one may still be an unfilled
    template, which `load_catalog` rejects for having no forward SQL.
    """
    if not folder.is_dir():
        load_catalog(folder)  # raises the missing-folder error
    numbered = sorted(p for path in folder.glob("*.sql") if (p := parse_name(path.name)))
    if not numbered:
        return 1, DEFAULT_WIDTH
    number, name = numbered[-1]
    return number + 1, len(name.split("_", 1)[0])
