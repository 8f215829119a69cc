"""The driver interface: the few verbs the runner needs from a database.

One module per database implements `Driver`; `sqlstage.drivers.connect` picks it by URL scheme.
Dialect differences are data first (class attributes), methods only where data is not enough.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlstage.errors import Locked
from sqlstage.sqltext import Statement, split_statements
from sqlstage.urls import DatabaseUrl

HISTORY_TABLE = "sqlstage_history"
#: one row naming the environment this database belongs to, so `dev` never hits production
MARKER_TABLE = "sqlstage_environment"
MARKER_DDL = f"""CREATE TABLE {MARKER_TABLE} (
    environment TEXT NOT NULL,
    marked_at TEXT NOT NULL,
    marked_by TEXT NOT NULL
)"""
HISTORY_COLUMNS = (
    "migration",
    "checksum",
    "applied_at",
    "applied_by",
    "duration_ms",
    "tool_version",
    "status",
    "note",
)


@dataclass(frozen=True)
class ServerInfo:
    product: str
    version: str
    database: str
    host: str | None = None
    user: str | None = None

    def describe(self) -> str:
        """`PostgreSQL 15.19 · database app_dev on 127.0.0.1:5432 as postgres`"""
        text = f"{self.product} {self.version} · database {self.database}"
        if self.host:
            text += f" on {self.host}"
        if self.user:
            text += f" as {self.user}"
        return text


@dataclass(frozen=True)
class AppliedMigration:
    """One row of the history table: the database's own record of what it has run."""

    migration: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: int
    tool_version: str
    status: str = "applied"
    note: str | None = None


class StatementError(Exception):
    """A statement failed in the database. Drivers translate their own errors to this.

    `position` is the 1-based character in the statement the server pointed at, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.hint = hint
        self.position = position
        self.code = code


class Driver(ABC):
    """A connection to one database, open for the whole run."""

    dialect: ClassVar[str]
    #: server error codes that mean "gave up waiting for a lock" (lock_timeout)
    lock_timeout_codes: ClassVar[frozenset[str]] = frozenset()
    #: file suffix of the backups `backup` writes
    backup_suffix: ClassVar[str] = ".backup"
    #: the placeholder the driver's DB-API module uses
    placeholder: ClassVar[str]
    #: the column type applied_at is stored in (the only difference between the dialects)
    time_type: ClassVar[str] = "TEXT"

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._statements: dict[str, list[Statement]] = {}

    # -- connection ---------------------------------------------------------------------
    @abstractmethod
    def info(self) -> ServerInfo:
        """What we are connected to, for the one-line connection test."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running SQL --------------------------------------------------------------------
    def statements(self, sql: str) -> list[Statement]:
        """The statements of a migration's SQL, each with the line it starts on.

        Split once per run: the plan counts them and the runner executes them.
        """
        if sql not in self._statements:
            self._statements[sql] = self.split(sql)
        return self._statements[sql]

    def split(self, sql: str) -> list[Statement]:
        """Dialect-specific splitting; the default knows quotes and comments."""
        return split_statements(sql)

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together or not at all."""

    @abstractmethod
    def execute(self, sql: str) -> None:
        """Run one statement exactly as written; raise StatementError on failure."""

    def set_lock_timeout(self, value: str | None, session: bool = False) -> None:  # noqa: B027
        """Bound how long the current transaction (or, with `session`, every statement until
        the next call) waits for a lock; None resets it. A no-op where unsupported."""

    def transaction_control(self, sql: str) -> str | None:
        """`COMMIT` (or `BEGIN`, ...) when the statement would end the transaction a migration
        runs in, else None."""
        words = sql.split(None, 2)
        first = words[0].upper().rstrip(";") if words else ""
        if first == "ROLLBACK" and len(words) > 1 and words[1].upper().startswith("TO"):
            return None  # ROLLBACK TO SAVEPOINT stays inside the transaction
        return first if first in {"BEGIN", "COMMIT", "END", "ROLLBACK"} else None

    def outside_transaction_reason(self, sql: str) -> str | None:
        """What keeps this statement out of a transaction block (`VACUUM`), or None."""
        return None

    def notices(self) -> list[str]:
        """Messages the server sent since the last call (PostgreSQL NOTICE and the like)."""
        return []

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a statement of sqlstage's own (catalog reads for schema snapshots); its rows."""
        return self._query(sql, params)

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a statement of our own with parameters (`placeholder` marks them);
        return its rows."""

    @abstractmethod
    def _table_exists(self, name: str) -> bool: ...

    # -- one runner at a time -----------------------------------------------------------
    lock_poll_seconds: ClassVar[float] = 0.2
    _lock_depth = 0

    @abstractmethod
    def _try_lock(self) -> bool:
        """Take the run lock if it is free, without waiting; held until `_release_lock` or
        until this process dies (so a `kill -9` never leaves it behind)."""

    @abstractmethod
    def _lock_holder(self) -> str | None:
        """Who holds the run lock (`sqlstage dev alice@laptop (pid 4242)`), if it can tell."""

    @abstractmethod
    def _release_lock(self) -> None: ...

    def lock(self, wait_seconds: float, waiting: Callable[[str], None] | None = None) -> None:
        """Take the run lock, polling up to `wait_seconds`; `waiting(holder)` is told who
        holds it each time that changes. Re-entrant. Raises Locked (exit 3) on timeout."""
        if self._lock_depth:
            self._lock_depth += 1
            return
        deadline = time.monotonic() + wait_seconds
        told: str | None = None
        while not self._try_lock():
            holder = self._lock_holder() or "another sqlstage run"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Locked(
                    f"{self.url.masked} is being changed by {holder}; waited "
                    f"{wait_seconds:g} s and changed nothing",
                    "let that run finish and try again, or wait longer with --lock-wait SECONDS",
                )
            if waiting is not None and holder != told:
                waiting(holder)
                told = holder
            time.sleep(min(self.lock_poll_seconds, remaining))
        self._lock_depth = 1

    def unlock(self) -> None:
        if not self._lock_depth:
            return
        self._lock_depth -= 1
        if not self._lock_depth:
            self._release_lock()

    # -- history ------------------------------------------------------------------------
    def ensure_history(self) -> None:
        if not self._table_exists(HISTORY_TABLE):
            self._query(
                f"""CREATE TABLE {HISTORY_TABLE} (
    migration TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    applied_at {self.time_type} NOT NULL,
    applied_by TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    tool_version TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'applied',
    note TEXT,
    applied_sql TEXT
)"""
            )

    def applied(self) -> list[AppliedMigration]:
        """The history in the order it was applied; empty when there is no history table."""
        if not self._table_exists(HISTORY_TABLE):
            return []
        columns = ", ".join(HISTORY_COLUMNS)
        rows = self._query(f"SELECT {columns} FROM {HISTORY_TABLE} ORDER BY applied_at, migration")
        return [self._row_to_applied(row) for row in rows]

    def record(self, applied: AppliedMigration, sql: str) -> None:
        """Insert a history row (inside the migration's transaction)."""
        values = [getattr(applied, column) for column in HISTORY_COLUMNS]
        values[HISTORY_COLUMNS.index("applied_at")] = self._to_db_time(applied.applied_at)
        marks = ", ".join([self.placeholder] * (len(values) + 1))
        self._query(
            f"INSERT INTO {HISTORY_TABLE} ({', '.join(HISTORY_COLUMNS)}, applied_sql) "
            f"VALUES ({marks})",
            [*values, sql],
        )

    # -- identity marker ----------------------------------------------------------------
    def read_marker(self) -> str | None:
        """The environment key this database was marked with, or None."""
        if not self._table_exists(MARKER_TABLE):
            return None
        rows = self._query(f"SELECT environment FROM {MARKER_TABLE}")
        return str(rows[0][0]) if rows else None

    def write_marker(self, environment: str, marked_at: datetime, marked_by: str) -> None:
        with self.transaction():
            if not self._table_exists(MARKER_TABLE):
                self._query(MARKER_DDL)
            self._query(f"DELETE FROM {MARKER_TABLE}")
            self._query(
                f"INSERT INTO {MARKER_TABLE} (environment, marked_at, marked_by) "
                f"VALUES ({self.placeholder}, {self.placeholder}, {self.placeholder})",
                [environment, marked_at.isoformat(), marked_by],
            )

    # -- backups --------------------------------------------------------------------------
    def check_backup(self) -> None:  # noqa: B027 - optional hook
        """Raise SqlstageError, before anything runs, when `backup` could not work."""

    @abstractmethod
    def backup(self, path: Path) -> None:
        """Write a full backup of the database to `path`."""

    def forget(self, migration: str) -> None:
        self._query(
            f"DELETE FROM {HISTORY_TABLE} WHERE migration = {self.placeholder}", [migration]
        )

    def update_history(self, migration: str, status: str, checksum: str, note: str | None) -> None:
        """Change a row's status, checksum and note (`sqlstage repair`)."""
        mark = self.placeholder
        self._query(
            f"UPDATE {HISTORY_TABLE} SET status = {mark}, checksum = {mark}, note = {mark} "
            f"WHERE migration = {mark}",
            [status, checksum, note, migration],
        )

    def applied_sql(self, migration: str) -> str | None:
        """The forward SQL exactly as it was run, from the history row."""
        if not self._table_exists(HISTORY_TABLE):
            return None
        rows = self._query(
            f"SELECT applied_sql FROM {HISTORY_TABLE} WHERE migration = {self.placeholder}",
            [migration],
        )
        return rows[0][0] if rows else None

    def _to_db_time(self, value: datetime) -> Any:
        return value

    def _row_to_applied(self, row: tuple[Any, ...]) -> AppliedMigration:
        return AppliedMigration(*row)
