"""The driver interface: dialect facts as data, and the few verbs the runner needs.

One module per database implements `Driver`; `sqlstage.registry` picks it by URL scheme.
Everything above the driver (the history table, the marker, the runner) is written once over
`Dialect` and these verbs. Adding a database: a driver file, its schema reader, a registry line.
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
from sqlstage.locking import lock_wait
from sqlstage.sqltext import Statement, split_statements
from sqlstage.urls import DatabaseUrl


@dataclass(frozen=True)
class Dialect:
    """What differs between databases, as data."""

    name: str
    #: DDL commits with the transaction it is in (PostgreSQL, SQLite; not MySQL)
    transactional_ddl: bool
    #: the DB-API module's parameter mark
    placeholder: str
    #: column types of sqlstage's own tables
    time_type: str = "TEXT"
    key_type: str = "TEXT"
    #: server error codes that mean "gave up waiting for a lock" (lock_timeout)
    lock_timeout_codes: frozenset[str] = frozenset()
    #: file suffix of the backups `backup` writes
    backup_suffix: str = ".backup"
    #: sqlstage's short texts (names, statuses; some with a DEFAULT) and the applied SQL
    short_text_type: str = "TEXT"
    long_text_type: str = "TEXT"
    #: appended to sqlstage's CREATE TABLE (MySQL: the character set)
    table_options: str = ""
    #: a server database's scratch databases (`verify`): made and dropped with these, from a
    #: connection to `admin_database` when the base URL's database does not exist yet
    create_database: str = 'CREATE DATABASE "{}"'
    drop_database: str = 'DROP DATABASE IF EXISTS "{}" WITH (FORCE)'
    admin_database: str = "postgres"
    #: SQL for the milliseconds since the server received the message it runs in, where a
    #: migration and its history row travel as one message (`Driver.run_transaction`): the
    #: row's duration is then the server's; None: measured by sqlstage as it writes the row
    elapsed_ms: str | None = None


@dataclass(frozen=True)
class ServerInfo:
    """What the server says it is, for the `Connected:` line and the log."""

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

    @property
    def major(self) -> int | None:
        first = self.version.split(".")[0]
        return int(first) if first.isdigit() else None


class StatementError(Exception):
    """A statement failed in the database. Drivers translate their own errors to this.

    `position` is the 1-based character in the statement the server pointed at, if any;
    `index`, from `Driver.run_transaction`, the 1-based statement of the migration that
    failed (None: COMMIT or the history change).
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
        self.index: int | None = None


class Driver(ABC):
    """A connection to one database, open for the whole run."""

    facts: ClassVar[Dialect]

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._statements: dict[str, list[Statement]] = {}

    @property
    def dialect(self) -> str:
        """The dialect's name: `postgresql`, `sqlite`."""
        return self.facts.name

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

    def reset_session(self) -> None:  # noqa: B027 - nothing to reset where no state is kept
        """Give the next migration the session state a fresh connection would have (a
        migration's `SET search_path` must not reach the next one), keeping the run lock."""

    def recover(self) -> None:  # noqa: B027
        """After an interruption mid-statement: make the connection usable again for
        sqlstage's own bookkeeping (reconnect if need be)."""

    def throwaway(self) -> None:  # noqa: B027 - a speed-up, where there is one
        """This database is scratch (a drift check's replay, dropped afterwards): from now on
        its commits need not wait for the disk, across `reset_session` too."""

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

    def run_transaction(self, statements: Sequence[str], finish: Callable[[], None]) -> None:
        """Run a migration's statements, then `finish` (its history change), in one
        transaction. A statement that fails raises StatementError with its `index`; a
        failure in `finish` or at COMMIT raises one with `index` None. Here statement by
        statement; a driver may send it all at once (PostgreSQL: one message)."""
        with self.transaction():
            for index, sql in enumerate(statements, start=1):
                try:
                    self.execute(sql)
                except StatementError as error:
                    error.index = index
                    raise
            finish()

    @abstractmethod
    def execute(self, sql: str) -> None:
        """Run one statement of a migration exactly as written; raise StatementError."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a statement of sqlstage's own with parameters (`placeholder` marks them);
        return its rows. Raises StatementError."""

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A statement of our own that may travel with the transaction's COMMIT (the history
        row); outside a transaction it runs now."""
        self.query(sql, params)

    @abstractmethod
    def table_exists(self, name: str) -> bool:
        """Whether sqlstage's table `name` exists where `qualify` puts it."""

    @abstractmethod
    def columns(self, table: str) -> list[str]:
        """The column names of sqlstage's table `table`."""

    #: a fleet's tenant schema: only the tables of the driver's own schema are its
    #: (`user_tables`); the other schemas of the database are other tenants
    schema_only: bool = False

    @abstractmethod
    def user_tables(self, limit: int) -> list[str]:
        """Up to `limit` names of the tables and views that are not sqlstage's own (nor an
        extension's), in name order: whether the database was built some other way."""

    def qualify(self, name: str) -> str:
        """`name` as sqlstage's statements write it (with the schema it lives in, so a
        migration's `SET search_path` cannot hide it)."""
        return name

    def set_lock_timeout(self, value: str | None) -> None:  # noqa: B027
        """Bound how long every statement waits for a lock until the next call; None resets
        it to the connection's default. A no-op where unsupported."""

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

    def to_db_time(self, value: datetime) -> Any:
        return value

    def from_db_time(self, value: Any) -> datetime:
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

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
        wait_seconds = lock_wait(wait_seconds)  # nan would wait forever
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

    # -- backups --------------------------------------------------------------------------
    def check_backup(self) -> None:  # noqa: B027 - optional hook
        """Raise SqlstageError, before anything runs, when `backup` could not work."""

    @abstractmethod
    def backup(self, path: Path) -> None:
        """Write a full backup of the database to `path`."""
