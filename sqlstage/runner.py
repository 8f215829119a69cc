"""Executes a plan through a driver: one transaction per migration, history row included."""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlstage.drivers.base import Driver, StatementError
from sqlstage.errors import MigrationFailed
from sqlstage.migration import Migration
from sqlstage.runlog import RunLog
from sqlstage.sqltext import Statement, line_of
from sqlstage.transactions import (
    apply_outside_transaction,
    history_row,
    roll_back_outside_transaction,
    rollback_runs_outside_transaction,
    rollback_statements,
    runs_outside_transaction,
)


class Events(Protocol):
    """What the runner tells its caller as it goes (the CLI renders it; the library ignores it)."""

    def migration_started(self, migration: Migration, index: int, total: int) -> None: ...

    def migration_applied(self, migration: Migration, duration_ms: int) -> None: ...


class NoEvents:
    def migration_started(self, migration: Migration, index: int, total: int) -> None:
        pass

    def migration_applied(self, migration: Migration, duration_ms: int) -> None:
        pass


@dataclass(frozen=True)
class FailedStatement:
    """Where a migration failed, for the one-line error."""

    migration: Migration
    line: int
    error: StatementError


def current_user() -> str:
    """`user@host`, as recorded in the history table and the log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def apply_migrations(
    driver: Driver,
    migrations: Sequence[Migration],
    log: RunLog,
    events: Events | None = None,
    applied_by: str | None = None,
    lock_timeout: str | None = None,
    note: str | None = None,
    notes: Mapping[str, str] | None = None,
    environment: str = "ENV",
) -> list[Migration]:
    """Run each migration in its own transaction together with its history row.

    Stops at the first failure: that migration is rolled back whole and MigrationFailed names
    the file, the line where the failing statement starts and the database's message.
    `lock_timeout` bounds each migration's wait for a lock (PostgreSQL), so a migration stuck
    behind a long transaction fails fast instead of queueing all traffic behind it. `note` is
    recorded in each history row (e.g. why the rehearsal check was skipped), `notes` in the
    named migrations' rows (e.g. applied out of order). A migration that cannot run in a
    transaction runs statement by statement instead (sqlstage.transactions).
    Returns the migrations applied.
    """
    events = events or NoEvents()
    applied_by = applied_by or current_user()
    driver.ensure_history()
    done: list[Migration] = []
    for index, migration in enumerate(migrations, start=1):
        events.migration_started(migration, index, len(migrations))
        log.write(f"migration {migration.name} checksum {migration.checksum}")
        row_note = "; ".join(n for n in (note, (notes or {}).get(migration.name)) if n) or None
        if runs_outside_transaction(driver, migration):
            duration_ms = apply_outside_transaction(
                driver, migration, log, applied_by, row_note, environment, lock_timeout
            )
            log.write(f"applied {migration.name} in {duration_ms} ms (no transaction)")
            events.migration_applied(migration, duration_ms)
            done.append(migration)
            continue
        statements = driver.statements(migration.forward)
        started = time.perf_counter()
        try:
            with driver.transaction():
                if lock_timeout is not None:
                    driver.set_lock_timeout(lock_timeout)
                for statement in statements:
                    _execute(driver, migration, statement, log)
                duration_ms = round((time.perf_counter() - started) * 1000)
                driver.record(
                    history_row(migration, applied_by, duration_ms, note=row_note),
                    migration.forward,
                )
        except _Failed as failed:
            log.write(f"FAILED {migration.name}: rolled back; {len(done)} migration(s) applied")
            timed_out = failed.where.error.code in driver.lock_timeout_codes
            error = _as_error(failed.where, lock_timeout if timed_out else None)
            raise error from failed.where.error
        except StatementError as error:  # not a statement: the COMMIT or the history row
            log.write(f"FAILED {migration.name} at COMMIT: {error.message}; rolled back")
            raise _commit_error(migration, error) from error
        log.write(f"applied {migration.name} in {duration_ms} ms")
        events.migration_applied(migration, duration_ms)
        done.append(migration)
    return done


class RollbackEvents(Protocol):
    """What `rollback_migrations` tells its caller as it goes."""

    def migration_started(self, migration: Migration, index: int, total: int) -> None: ...

    def migration_rolled_back(self, migration: Migration, duration_ms: int) -> None: ...


class NoRollbackEvents:
    def migration_started(self, migration: Migration, index: int, total: int) -> None:
        pass

    def migration_rolled_back(self, migration: Migration, duration_ms: int) -> None:
        pass


def rollback_migrations(
    driver: Driver,
    migrations: Sequence[Migration],
    log: RunLog,
    events: RollbackEvents | None = None,
    lock_timeout: str | None = None,
    environment: str = "ENV",
) -> list[Migration]:
    """Run each migration's rollback section, in the order given (newest first), each in its
    own transaction together with the removal of its history row (statement by statement,
    without one, when the section cannot run in a transaction: sqlstage.transactions).

    Stops at the first failure: that rollback is undone whole, the migration stays applied, and
    MigrationFailed names the file and the line of the failing rollback statement.
    `lock_timeout` as for `apply_migrations`. Returns the migrations rolled back.
    """
    events = events or NoRollbackEvents()
    done: list[Migration] = []
    for index, migration in enumerate(migrations, start=1):
        if migration.rollback is None or migration.rollback_line is None:
            raise ValueError(f"{migration.name} has no rollback section")  # plan_rollback refuses
        events.migration_started(migration, index, len(migrations))
        log.write(f"rollback {migration.name}")
        if rollback_runs_outside_transaction(driver, migration):
            duration_ms = roll_back_outside_transaction(
                driver, migration, log, environment, lock_timeout
            )
            log.write(f"rolled back {migration.name} in {duration_ms} ms (no transaction)")
            events.migration_rolled_back(migration, duration_ms)
            done.append(migration)
            continue
        started = time.perf_counter()
        try:
            with driver.transaction():
                if lock_timeout is not None:
                    driver.set_lock_timeout(lock_timeout)
                for statement in rollback_statements(driver, migration):
                    _execute(driver, migration, statement, log)
                driver.forget(migration.name)
        except _Failed as failed:
            log.write(f"FAILED rollback of {migration.name}: undone; it stays applied")
            timed_out = failed.where.error.code in driver.lock_timeout_codes
            fix = (
                f"the rollback was undone and {migration.name} stays applied; fix its rollback "
                "section and run the same command again"
            )
            raise _as_error(
                failed.where, lock_timeout if timed_out else None, fix
            ) from failed.where.error
        except StatementError as error:  # at COMMIT: the rollback is undone whole
            log.write(f"FAILED rollback of {migration.name} at COMMIT: {error.message}")
            raise _commit_error(migration, error) from error
        duration_ms = round((time.perf_counter() - started) * 1000)
        log.write(f"rolled back {migration.name} in {duration_ms} ms")
        events.migration_rolled_back(migration, duration_ms)
        done.append(migration)
    return done


class _Failed(Exception):
    def __init__(self, where: FailedStatement) -> None:
        super().__init__(where.error.message)
        self.where = where


def _execute(driver: Driver, migration: Migration, statement: Statement, log: RunLog) -> None:
    started = time.perf_counter()
    try:
        driver.execute(statement.sql)
    except StatementError as error:
        line = statement.line
        if error.position:  # the server pointed inside the statement: name that line
            line += line_of(statement.sql, error.position - 1) - 1
        log.write(f"  line {statement.line}: {statement.sql}")
        log.write(f"  ERROR at line {line}: {error.message}")
        for label, value in (("DETAIL", error.detail), ("HINT", error.hint)):
            if value:
                log.write(f"  {label}: {value}")
        raise _Failed(FailedStatement(migration, line, error)) from error
    finally:
        for notice in driver.notices():
            log.write(f"  {notice}")
    elapsed = (time.perf_counter() - started) * 1000
    log.write(f"  line {statement.line} ({elapsed:.1f} ms): {_first_line(statement.sql)}")


def _commit_error(migration: Migration, error: StatementError) -> MigrationFailed:
    detail = f" ({error.detail})" if error.detail else ""
    return MigrationFailed(
        f"{migration.path}: {error.message}{detail}, when committing {migration.name}",
        f"{migration.name} was rolled back whole; fix it (a deferred constraint is checked at "
        "COMMIT) and run the same command again",
    )


def _as_error(
    failed: FailedStatement, lock_timeout: str | None = None, fix: str | None = None
) -> MigrationFailed:
    error = failed.error
    message = f"{failed.migration.path}:{failed.line}: {error.message}"
    if error.detail:
        message += f" ({error.detail})"
    if lock_timeout is not None:
        return MigrationFailed(
            f"{message}: waited longer than lock_timeout {lock_timeout} for a table lock that "
            "another session holds",
            f"{failed.migration.name} was rolled back; retry when that session is done or traffic "
            "is low, or raise lock_timeout for this environment in sqlstage.toml",
        )
    return MigrationFailed(
        message,
        error.hint
        or fix
        or f"{failed.migration.name} was rolled back; fix it and run the same command again",
    )


def _first_line(sql: str) -> str:
    first = sql.strip().splitlines()[0] if sql.strip() else ""
    return first if len(first) <= 120 else first[:117] + "..."
