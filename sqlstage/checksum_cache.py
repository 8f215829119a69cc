"""Migration files that have not changed since the last run are not read or hashed again.

The cache is one JSON file beside the run logs (`logs/migrations/.cache/checksums.json`, in a
folder with its own `.gitignore`). For each file name it keeps what `parse_text` learned that
the commands need without the SQL (checksum, rollback line, no-transaction flag, the
whole-section checksum of a file with directive lines) under the file's identity: device,
inode, size, mtime_ns and ctime_ns. A file is trusted only while all five match a fresh
`stat`: an editor that rewrites a file changes its mtime and ctime (the kernel sets ctime;
`os.utime` cannot put it back), and one that replaces it changes its inode.

The cache never holds SQL. A cached migration reads its file the first time its `forward` or
`rollback` is used (a pending migration that is about to run, a diff, a lint) and checks that
the text still has the cached checksum, rollback line and flag; if it does not, the file changed
while sqlstage was running and the command stops with a MigrationFileError.

Entries are written only for files whose mtime and ctime are a few seconds old, as git does
for its index: a file written in the same clock tick as the cache could be edited again within
that tick without its timestamps moving. The cache is keyed by sqlstage's version and a format
number; a cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlstage import __version__
from sqlstage.errors import MigrationFileError, UnwrittenMigration
from sqlstage.migration import Migration, read_migration

CACHE_FILE = "checksums.json"
FORMAT = 2  # 2: the whole-section checksum of files with directive lines
#: files changed this recently are not cached (see the module docstring)
SETTLE_NS = 3_000_000_000

Identity = tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


class CachedMigration(Migration):
    """A Migration built from the cache: `forward`, `rollback` and `path` are filled in on
    first use; the SQL comes from the file then, never from the cache."""

    _folder: Path

    def __getattr__(self, name: str) -> Any:
        if name == "path":
            path = self.__dict__["path"] = self._folder / f"{self.name}.sql"
            return path
        if name in ("forward", "rollback", "rollback_kind", "rollback_note"):
            self._read()
            return self.__dict__[name]
        raise AttributeError(name)

    def _read(self) -> None:
        fresh = read_migration(self.path)
        if (fresh.checksum, fresh.rollback_line, fresh.no_transaction) != (
            self.checksum,
            self.rollback_line,
            self.no_transaction,
        ):
            raise MigrationFileError(
                f"{self.path}: changed while sqlstage was running",
                "run the command again; it will read the file as it is now",
            )
        self.__dict__.update(
            forward=fresh.forward,
            rollback=fresh.rollback,
            rollback_kind=fresh.rollback_kind,
            rollback_note=fresh.rollback_note,
        )


def _cached(folder: Path, number: int, name: str, entry: list[Any]) -> Migration:
    migration = object.__new__(CachedMigration)
    # a frozen dataclass: its fields are set the way its own __init__ sets them
    migration.__dict__.update(
        _folder=folder,
        number=number,
        name=name,
        checksum=entry[5],
        rollback_line=entry[6],
        no_transaction=entry[7],
        legacy_checksum=entry[8],
    )
    return migration


def read_migrations(
    folder: Path,
    numbered: list[tuple[int, str]],
    cache_dir: Path | None,
    unwritten: list[Path] | None = None,
) -> list[Migration]:
    """`(number, file name)` pairs of files in `folder` -> Migration values in that order, as
    `read_migration` gives them; with a `cache_dir`, unchanged files are not read. Given an
    `unwritten` list, files with no SQL yet are added to it and left out instead of raising."""
    read = read_migration if unwritten is None else _reader(unwritten)
    if cache_dir is None:
        return [m for _, name in numbered if (m := read(folder / name)) is not None]
    cache = _load(cache_dir / CACHE_FILE, folder)
    fresh: dict[str, list[Any]] = {}
    migrations: list[Migration] = []
    cutoff = time.time_ns() - SETTLE_NS
    try:
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return [m for _, name in numbered if (m := read(folder / name)) is not None]
    try:
        for number, name in numbered:
            identity = _identity(name, directory)
            entry = cache.get(name)
            if identity is not None and entry is not None and entry[:5] == list(identity):
                migrations.append(_cached(folder, number, name[: -len(".sql")], entry))
                fresh[name] = entry
                continue
            migration = read(folder / name)
            if migration is None:
                continue
            migrations.append(migration)
            if identity is not None and max(identity[3], identity[4]) < cutoff:
                fresh[name] = [
                    *identity,
                    migration.checksum,
                    migration.rollback_line,
                    migration.no_transaction,
                    migration.legacy_checksum,
                ]
    finally:
        os.close(directory)
    if fresh != cache:
        _save(cache_dir, folder, fresh)
    return migrations


def _reader(unwritten: list[Path]) -> Callable[[Path], Migration | None]:
    def read(path: Path) -> Migration | None:
        try:
            return read_migration(path)
        except UnwrittenMigration:
            unwritten.append(path)
            return None

    return read


def _identity(name: str, directory: int) -> Identity | None:
    try:
        st = os.stat(name, dir_fd=directory)
    except OSError:
        return None  # read_migration names the error
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _load(path: Path, folder: Path) -> dict[str, list[Any]]:
    try:
        document = json.loads(path.read_bytes())
        if (document["format"], document["version"], document["folder"]) == (
            FORMAT,
            __version__,
            str(folder.resolve()),
        ):
            files: dict[str, list[Any]] = document["files"]
            return files
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no cache yet, or one this version cannot use: it is rebuilt
    return {}


def _save(cache_dir: Path, folder: Path, files: dict[str, list[Any]]) -> None:
    document = {
        "format": FORMAT,
        "version": __version__,
        "folder": str(folder.resolve()),
        "files": files,
    }
    temp = cache_dir / f".{CACHE_FILE}.{os.getpid()}.tmp"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        ignore = cache_dir / ".gitignore"
        if not ignore.exists():  # ignored by git wherever log_dir points
            ignore.write_text("# sqlstage's checksum cache: never commit it\n*\n")
        temp.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
        os.replace(temp, cache_dir / CACHE_FILE)
    except OSError:  # a read-only checkout: run without a cache
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
