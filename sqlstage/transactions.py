"""Migrations that cannot run inside a transaction, and how they run instead.

PostgreSQL refuses a few statements inside a transaction block (`CREATE INDEX CONCURRENTLY`,
`VACUUM`, `ALTER SYSTEM`, `CREATE DATABASE`, ...). They are recognised from the parse tree
(pglast), never from the raw text, so a comment or a string that mentions them is not one.
A migration holding one runs statement by statement in autocommit; if it fails midway the
database is half-changed, so its history row says `failed` and the statement reached, and
later applies refuse until `sqlstage repair` (see `refuse_if_failed`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlstage import __version__
from sqlstage.drivers.base import AppliedMigration, Driver, StatementError
from sqlstage.errors import MigrationFailed, MigrationFileError, Refused
from sqlstage.migration import NO_TRANSACTION_DIRECTIVE, Migration
from sqlstage.runlog import RunLog
from sqlstage.sqltext import Statement, line_of

FAILED = "failed"


def postgres_reason(sql: str) -> str | None:
    """The name of what keeps this statement out of a transaction block, or None.

    >>> postgres_reason("create index concurrently i on t (x)")
    'CREATE INDEX CONCURRENTLY'
    """
    from pglast.parser import ParseError

    from sqlstage.pgparse import reasons

    try:
        return next((reason for reason in reasons(sql) if reason), None)
    except ParseError:
        return None  # the server will say what is wrong with it


def runs_outside_transaction(driver: Driver, migration: Migration) -> bool:
    """Whether the migration runs statement by statement in autocommit.

    Yes when it starts with the directive, or when every statement must; a migration that
    mixes such a statement with others and has no directive is a file error (exit 2) naming
    the line, because half of it would commit and half would not.
    """
    return _outside(driver, migration, driver.statements(migration.forward))


def rollback_runs_outside_transaction(driver: Driver, migration: Migration) -> bool:
    """The same question for the rollback section (`DROP INDEX CONCURRENTLY` undoing a
    `CREATE INDEX CONCURRENTLY`); the file's directive covers both sections."""
    return _outside(driver, migration, rollback_statements(driver, migration))


def rollback_statements(driver: Driver, migration: Migration) -> list[Statement]:
    """The rollback section's statements, with the file lines they are on."""
    if migration.rollback is None or migration.rollback_line is None:
        return []
    offset = migration.rollback_line  # rollback statements count from the marker's next line
    return [Statement(s.sql, offset + s.line) for s in driver.statements(migration.rollback)]


def _outside(driver: Driver, migration: Migration, statements: Sequence[Statement]) -> bool:
    if not migration.no_transaction:
        _refuse_transaction_control(driver, migration, statements)
    flagged = [(s, r) for s in statements if (r := driver.outside_transaction_reason(s.sql))]
    if migration.no_transaction or not flagged:
        return migration.no_transaction
    if len(flagged) == len(statements):
        return True
    statement, reason = flagged[0]
    raise MigrationFileError(
        f"{migration.path}:{statement.line}: {reason} cannot run inside a transaction, "
        "and the other statements of this section would run in one",
        f"move it to a migration of its own, or make the first line `{NO_TRANSACTION_DIRECTIVE}` "
        "to run every statement on its own",
    )


def _refuse_transaction_control(
    driver: Driver, migration: Migration, statements: Sequence[Statement]
) -> None:
    """A COMMIT in a migration would commit half of it and leave the rest outside any
    transaction: refused (exit 2) before anything runs."""
    for statement in statements:
        control = driver.transaction_control(statement.sql)
        if control:
            raise MigrationFileError(
                f"{migration.path}:{statement.line}: {control} in a migration: sqlstage runs "
                "each migration in a transaction of its own, which this would end early (or, "
                "for a setting the database ignores inside a transaction, silently not apply)",
                "remove it; to manage transactions yourself, make the first line "
                f"`{NO_TRANSACTION_DIRECTIVE}`",
            )


def apply_outside_transaction(
    driver: Driver,
    migration: Migration,
    log: RunLog,
    applied_by: str,
    note: str | None,
    environment: str,
    lock_timeout: str | None = None,
) -> int:
    """Run each statement in autocommit; record the migration `applied`, or `failed` with the
    statement reached (then raise MigrationFailed). Returns the duration in ms."""
    statements = driver.statements(migration.forward)
    started = time.perf_counter()
    try:
        _run_each(driver, statements, log, lock_timeout)
    except _StatementFailed as failed:
        failure = _Failure(statements, failed.index, failed.error, environment)
        _record_failure(driver, migration, failure, log, applied_by, started)
        raise failed.error from None
    duration_ms = _elapsed_ms(started)
    driver.record(history_row(migration, applied_by, duration_ms, note=note), migration.forward)
    return duration_ms


def roll_back_outside_transaction(
    driver: Driver,
    migration: Migration,
    log: RunLog,
    environment: str,
    lock_timeout: str | None = None,
) -> int:
    """Run the rollback section statement by statement in autocommit, then forget the
    migration. A failure midway leaves it half rolled back: its history row becomes `failed`
    with the statement reached, so every later run refuses until `sqlstage repair`."""
    statements = rollback_statements(driver, migration)
    started = time.perf_counter()
    try:
        _run_each(driver, statements, log, lock_timeout)
    except _StatementFailed as failed:
        index, error = failed.index, failed.error
        statement = statements[index - 1]
        message = error.message if isinstance(error, StatementError) else "interrupted"
        committed = (
            f"rollback statements 1-{index - 1} had committed"
            if index > 1
            else ("no rollback statement had committed")
        )
        note = (
            f"rollback failed at statement {index} of {len(statements)} "
            f"(line {statement.line}): {message}; {committed}"
        )
        driver.update_history(migration.name, FAILED, migration.checksum, note)
        log.write(f"FAILED rollback of {migration.name} outside a transaction: {note}")
        if isinstance(error, KeyboardInterrupt):
            raise error from None
        raise MigrationFailed(
            f"{migration.path}:{statement.line}: {message} (the rollback of {migration.name} "
            f"ran without a transaction: {index - 1} of {len(statements)} statement(s) "
            "had committed)",
            f"finish or undo the rollback by hand, then run `sqlstage repair {environment} "
            f"{migration.name} --mark-applied` (it is applied) or `--forget` (rolled back)",
        ) from error
    driver.forget(migration.name)
    return _elapsed_ms(started)


class _StatementFailed(Exception):
    def __init__(self, index: int, error: StatementError | KeyboardInterrupt) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def _run_each(
    driver: Driver, statements: Sequence[Statement], log: RunLog, lock_timeout: str | None
) -> None:
    """Each statement commits on its own; the session's lock_timeout bounds every wait and is
    reset afterwards, so it does not leak into the next migration."""
    log.write(f"  no transaction: {len(statements)} statement(s), each commits on its own")
    if lock_timeout is not None:
        driver.set_lock_timeout(lock_timeout, session=True)
    try:
        for index, statement in enumerate(statements, start=1):
            try:
                driver.execute(statement.sql)
            except (StatementError, KeyboardInterrupt) as error:
                raise _StatementFailed(index, error) from error
            finally:
                for notice in driver.notices():
                    log.write(f"  {notice}")
            log.write(f"  line {statement.line}: done ({index}/{len(statements)})")
    finally:
        if lock_timeout is not None:
            driver.set_lock_timeout(None, session=True)


@dataclass(frozen=True)
class _Failure:
    statements: Sequence[Statement]
    index: int
    error: BaseException
    environment: str


def _record_failure(
    driver: Driver,
    migration: Migration,
    failure: _Failure,
    log: RunLog,
    applied_by: str,
    started: float,
) -> None:
    statements, index, error = failure.statements, failure.index, failure.error
    statement = statements[index - 1]
    line = statement.line
    if isinstance(error, StatementError) and error.position:
        line += line_of(statement.sql, error.position - 1) - 1
    message = error.message if isinstance(error, StatementError) else "interrupted"
    note = (
        f"failed at statement {index} of {len(statements)} (line {line}): {message}; "
        f"statements 1-{index - 1} had committed"
        if index > 1
        else f"failed at statement 1 of {len(statements)} (line {line}): {message}"
    )
    driver.record(
        history_row(migration, applied_by, _elapsed_ms(started), FAILED, note), migration.forward
    )
    log.write(f"FAILED {migration.name} outside a transaction: {note}")
    if isinstance(error, StatementError):
        raise MigrationFailed(
            f"{migration.path}:{line}: {message} ({migration.name} ran without a transaction: "
            f"{index - 1} of {len(statements)} statement(s) had committed)",
            f"fix the database by hand, then run `sqlstage repair {failure.environment} "
            f"{migration.name} --mark-applied` or `--forget`",
        ) from error


def history_row(
    migration: Migration,
    applied_by: str,
    duration_ms: int,
    status: str = "applied",
    note: str | None = None,
) -> AppliedMigration:
    """The history row recording `migration`, stamped now."""
    return AppliedMigration(
        migration=migration.name,
        checksum=migration.checksum,
        applied_at=datetime.now(UTC),
        applied_by=applied_by,
        duration_ms=duration_ms,
        tool_version=__version__,
        status=status,
        note=note,
    )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def refuse_if_failed(environment: str, history: Sequence[AppliedMigration]) -> None:
    """Refuse (exit 3) while a migration that ran without a transaction is recorded failed."""
    failed = [row for row in history if row.status == FAILED]
    if not failed:
        return
    row = failed[0]
    raise Refused(
        f"{row.migration} failed midway on {environment} and may have left it half-changed "
        f"({row.note})",
        f"fix the database by hand, then run `sqlstage repair {environment} {row.migration} "
        "--mark-applied` (or `--forget` to run it again)",
    )
