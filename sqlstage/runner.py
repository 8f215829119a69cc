"""Executes a plan's steps through a driver: one loop, either direction.

A step runs in one transaction with its history change (record the row going up, forget it
going down), or, when its plan says it cannot, statement by statement with its progress
recorded after each one, so a crash at any point leaves a row saying exactly which statements
committed. The runner decides nothing: every choice is in the step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlstage.drivers.base import Driver, StatementError
from sqlstage.errors import MigrationFailed
from sqlstage.history import AppliedMigration, History, Origin, Status, new_row
from sqlstage.migration import Migration
from sqlstage.pgparse import invalid_index_hint
from sqlstage.plan import Direction, NoEvents, Step, steps_for
from sqlstage.plan import StepEvents as Events
from sqlstage.runlog import Log
from sqlstage.sqltext import Statement, line_of
from sqlstage.user import current_user as current_user  # where it used to live


@dataclass(frozen=True)
class Failure:
    """Where a step stopped: the one value every kind of failure becomes."""

    step: Step
    direction: Direction
    #: 1-based statement reached; None when the error came at COMMIT
    index: int | None
    line: int
    #: None: interrupted (Ctrl-C, SIGTERM)
    error: StatementError | None
    #: statements that stay committed (a step outside a transaction)
    committed: int = 0

    @property
    def message(self) -> str:
        return self.error.message if self.error is not None else "interrupted"

    def note(self) -> str:
        """What the history row says of a step stopped outside a transaction."""
        total = len(self.step.statements)
        what = "rollback failed" if self.direction is Direction.DOWN else "failed"
        text = f"{what} at statement {self.index} of {total} (line {self.line}): {self.message}"
        if self.committed:
            text += f"; statements 1-{self.committed} had committed"
        hint = self.invalid_index()
        return f"{text}; {hint}" if hint else text

    def invalid_index(self) -> str | None:
        """The INVALID index a failed CREATE INDEX CONCURRENTLY left, and how to drop it."""
        if self.index is None:
            return None
        return invalid_index_hint(self.step.statements[self.index - 1].sql)


@dataclass
class Runner:
    """Runs steps against one database, writing the log and the history as it goes."""

    driver: Driver
    history: History
    log: Log
    environment: str
    events: Events = NoEvents()  # noqa: RUF009 - stateless
    applied_by: str = ""
    #: written in every history row of the run (why a rule was set aside)
    note: str | None = None
    #: the environment's lock_timeout, to say what a lock_not_available error means
    lock_timeout: str | None = None
    #: written in every history row of the run: why drift was let through, and what
    allowed_drift: str | None = None
    #: asked before each migration after the first: True stops the run there (a fleet's
    #: Ctrl-C lets a target finish the migration it is in, and start no other)
    stop: Callable[[], bool] | None = None

    def run(self, steps: Sequence[Step], direction: Direction) -> list[Step]:
        """Run each step; stop at the first failure (MigrationFailed). Returns those done."""
        applied_by = self.applied_by or current_user()
        self.applied_by = applied_by
        if direction is Direction.UP:
            self.history.ensure()
        done: list[Step] = []
        for index, step in enumerate(steps, start=1):
            if index > 1:
                if self.stop is not None and self.stop():
                    break
                self.driver.reset_session()
            self.events.step_started(step, index, len(steps))
            if direction is Direction.UP:
                self.log.write(f"migration {step.name} checksum {step.migration.checksum}")
            else:
                self.log.write(f"rollback {step.name}")
            started = time.perf_counter()
            if step.in_transaction:
                self._in_transaction(step, direction, started)
            else:
                self._one_by_one(step, direction, started)
            duration_ms = _elapsed_ms(started)
            how = "" if step.in_transaction else " (no transaction)"
            self.log.write(f"{direction.past} {step.name} in {duration_ms} ms{how}")
            self.events.step_finished(step, duration_ms)
            done.append(step)
        return done

    # -- one transaction ------------------------------------------------------------------
    def _in_transaction(self, step: Step, direction: Direction, started: float) -> None:
        def finish() -> None:  # the history change, committed with the step
            if direction is Direction.UP:
                row = self._row(step, Status.APPLIED, _elapsed_ms(started))
                self.history.record(row, step.migration.forward, with_migration=True)
            else:
                self.history.forget(step.name)

        self.log.flush()  # the log up to this migration is on disk before it is sent
        try:
            self.driver.run_transaction([s.sql for s in step.statements], finish)
        except StatementError as error:
            if error.index is None:  # not a statement: the COMMIT or the history row
                self._log_ran(step.statements)
                self._log_notices()
                self.log.write(f"FAILED {step.name} at COMMIT: {error.message}; rolled back")
                raise self._error(Failure(step, direction, None, 1, error)) from error
            self._log_ran(step.statements[: error.index - 1])
            failure = self._failed(step, direction, error.index, error)
            self._log_notices()
            what = "FAILED" if direction is Direction.UP else "FAILED rollback of"
            self.log.write(f"{what} {step.name}: rolled back whole")
            raise self._error(failure) from error
        self._log_ran(step.statements)
        self._log_notices()

    def _log_ran(self, statements: Sequence[Statement]) -> None:
        """The statements a transaction ran (timed together: the step's duration), one line
        each, stamped together."""
        if statements:
            lines = (f"  line {s.line}: {_first_line(s.sql)}" for s in statements)
            self.log.write("\n".join(lines))

    def _log_notices(self) -> None:
        for notice in self.driver.notices():
            self.log.write(f"  {notice}")

    # -- statement by statement -----------------------------------------------------------
    def _one_by_one(self, step: Step, direction: Direction, started: float) -> None:
        total = len(step.statements)
        self.log.write(f"  no transaction: {total} statement(s), each commits on its own")
        row = self._begin_progress(step, direction)
        for index, statement in enumerate(step.statements, start=1):
            if index <= step.start_at:
                continue
            try:
                self._execute(step, direction, index, statement)
            except _Stopped as stopped:
                self._stopped_midway(row, stopped.failure, started)
                raise self._error(stopped.failure) from stopped.failure.error
            except BaseException:  # Ctrl-C, SIGTERM: say how far it got, then go on stopping
                failure = Failure(step, direction, index, statement.line, None, index - 1)
                self.driver.recover()
                self._stopped_midway(row, failure, started)
                raise
            row = self._progress(row, step, direction, index, started)
        if direction is Direction.UP:
            self.history.update(replace(row, status=Status.APPLIED, note=self.note))
        else:
            self.history.forget(step.name)

    def _begin_progress(self, step: Step, direction: Direction) -> AppliedMigration:
        """The row that tells how far the step got, written before its first statement."""
        if direction is Direction.DOWN:
            row = next(r for r in self.history.read() if r.migration == step.name)
            row = replace(row, status=Status.FAILED, statements_done=0)
            row = replace(row, note=_rollback_note(row, step, 0))
            self.history.update(row)
            return row
        row = self._row(step, Status.RUNNING, 0, statements_done=step.start_at)
        if step.resumed:  # the row is there
            self.history.update(row)
        else:
            self.history.record(row, step.migration.forward)
        return row

    def _progress(
        self, row: AppliedMigration, step: Step, direction: Direction, done: int, started: float
    ) -> AppliedMigration:
        row = replace(row, statements_done=done, duration_ms=_elapsed_ms(started))
        if direction is Direction.DOWN:
            row = replace(row, note=_rollback_note(row, step, done))
        self.history.update(row)
        return row

    def _stopped_midway(self, row: AppliedMigration, failure: Failure, started: float) -> None:
        note = failure.note()
        row = replace(
            row,
            status=Status.FAILED,
            statements_done=failure.committed,
            duration_ms=_elapsed_ms(started),
            note=note,
        )
        try:
            self.history.update(row)
        except StatementError as error:  # the connection may be what failed
            self.log.write(f"could not record how far {row.migration} got: {error.message}")
        self.log.write(f"FAILED {failure.step.name} outside a transaction: {note}")

    # -- one statement --------------------------------------------------------------------
    def _execute(self, step: Step, direction: Direction, index: int, statement: Statement) -> None:
        """One statement that commits on its own, logged (and on disk) before the next."""
        started = time.perf_counter()
        try:
            self.driver.execute(statement.sql)
        except StatementError as error:
            failure = self._failed(step, direction, index, error)
            self._log_notices()
            raise _Stopped(failure) from error
        self._log_notices()
        elapsed = (time.perf_counter() - started) * 1000
        self.log.write(f"  line {statement.line} ({elapsed:.1f} ms): {_first_line(statement.sql)}")
        self.log.flush()

    def _failed(
        self, step: Step, direction: Direction, index: int, error: StatementError
    ) -> Failure:
        """Statement `index` of the step failed: log it, and where the server pointed."""
        statement = step.statements[index - 1]
        line = statement.line
        if error.position:  # the server pointed inside the statement: name that line
            line += line_of(statement.sql, error.position - 1) - 1
        self.log.write(f"  line {statement.line}: {statement.sql}")
        self.log.write(f"  ERROR at line {line}: {error.message}")
        for label, value in (("DETAIL", error.detail), ("HINT", error.hint)):
            if value:
                self.log.write(f"  {label}: {value}")
        committed = 0 if step.in_transaction else index - 1
        return Failure(step, direction, index, line, error, committed)

    def _row(
        self, step: Step, status: Status, duration_ms: int, statements_done: int | None = None
    ) -> AppliedMigration:
        return new_row(
            step.migration,
            self.applied_by,
            duration_ms,
            status=status,
            origin=Origin.RAN,
            note=self.note,
            out_of_order=step.out_of_order,
            statements_done=statements_done,
            allowed_drift=self.allowed_drift,
        )

    def _error(self, failure: Failure) -> MigrationFailed:
        """The one-line error for a failure, with what the user does next."""
        step, error = failure.step, failure.error
        name, path = step.name, step.migration.path
        detail = f" ({error.detail})" if error is not None and error.detail else ""
        if failure.index is None:  # at COMMIT
            undone = "rolled back" if failure.direction is Direction.UP else "left applied"
            return MigrationFailed(
                f"{path}: {failure.message}{detail}, when committing {name}",
                f"{name} was {undone} whole; fix it (a deferred constraint is checked at "
                "COMMIT) and run the same command again",
            )
        message = f"{path}:{failure.line}: {failure.message}{detail}"
        timed_out = error is not None and error.code in self.driver.facts.lock_timeout_codes
        if not step.in_transaction:
            total = len(step.statements)
            section = "the rollback of " if failure.direction is Direction.DOWN else ""
            message += (
                f" ({section}{name} ran without a transaction: {failure.committed} of {total} "
                "statement(s) had committed)"
            )
            if failure.direction is Direction.DOWN:
                fix = (
                    f"finish or undo the rollback by hand, then run `sqlstage repair "
                    f"{self.environment} {name} --mark-applied` (it is applied) or `--forget` "
                    "(rolled back)"
                )
            else:
                fix = (
                    f"fix the cause, then run `sqlstage repair {self.environment} {name} "
                    f"--resume` to run statements {failure.committed + 1}-{total}, or fix the "
                    "database by hand and use `--mark-applied` or `--forget`"
                )
            hint = failure.invalid_index()
            return MigrationFailed(message, f"{hint}, and {fix}" if hint else fix)
        if timed_out and self.lock_timeout is not None:
            return MigrationFailed(
                f"{message}: waited longer than lock_timeout {self.lock_timeout} for a table "
                "lock that another session holds",
                f"{name} was rolled back; retry when that session is done or traffic "
                "is low, or raise lock_timeout for this environment in sqlstage.toml",
            )
        if failure.direction is Direction.DOWN:
            fix = (
                f"the rollback was undone and {name} stays applied; fix its rollback "
                "section and run the same command again"
            )
        else:
            fix = f"{name} was rolled back; fix it and run the same command again"
        return MigrationFailed(message, (error.hint if error is not None else None) or fix)


class _Stopped(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _rollback_note(row: AppliedMigration, step: Step, done: int) -> str:
    total = len(step.statements)
    return (
        f"rollback in progress without a transaction: {done} of {total} rollback statement(s) "
        "committed"
    )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _first_line(sql: str) -> str:
    first = sql.strip().splitlines()[0] if sql.strip() else ""
    return first if len(first) <= 120 else first[:117] + "..."


# -- runs with no plan around them: verify's scratch database ----------------------------------
def apply_migrations(
    driver: Driver, migrations: Sequence[Migration], log: Log, applied_by: str = ""
) -> list[Migration]:
    """Apply `migrations` as they are, with no rule or confirmation (a scratch database)."""
    return _run_plain(driver, migrations, log, Direction.UP, applied_by)


def rollback_migrations(
    driver: Driver, migrations: Sequence[Migration], log: Log
) -> list[Migration]:
    """Roll `migrations` back in the order given, with no rule or confirmation."""
    return _run_plain(driver, migrations, log, Direction.DOWN)


def _run_plain(
    driver: Driver,
    migrations: Sequence[Migration],
    log: Log,
    direction: Direction,
    applied_by: str = "",
) -> list[Migration]:
    steps = steps_for(driver, migrations, direction)
    runner = Runner(driver, History(driver), log, "verify", applied_by=applied_by)
    done = runner.run(steps, direction)
    return [step.migration for step in done]
