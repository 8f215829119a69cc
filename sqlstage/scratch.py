"""Scratch databases for `verify`: made by sqlstage, used once, dropped afterwards.

A server database (PostgreSQL, MySQL/MariaDB): `CREATE DATABASE sqlstage_verify_<random>` on
the server of a base URL (the dev environment's, or `verify_url`), dropped at the end
(`WITH (FORCE)` on PostgreSQL), as its driver's `Dialect` spells them. SQLite: a file in a new
temporary folder, removed at the end. With `keep`, neither is removed, so it can be inspected.

A `Workspace` is the connection verify works through, and makes throwaway copies of the
scratch database in its current state (for a migration that cannot run in a transaction):
`CREATE DATABASE ... TEMPLATE` on PostgreSQL, SQLite's backup API for a file.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver, StatementError
from sqlstage.errors import ConfigError, ConnectionFailed
from sqlstage.urls import DatabaseUrl, parse_url

PREFIX = "sqlstage_verify_"


@dataclass(frozen=True)
class Scratch:
    url: DatabaseUrl
    #: the database's name (PostgreSQL) or file (SQLite)
    name: str
    #: the URL it was made next to (where copies are made too)
    base: DatabaseUrl | None = None


class Workspace:
    """The open connection to a scratch database (`driver`), and copies of it on demand."""

    def __init__(self, scratch: Scratch, application_name: str) -> None:
        self.scratch = scratch
        self.application_name = application_name
        self.driver = connect(scratch.url, application_name)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def copy(self) -> Iterator[Driver]:
        """A connection to a copy of the scratch database as it is now (nothing may be left
        uncommitted); the copy is dropped when the block ends."""
        from sqlstage.registry import backend

        if self.scratch.url.dialect == "postgresql":
            with self._postgres_copy() as driver:
                yield driver
            return
        if not backend(self.scratch.url.dialect).embedded:
            with self._dumped_copy() as driver:
                yield driver
            return
        folder = Path(tempfile.mkdtemp(prefix=PREFIX))
        try:
            self.driver.backup(folder / "copy.db")
            url = parse_url(f"sqlite:///{folder / 'copy.db'}", folder, "verify")
            with connect(url, self.application_name) as driver:
                yield driver
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def _dumped_copy(self) -> Iterator[Driver]:
        """A server with no template copy (MySQL): a new database loaded from the scratch
        database's own backup, statement by statement."""
        base = self.scratch.base or self.scratch.url
        name = PREFIX + uuid.uuid4().hex[:12]
        folder = Path(tempfile.mkdtemp(prefix=PREFIX))
        try:
            dump = folder / f"copy{self.driver.facts.backup_suffix}"
            self.driver.backup(dump)
            with _admin(base) as admin:
                admin.execute(admin.facts.create_database.format(name))
                try:
                    with connect(_with_database(base, name), self.application_name) as driver:
                        for statement in driver.split(dump.read_text(encoding="utf-8")):
                            driver.execute(statement.sql)
                        yield driver
                finally:
                    admin.execute(admin.facts.drop_database.format(name))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def _postgres_copy(self) -> Iterator[Driver]:
        # a template database may have no other session: ours steps out while it is copied
        base = self.scratch.base or self.scratch.url
        name = PREFIX + uuid.uuid4().hex[:12]
        self.driver.close()
        with _admin(base) as admin:
            try:
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.scratch.name}"')
            finally:
                self.driver = connect(self.scratch.url, self.application_name)
            try:
                with connect(_with_database(base, name), self.application_name) as driver:
                    yield driver
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(base: DatabaseUrl, keep: bool = False) -> Iterator[Scratch]:
    """A new, empty database next to `base`; removed when the block ends unless `keep`."""
    from sqlstage.registry import backend

    maker = _sqlite if backend(base.dialect).embedded else _server
    with maker(base, keep) as scratch:
        yield scratch


@contextmanager
def _sqlite(base: DatabaseUrl, keep: bool) -> Iterator[Scratch]:
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    path = folder / "verify.db"
    try:
        yield Scratch(parse_url(f"sqlite:///{path}", folder, "verify"), str(path))
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _server(base: DatabaseUrl, keep: bool) -> Iterator[Scratch]:
    name = PREFIX + uuid.uuid4().hex[:12]
    with _admin(base) as admin:
        try:
            admin.execute(admin.facts.create_database.format(name))
        except StatementError as err:
            raise ConfigError(
                f"cannot create a scratch database on {base.masked}: {err.message}",
                "give a role that may CREATE DATABASE, or set verify_url in sqlstage.toml",
            ) from err
        try:
            yield Scratch(_with_database(base, name), name, base)
        finally:
            if not keep:
                admin.execute(admin.facts.drop_database.format(name))


def _admin(base: DatabaseUrl) -> Driver:
    """A connection to the base URL's server; to its admin database (`postgres`, `mysql`)
    when the base database does not exist yet (a fresh dev server)."""
    try:
        return connect(base, "sqlstage verify")
    except ConnectionFailed:
        try:
            from importlib import import_module

            from sqlstage.registry import backend

            admin = import_module(backend(base.dialect).driver).DRIVER.facts.admin_database
            return connect(_with_database(base, admin), "sqlstage verify")
        except ConnectionFailed:
            pass
        raise


def _with_database(base: DatabaseUrl, name: str) -> DatabaseUrl:
    """The base URL pointed at another database (its query string, sslmode and all, kept)."""
    parts = urlsplit(base.raw)
    if "dbname=" in parts.query:
        raise ConfigError(
            f"{base.masked}: verify needs the database in the URL's path, not in ?dbname=",
            "write it as postgresql://user@host:5432/database",
        )
    raw = urlunsplit(parts._replace(path=f"/{name}"))
    return parse_url(raw, Path("."), "verify")
