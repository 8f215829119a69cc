"""SQLite through the standard library's sqlite3: the embedded default."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlstage.drivers.base import Dialect, Driver, ServerInfo, StatementError
from sqlstage.errors import ConnectionFailed
from sqlstage.locking import FileLock
from sqlstage.sqltext import Statement, split_statements
from sqlstage.urls import DatabaseUrl

_FOREIGN_KEYS = re.compile(r"\s*PRAGMA\s+(\w+\.)?foreign_keys\b", re.IGNORECASE)


class SqliteDriver(Driver):
    facts = Dialect(name="sqlite", transactional_ddl=True, placeholder="?", backup_suffix=".db")

    def __init__(
        self,
        url: DatabaseUrl,
        application_name: str = "sqlstage",
        create: bool = True,
        pooler: str = "detect",  # no pooler sits in front of a file
        environment: str | None = None,
    ) -> None:
        super().__init__(url)
        assert url.sqlite_path is not None
        self.path = url.sqlite_path
        self.application_name = application_name
        #: a read-only command on a file that does not exist yet reads an empty database
        self.missing = not create and not self.path.exists()
        if not self.path.parent.is_dir():
            raise ConnectionFailed(
                f"cannot open SQLite database {url.masked}: "
                f"folder {self.path.parent} does not exist",
                "create the folder or fix the URL",
            )
        #: a scratch file (`throwaway`): commits do not wait for the disk
        self.scratch = False
        self.conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, DDL included
            conn = sqlite3.connect(":memory:" if self.missing else self.path, isolation_level=None)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if self.scratch:
                conn.execute("PRAGMA synchronous = OFF")
        except sqlite3.Error as err:
            raise ConnectionFailed(f"cannot open SQLite database {self.url.masked}: {err}") from err
        return conn

    def reset_session(self) -> None:
        """A new connection: a migration's PRAGMAs and TEMP tables end with it (the run lock
        is a file lock, not the connection's)."""
        if self.missing:
            return
        self.conn.close()
        self.conn = self._connect()

    def throwaway(self) -> None:
        self.scratch = True  # for each new connection `reset_session` makes
        self.conn.execute("PRAGMA synchronous = OFF")

    def recover(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def info(self) -> ServerInfo:
        name = f"{self.path} (not created yet)" if self.missing else str(self.path)
        return ServerInfo("SQLite", sqlite3.sqlite_version, name)

    def close(self) -> None:
        self.conn.close()
        self._run_lock.release()

    def split(self, sql: str) -> list[Statement]:
        """Split at semicolons, keeping CREATE TRIGGER ... BEGIN ...; END; whole."""
        return split_statements(sql, complete=sqlite3.complete_statement)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as err:  # a deferred foreign key, a full disk
            self.conn.execute("ROLLBACK")
            raise StatementError(str(err), code=getattr(err, "sqlite_errorname", None)) from err

    def execute(self, sql: str) -> None:
        try:
            self.conn.execute(sql)
        except sqlite3.Error as err:
            raise StatementError(str(err), code=getattr(err, "sqlite_errorname", None)) from err

    def transaction_control(self, sql: str) -> str | None:
        """Also `PRAGMA foreign_keys`: SQLite ignores it inside a transaction, so a migration
        that switches foreign keys on would silently run without them."""
        if _FOREIGN_KEYS.match(sql):
            return "PRAGMA foreign_keys"
        return super().transaction_control(sql)

    def backup(self, path: Path) -> None:
        """A consistent copy through SQLite's online backup API."""
        target = sqlite3.connect(path)
        try:
            self.conn.backup(target)
        finally:
            target.close()

    def outside_transaction_reason(self, sql: str) -> str | None:
        words = sql.split(None, 1)
        return "VACUUM" if words and words[0].rstrip(";").upper() == "VACUUM" else None

    # a lock file next to the database, not a SQLite lock: see sqlstage.locking for why
    @cached_property
    def _run_lock(self) -> FileLock:
        return FileLock(self.path.with_name(self.path.name + "-sqlstage.lock"))

    def _try_lock(self) -> bool:
        return self._run_lock.try_acquire(
            f"{self.application_name} (pid {os.getpid()}, since {datetime.now():%H:%M:%S})"
        )

    def _lock_holder(self) -> str | None:
        return self._run_lock.holder()

    def _release_lock(self) -> None:
        self._run_lock.release()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as err:
            raise StatementError(str(err), code=getattr(err, "sqlite_errorname", None)) from err

    def table_exists(self, name: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def columns(self, table: str) -> list[str]:
        return [str(row[1]) for row in self.conn.execute(f"PRAGMA table_info({table})")]

    def user_tables(self, limit: int) -> list[str]:
        rows = self.query(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND name NOT LIKE 'sqlstage\\_%' ESCAPE '\\' ORDER BY name LIMIT ?",
            [limit],
        )
        return [str(row[0]) for row in rows]

    def to_db_time(self, value: datetime) -> Any:
        return value.isoformat()


DRIVER = SqliteDriver
