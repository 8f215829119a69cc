"""Prove that each rollback undoes its migration: up, down, up again on a scratch database.

1. up: apply each migration in order, snapshotting the schema before each one;
2. down: roll back from the newest to the oldest, checking after each rollback that the schema
   equals the snapshot taken before that migration was applied;
3. up again: re-apply what was rolled back, and check the schema equals the first up's.

Everything runs on one connection. A rollback that fails, or a migration with no rollback
section, stops the walk down: the migrations below it cannot be rolled back from a schema
that still holds it, so they are reported as not checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlstage.drivers.base import Driver, StatementError
from sqlstage.errors import MigrationFailed, MigrationFileError
from sqlstage.migration import Migration, parse_name, parse_text
from sqlstage.runlog import RunLog
from sqlstage.runner import apply_migrations, rollback_migrations
from sqlstage.schema import Snapshot, diff, snapshot

OK = "ok"
NO_ROLLBACK = "no rollback section"
ROLLBACK_FAILED = "rollback failed"
DIFFERENCES = "rollback leaves differences"
APPLY_FAILED = "apply failed"
REAPPLY_FAILED = "re-apply failed"
NOT_CHECKED = "not checked"


@dataclass
class MigrationCheck:
    """One migration's verdict; `details` holds the database's error or the differences."""

    migration: str
    result: str = NOT_CHECKED
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result == OK


@dataclass(frozen=True)
class VerifyOutcome:
    setup: tuple[str, ...]
    checks: tuple[MigrationCheck, ...]
    #: findings that belong to no single migration (the second up differs from the first)
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems and all(check.ok for check in self.checks)


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
    driver: Driver,
    migrations: Sequence[Migration],
    log: RunLog,
    from_number: int | None = None,
    data: Migration | None = None,
    events: VerifyEvents | None = None,
) -> VerifyOutcome:
    """Run up / down / up on the (empty) database behind `driver` and judge each migration
    numbered `from_number` or above; those below are applied as setup, unchecked."""
    events = events or NoVerifyEvents()
    setup = [m for m in migrations if from_number is not None and m.number < from_number]
    checked = [m for m in migrations if m not in setup]
    checks = [MigrationCheck(m.name) for m in checked]
    events.started(len(setup) + 3 * len(checked) + (1 if data else 0))
    loader = _Data(data)
    _up_setup(driver, setup, loader, log, events)
    befores, top = _up(driver, checked, checks, loader, log, events)
    rolled = _down(driver, checked[: len(befores)], checks, befores, log, events)
    problems = _up_again(driver, checked, checks, rolled, top, log, events)
    return VerifyOutcome(tuple(m.name for m in setup), tuple(checks), tuple(problems))


def _up_setup(
    driver: Driver, setup: list[Migration], loader: _Data, log: RunLog, events: VerifyEvents
) -> None:
    for migration in setup:
        loader.load_before(driver, migration, log, events)
        events.step(f"setup {migration.name}")
        apply_migrations(driver, [migration], log)


def _up(
    driver: Driver,
    checked: list[Migration],
    checks: list[MigrationCheck],
    loader: _Data,
    log: RunLog,
    events: VerifyEvents,
) -> tuple[list[Snapshot], Snapshot]:
    """Apply each checked migration; returns the snapshot before each applied one, and the
    schema at the top."""
    befores: list[Snapshot] = []
    for migration, check in zip(checked, checks, strict=True):
        loader.load_before(driver, migration, log, events)
        events.step(f"apply {migration.name}")
        before = snapshot(driver)
        try:
            apply_migrations(driver, [migration], log)
        except MigrationFailed as error:
            check.result, check.details = APPLY_FAILED, [error.message]
            for later in checks[len(befores) + 1 :]:
                later.details = [f"{migration.name} before it failed to apply"]
            break
        befores.append(before)
    else:
        loader.load_before(driver, None, log, events)
    return befores, snapshot(driver)


def _down(
    driver: Driver,
    applied: list[Migration],
    checks: list[MigrationCheck],
    befores: list[Snapshot],
    log: RunLog,
    events: VerifyEvents,
) -> list[int]:
    """Roll back newest first; returns the indexes rolled back."""
    reported: set[str] = set()  # leftovers already blamed on a later migration
    rolled: list[int] = []
    for index in reversed(range(len(applied))):
        migration, check = applied[index], checks[index]
        events.step(f"roll back {migration.name}")
        if migration.rollback is None:
            check.result = NO_ROLLBACK
            _not_checked_below(checks[:index], f"{migration.name} above it has no rollback")
            break
        try:
            rollback_migrations(driver, [migration], log)
        except MigrationFailed as error:
            check.result, check.details = ROLLBACK_FAILED, [error.message]
            _not_checked_below(checks[:index], f"the rollback of {migration.name} failed")
            break
        found = [str(d) for d in diff(befores[index], snapshot(driver))]
        new = [line for line in found if line not in reported]
        reported.update(found)
        check.result, check.details = (DIFFERENCES, new) if new else (OK, [])
        rolled.append(index)
    return rolled


def _up_again(
    driver: Driver,
    checked: list[Migration],
    checks: list[MigrationCheck],
    rolled: list[int],
    top: Snapshot,
    log: RunLog,
    events: VerifyEvents,
) -> list[str]:
    for index in sorted(rolled):
        migration, check = checked[index], checks[index]
        events.step(f"re-apply {migration.name}")
        try:
            apply_migrations(driver, [migration], log)
        except MigrationFailed as error:
            if check.ok:
                check.result, check.details = REAPPLY_FAILED, [error.message]
            else:
                check.details.append(f"and re-applying it failed: {error.message}")
            return []
    again = [str(d) for d in diff(top, snapshot(driver))]
    if again and all(check.ok for check in checks):
        return [
            f"after up, down and up again the schema differs from the first up: {line}"
            for line in again
        ]
    return []


def _not_checked_below(checks: list[MigrationCheck], reason: str) -> None:
    for check in checks:
        if check.result == NOT_CHECKED:
            check.details = [reason]


class _Data:
    """The `--data` file, loaded once: before the first migration numbered above its point,
    or at the end of the first up."""

    def __init__(self, data: Migration | None) -> None:
        self.data = data
        self.loaded = data is None

    def load_before(
        self, driver: Driver, migration: Migration | None, log: RunLog, events: VerifyEvents
    ) -> None:
        data = self.data
        if self.loaded or data is None:
            return
        if migration is not None and migration.number <= data.number:
            return
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
