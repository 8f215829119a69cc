"""The schema an environment's history says it has: the SQL its history rows recorded as
applied (not today's files), run in applied order on a new scratch database, then read.

Each migration runs as `apply` ran it: in one transaction, or statement by statement when it
cannot run in one, with the session reset between migrations. A statement that fails is a
`CheckIncomplete` (exit 5) naming the migration and the line: an expected schema that cannot
be built is no verdict, never "no drift".
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from sqlstage.catalog import Catalog
from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver, StatementError
from sqlstage.errors import CheckIncomplete, ConfigError, MigrationFileError
from sqlstage.history import AppliedMigration
from sqlstage.migration import Migration, parse_name, parse_text
from sqlstage.plan import Direction, Step, steps_for
from sqlstage.schema import Snapshot, snapshot
from sqlstage.scratch import scratch_database
from sqlstage.sqltext import line_of
from sqlstage.urls import DatabaseUrl


@dataclass(frozen=True)
class Replayed:
    """The expected schema, and who owned what it made (the scratch connection's user)."""

    snapshot: Snapshot
    user: str | None
    migrations: int
    #: where it was built, password masked
    database: str


def recorded_migrations(
    environment: str,
    history: Sequence[AppliedMigration],
    applied_sql: dict[str, str | None],
    catalog: Catalog,
) -> list[Migration]:
    """The applied rows as Migration values carrying the SQL the row recorded. A row from a
    version that recorded no SQL falls back to its file while the checksums agree."""
    stopped = next((row for row in history if row.stopped_midway), None)
    if stopped is not None:
        raise CheckIncomplete(
            f"{stopped.migration} stopped midway on {environment}: its history cannot say "
            "what the schema should be",
            f"finish it first (`sqlstage repair {environment} {stopped.migration} --resume`, "
            "or --mark-applied / --forget), then check again",
        )
    files = catalog.by_name()
    migrations = []
    for row in history:
        sql = applied_sql.get(row.migration)
        file = files.get(row.migration)
        if sql is None and file is not None and file.checksum == row.checksum:
            sql = file.forward
        if sql is None:
            raise CheckIncomplete(
                f"{environment}'s history row of {row.migration} holds no SQL and its file "
                "is gone or edited, so the expected schema cannot be rebuilt",
                f"restore {row.migration}.sql as it was applied, then check again",
            )
        migrations.append(_as_migration(environment, row, sql))
    return migrations


def _as_migration(environment: str, row: AppliedMigration, sql: str) -> Migration:
    number = (parse_name(f"{row.migration}.sql") or (0, row.migration))[0]
    path = Path(f"{row.migration}.sql (as recorded in {environment}'s history)")
    try:
        return parse_text(number, row.migration, path, sql)
    except MigrationFileError as error:
        raise CheckIncomplete(f"{environment}: {error.message}") from error


def replay(
    environment: str, base: DatabaseUrl, migrations: Sequence[Migration], application: str
) -> Replayed:
    """Build the schema on a scratch database next to `base`, read it, drop the database."""
    with ExitStack() as stack:
        try:
            scratch = stack.enter_context(scratch_database(base))
        except ConfigError as error:  # no CREATE DATABASE there: no verdict, not bad config
            raise CheckIncomplete(
                f"{environment}: {error.message}; no drift verdict",
                f"set verify_url for {environment} to a server where a scratch database may "
                f"be made, or turn the check off with [drift.{environment}] check = false",
            ) from error
        driver = stack.enter_context(connect(scratch.url, application))
        user = driver.info().user
        driver.throwaway()  # dropped at the end: its commits need not reach the disk
        for index, step in enumerate(_steps(environment, driver, migrations)):
            if index:
                driver.reset_session()
            _run(environment, driver, step)
        return Replayed(snapshot(driver), user, len(migrations), scratch.url.masked)


def _steps(environment: str, driver: Driver, migrations: Sequence[Migration]) -> list[Step]:
    try:
        return steps_for(driver, migrations, Direction.UP)
    except MigrationFileError as error:
        raise CheckIncomplete(f"{environment}: {error.message}", error.fix) from error


def _run(environment: str, driver: Driver, step: Step) -> None:
    statements = step.statements
    if not step.in_transaction:
        for statement in statements:
            _execute(environment, driver, step, statement.sql, statement.line)
        return
    try:  # as `apply` sends it: on PostgreSQL the whole migration in one message
        driver.run_transaction([statement.sql for statement in statements], _nothing)
    except StatementError as error:
        line = None  # at COMMIT: a deferred constraint
        if error.index is not None:
            statement = statements[error.index - 1]
            line = statement.line
            if error.position:
                line += line_of(statement.sql, error.position - 1) - 1
        raise _failed(environment, step, line, error) from error
    finally:
        driver.notices()  # drained: a replay's notices are nobody's business


def _nothing() -> None:
    """A replay writes no history row."""


def _execute(environment: str, driver: Driver, step: Step, sql: str, line: int) -> None:
    try:
        driver.execute(sql)
    except StatementError as error:
        if error.position:
            line += line_of(sql, error.position - 1) - 1
        raise _failed(environment, step, line, error) from error
    finally:
        driver.notices()  # drained: a replay's notices are nobody's business


def _failed(
    environment: str, step: Step, line: int | None, error: StatementError
) -> CheckIncomplete:
    where = f"line {line}" if line is not None else "COMMIT"
    return CheckIncomplete(
        f"{environment}: replaying {step.name} as its history row recorded it failed at "
        f"{where} on a fresh scratch database: {error.message}; no verdict",
        "the history's SQL depends on something outside the migrations (a role, an "
        "extension, data): create it on the scratch server (verify_url), then check again",
    )
