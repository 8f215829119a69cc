"""Prove that each rollback undoes its migration, each judged on its own, on a scratch database.

For each migration N, from the state just before it (every earlier migration applied):

    BEGIN; N; SAVEPOINT applied; N's rollback;
    compare the schema with the state before N; ROLLBACK TO applied; history row; COMMIT

so N's verdict never depends on what another rollback did, and one that fails or is missing
hides nothing else. The comparison is first a fingerprint of the catalogs (only the rows the
transaction wrote are hashed, no deparsing); only when that differs are two full snapshots
taken (the second once the transaction is rolled back, then N is applied again), so a
verdict is always what `sqlstage.schema.diff` says.

A migration that cannot run in a transaction (or whose rollback cannot) is applied for real,
and its rollback is judged on a copy of the database made right after (`Workspace.copy`).
Only a migration that fails to apply stops the walk: the later ones have no state to start
from and are `not checked`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlstage.drivers.base import Driver, StatementError
from sqlstage.errors import MigrationFailed, MigrationFileError
from sqlstage.history import History, new_row
from sqlstage.migration import Migration, RollbackKind, parse_name, parse_text
from sqlstage.plan import Direction, runs_outside, section_statements
from sqlstage.runlog import RunLog
from sqlstage.runner import apply_migrations, current_user, rollback_migrations
from sqlstage.schema import Difference, Snapshot, diff, fingerprint, snapshot
from sqlstage.scratch import Workspace
from sqlstage.sqltext import Statement, line_of

OK = "ok"
NO_ROLLBACK = "no rollback section"
IRREVERSIBLE = "irreversible"
ROLLBACK_FAILED = "rollback failed"
DIFFERENCES = "rollback leaves differences"
APPLY_FAILED = "apply failed"
NOT_CHECKED = "not checked"

_APPLIED = "sqlstage_verify_applied"


@dataclass
class MigrationCheck:
    """One migration's verdict; `details` holds the database's error or the differences
    as text, `differences` the differences as values."""

    migration: str
    result: str = NOT_CHECKED
    details: list[str] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    #: what its rollback section says: "sql", "missing", "nothing to undo", "irreversible"
    rollback: str = RollbackKind.SQL.value

    @property
    def ok(self) -> bool:
        return self.result == OK

    def passed(self, strict: bool = False) -> bool:
        """Round-trips; an irreversible one passes unless `strict`."""
        return self.ok or (self.result == IRREVERSIBLE and not strict)

    def differ(self, found: list[Difference]) -> None:
        self.result = DIFFERENCES if found else OK
        self.differences, self.details = found, [str(d) for d in found]


@dataclass(frozen=True)
class VerifyOutcome:
    setup: tuple[str, ...]
    checks: tuple[MigrationCheck, ...]
    #: irreversible migrations count as failures
    strict: bool = False

    @property
    def ok(self) -> bool:
        return all(check.passed(self.strict) for check in self.checks)


class VerifyEvents(Protocol):
    def started(self, total_steps: int) -> None: ...

    def step(self, description: str) -> None: ...


class NoVerifyEvents:
    def started(self, total_steps: int) -> None:
        pass

    def step(self, description: str) -> None:
        pass


def read_data_file(path: Path, from_number: int | None) -> Migration:
    """A `--data` SQL file as a Migration value: its number says after which migration it is
    loaded (`003_sample_users.sql` -> after 003), else it loads before the first checked one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MigrationFileError(f"{path}: cannot read the data file ({err})") from err
    parsed = parse_name(path.name)
    number = parsed[0] if parsed else (from_number - 1 if from_number else 0)
    return parse_text(number, path.stem, path, text)


def verify_migrations(
    workspace: Workspace,
    migrations: Sequence[Migration],
    log: RunLog,
    from_number: int | None = None,
    data: Migration | None = None,
    events: VerifyEvents | None = None,
    strict: bool = False,
) -> VerifyOutcome:
    """Judge each migration numbered `from_number` or above on the (empty) scratch database
    behind `workspace`; those below are applied as setup, unchecked."""
    events = events or NoVerifyEvents()
    setup = [m for m in migrations if from_number is not None and m.number < from_number]
    checked = [m for m in migrations if m not in setup]
    checks = [MigrationCheck(m.name, rollback=m.rollback_kind.value) for m in checked]
    events.started(len(setup) + len(checked) + (1 if data else 0))
    loader = _Data(data)
    History(workspace.driver).ensure()  # before any fingerprint: its table is in every state
    for migration in setup:
        loader.load_before(workspace.driver, migration, log, events)
        events.step(f"setup {migration.name}")
        apply_migrations(workspace.driver, [migration], log)
    judge = _Judge(workspace, log)
    for index, (migration, check) in enumerate(zip(checked, checks, strict=True)):
        if loader.load_before(workspace.driver, migration, log, events):
            judge.before = None
        events.step(f"check {migration.name}")
        try:
            judge.check(migration, check)
        except _ApplyFailed as failed:
            check.result, check.details = APPLY_FAILED, [failed.message]
            for later in checks[index + 1 :]:
                later.details = [f"{migration.name} before it failed to apply"]
            break
        log.write(f"verdict {migration.name}: {check.result}")
    else:
        loader.load_before(workspace.driver, None, log, events)
    return VerifyOutcome(tuple(m.name for m in setup), tuple(checks), strict)


class _ApplyFailed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Judge:
    """Checks one migration after another, keeping the fingerprint of the state reached."""

    def __init__(self, workspace: Workspace, log: RunLog) -> None:
        self.workspace = workspace
        self.log = log
        self.applied_by = current_user()
        #: the fingerprint of the state before the next migration (None: to read)
        self.before: object | None = None

    @property
    def driver(self) -> Driver:
        return self.workspace.driver

    def check(self, migration: Migration, check: MigrationCheck) -> None:
        if self.before is None:
            self.before = fingerprint(self.driver)
        outside = runs_outside(self.driver, migration, Direction.UP) or (
            migration.rollback is not None and runs_outside(self.driver, migration, Direction.DOWN)
        )
        if outside:
            self._on_a_copy(migration, check)
            self.before = fingerprint(self.driver)
            return
        try:
            self.before = self._in_a_transaction(migration, check)
        except _Recheck as recheck:  # rolled back: the state before N, to snapshot
            check.differ(diff(snapshot(self.driver), recheck.live))
            try:
                apply_migrations(self.driver, [migration], self.log, applied_by=self.applied_by)
            except MigrationFailed as error:
                raise _ApplyFailed(error.message) from error
            self.before = fingerprint(self.driver)

    def _in_a_transaction(self, migration: Migration, check: MigrationCheck) -> object:
        """Apply, judge the rollback, undo it, record, commit; the fingerprint after N."""
        driver, log = self.driver, self.log
        log.write(f"migration {migration.name} checksum {migration.checksum}")
        started = time.perf_counter()
        try:
            with driver.transaction():
                _run(driver, migration, driver.statements(migration.forward), log)
                duration_ms = round((time.perf_counter() - started) * 1000)
                driver.execute(f"SAVEPOINT {_APPLIED}")
                after = fingerprint(driver, self.before)
                self._judge_here(migration, check)
                driver.execute(f"ROLLBACK TO SAVEPOINT {_APPLIED}")
                History(driver).record(
                    new_row(migration, self.applied_by, duration_ms), migration.forward
                )
        except _Failed as failed:
            log.write(f"FAILED {migration.name}: {failed.message}")
            raise _ApplyFailed(failed.message) from failed
        except StatementError as error:  # at COMMIT: a deferred constraint
            raise _ApplyFailed(f"{migration.path}: {error.message}, at COMMIT") from error
        return after

    def _judge_here(self, migration: Migration, check: MigrationCheck) -> None:
        """Run the rollback inside the migration's transaction and judge it; the caller
        returns to the `applied` savepoint afterwards. `_Recheck` when only snapshots can
        tell (it leaves the transaction, which is rolled back)."""
        if self._declared_away(migration, check):
            return
        driver = self.driver
        try:
            _run(driver, migration, section_statements(driver, migration, Direction.DOWN), self.log)
        except _Failed as failed:
            check.result, check.details = ROLLBACK_FAILED, [failed.message]
            return
        if fingerprint(driver, self.before) == self.before:
            check.result = OK
            return
        raise _Recheck(snapshot(driver))

    def _on_a_copy(self, migration: Migration, check: MigrationCheck) -> None:
        expected = snapshot(self.driver)
        try:
            apply_migrations(self.driver, [migration], self.log, applied_by=self.applied_by)
        except MigrationFailed as error:
            raise _ApplyFailed(error.message) from error
        if self._declared_away(migration, check):
            return
        with self.workspace.copy() as copy:
            try:
                rollback_migrations(copy, [migration], self.log)
            except MigrationFailed as error:
                check.result, check.details = ROLLBACK_FAILED, [error.message]
                return
            check.differ(diff(expected, snapshot(copy)))

    def _declared_away(self, migration: Migration, check: MigrationCheck) -> bool:
        """True when there is no rollback to run: none written, or declared irreversible."""
        if migration.rollback_kind is RollbackKind.IRREVERSIBLE:
            check.result = IRREVERSIBLE
            if migration.rollback_note:
                check.details = [migration.rollback_note]
            return True
        if migration.rollback is None:
            check.result = NO_ROLLBACK
            return True
        return False


class _Recheck(Exception):
    """The catalogs differ after the rollback; `live` is the schema it left."""

    def __init__(self, live: Snapshot) -> None:
        super().__init__("the catalogs differ")
        self.live = live


class _Failed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _run(
    driver: Driver, migration: Migration, statements: Sequence[Statement], log: RunLog
) -> None:
    """Run statements in the open transaction; `_Failed` names the file and line."""
    for statement in statements:
        try:
            driver.execute(statement.sql)
        except StatementError as error:
            line = statement.line
            if error.position:
                line += line_of(statement.sql, error.position - 1) - 1
            detail = f" ({error.detail})" if error.detail else ""
            log.write(f"  ERROR at line {line}: {error.message}")
            raise _Failed(f"{migration.path}:{line}: {error.message}{detail}") from error
        finally:
            for notice in driver.notices():
                log.write(f"  {notice}")


class _Data:
    """The `--data` file, loaded once: before the first migration numbered above its point,
    or at the end."""

    def __init__(self, data: Migration | None) -> None:
        self.data = data
        self.loaded = data is None

    def load_before(
        self, driver: Driver, migration: Migration | None, log: RunLog, events: VerifyEvents
    ) -> bool:
        """Load it if its point is reached; returns whether it was loaded now."""
        data = self.data
        if self.loaded or data is None:
            return False
        if migration is not None and migration.number <= data.number:
            return False
        self.loaded = True
        events.step(f"load {data.path.name}")
        log.write(f"data {data.path}")
        with driver.transaction():
            for statement in driver.statements(data.forward):
                try:
                    driver.execute(statement.sql)
                except StatementError as error:
                    raise MigrationFailed(
                        f"{data.path}:{statement.line}: {error.message}",
                        "fix the data file; the scratch database is dropped, nothing else changed",
                    ) from error
        return True
