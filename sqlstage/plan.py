"""Migrations + an environment's history -> a Plan: every step and every decision, taken once.

A plan says what runs, in which direction, each step's statements and whether they run in one
transaction, the files renamed since they ran, and the rules the run would break
(`refusals`). The runner executes steps and decides nothing; `commands` refuses a plan whose
`refusals` are not empty; `--dry-run` shows it. Nothing here touches a database: statements
come from the driver's splitter, which only parses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from sqlstage.catalog import Catalog
from sqlstage.config import Environment
from sqlstage.drivers.base import Driver
from sqlstage.errors import MigrationFileError, Refused
from sqlstage.history import AppliedMigration
from sqlstage.migration import (
    NO_TRANSACTION_DIRECTIVE,
    TRANSACTION_CONTROL,
    TRANSACTION_CONTROL_FIX,
    Migration,
    RollbackKind,
    parse_name,
)
from sqlstage.sqltext import Statement


class Direction(Enum):
    """Which section a step runs and what it does to the history row."""

    UP = "apply"
    DOWN = "rollback"

    @property
    def past(self) -> str:
        return "applied" if self is Direction.UP else "rolled back"

    @property
    def gerund(self) -> str:
        return "applying" if self is Direction.UP else "rolling back"

    @property
    def prep(self) -> str:
        return "to" if self is Direction.UP else "on"


class Confirmation(Enum):
    """What a run needs from a person before it starts."""

    NONE = "none"  # --yes, or a protected environment with allow_non_interactive and --yes
    YES_NO = "yes-no"
    TYPE_KEY = "type-the-key"


@dataclass(frozen=True)
class Step:
    """One migration to run, one way."""

    migration: Migration
    statements: tuple[Statement, ...]
    #: all statements and the history change commit together
    in_transaction: bool
    #: numbered below a migration the environment already has
    out_of_order: bool = False
    #: statements already committed by an earlier, interrupted run (`repair --resume`)
    start_at: int = 0
    #: `repair --resume`: its history row is there, even when no statement had committed
    resumed: bool = False

    @property
    def name(self) -> str:
        return self.migration.name


class StepEvents(Protocol):
    """What the runner tells its caller as it goes (the CLI renders it; the library ignores
    it). Here, not in sqlstage.runner, so that a run with nothing to run does not import the
    runner to name what it would have heard."""

    def step_started(self, step: Step, index: int, total: int) -> None: ...

    def step_finished(self, step: Step, duration_ms: int) -> None: ...


class NoEvents:
    def step_started(self, step: Step, index: int, total: int) -> None:
        pass

    def step_finished(self, step: Step, duration_ms: int) -> None:
        pass


@dataclass(frozen=True)
class Rename:
    """A file renamed after it ran: same number, same checksum, new name."""

    old: str
    new: Migration


@dataclass(frozen=True)
class Plan:
    """What one run will do to one environment."""

    environment: Environment
    direction: Direction
    steps: tuple[Step, ...]
    #: everything the environment lacks (apply) / has (rollback)
    pending: tuple[Migration, ...]
    history: tuple[AppliedMigration, ...]
    warnings: tuple[str, ...] = ()
    #: the user named a migration the environment already has (apply) ...
    already_applied: AppliedMigration | None = None
    #: ... or does not have (rollback)
    not_applied: Migration | None = None
    renames: tuple[Rename, ...] = ()
    #: every rule this run would break; the run starts only when there is none
    refusals: tuple[Refused, ...] = ()
    #: why rules were set aside on purpose (--skip-rehearsal, --allow-lint): logged and
    #: written in each history row
    note: str | None = None
    backup: bool = False
    confirmation: Confirmation = Confirmation.NONE
    #: the database has migrations but no marker: marking it needs a person or --adopt
    adopt: bool = False
    #: lint findings of the steps' SQL (sqlstage.lint.Finding)
    findings: tuple[object, ...] = field(default=())
    #: the environment drifted and the run goes on anyway (--allow-drift): why, and what
    #: differed; logged and written in each history row
    allowed_drift: str | None = None

    @property
    def migrations(self) -> tuple[Migration, ...]:
        return tuple(step.migration for step in self.steps)

    @property
    def empty(self) -> bool:
        return not self.steps and not self.renames

    @property
    def outside_transaction(self) -> frozenset[str]:
        return frozenset(step.name for step in self.steps if not step.in_transaction)


def history_warnings(
    catalog: Catalog,
    applied: Sequence[AppliedMigration],
    env: str,
    renamed: Sequence[Rename] = (),
) -> list[str]:
    """Edited applied files and recorded migrations whose file is gone."""
    files = catalog.by_name()
    moved = {rename.old: rename.new for rename in renamed}
    warnings = []
    for row in applied:
        migration = files.get(row.migration)
        if row.migration in moved:
            warnings.append(
                f"{row.migration} was renamed to {moved[row.migration].file_name} after it "
                f"was applied to {env}; nothing runs again, the record follows the new name"
            )
        elif migration is None:
            warnings.append(f"{row.migration} is applied to {env} but its file is gone")
        elif not migration.matches(row.checksum):
            warnings.append(
                f"{migration.file_name} was edited after it was applied to {env} "
                "(its checksum differs from the recorded one)"
            )
    return warnings


def find_renames(
    environment: str, catalog: Catalog, history: Sequence[AppliedMigration]
) -> tuple[Rename, ...]:
    """Files whose number an applied migration has under another name. Same checksum: a
    rename; another checksum: refused (exit 2), since running it would run a different
    migration under a number the database already has."""
    files = catalog.by_name()
    by_number = {m.number: m for m in catalog.migrations}
    renames = []
    for row in history:
        if row.migration in files:
            continue
        parsed = _number(row.migration)
        if parsed is None or parsed[0] not in by_number:
            continue
        new = by_number[parsed[0]]
        if not new.matches(row.checksum):
            raise MigrationFileError(
                f"{new.path}: number {parsed[0]} is already applied to {environment} as "
                f"{row.migration}, with other SQL; nothing was run",
                f"give {new.file_name} a new number (`sqlstage new` picks the next one), or "
                f"restore {row.migration}.sql",
            )
        renames.append(Rename(row.migration, new))
    return tuple(renames)


def choose_apply(
    environment: Environment,
    catalog: Catalog,
    history: Sequence[AppliedMigration],
    target: str | None = None,
    to: str | None = None,
    allow_out_of_order: bool = False,
) -> Plan:
    """The migrations to run, without steps yet (`with_steps` splits them).

    No target: every pending migration. `target`: exactly that one, which must be the next
    pending one. `to`: pending ones up to and including it.
    """
    history = tuple(history)
    renames = find_renames(environment.key, catalog, history)
    done = {row.migration for row in history} | {r.new.name for r in renames}
    pending = [m for m in catalog.migrations if m.name not in done]
    warnings = tuple(history_warnings(catalog, history, environment.key, renames))
    plan = Plan(environment, Direction.UP, (), tuple(pending), history, warnings, renames=renames)
    by_name = {row.migration: row for row in history}
    chosen = pending
    if target is not None:
        wanted = catalog.find(target)
        if wanted.name in by_name:
            return replace(plan, already_applied=by_name[wanted.name], renames=())
        if wanted.name not in {m.name for m in pending}:  # renamed: nothing to run
            return plan
        before = [m.name for m in pending[: pending.index(wanted)]]
        if before:
            raise Refused(
                f"{wanted.name} is not the next migration for {environment.key}: "
                f"{', '.join(before)} must come first",
                f"apply them first, or run `sqlstage apply {environment.key} --to {wanted.name}`",
            )
        chosen = [wanted]
    elif to is not None:
        last = catalog.find(to)
        chosen = [m for m in pending if m.number <= last.number]
    if not chosen:  # up to date: no number to compare (1,000 names not parsed three times)
        return plan
    _check_order(environment, chosen, history, allow_out_of_order)
    highest = _highest(history)
    steps = tuple(
        Step(m, (), True, out_of_order=highest is not None and m.number < highest) for m in chosen
    )
    return replace(plan, steps=steps)


def _highest(history: Sequence[AppliedMigration]) -> int | None:
    numbers = [parsed[0] for row in history if (parsed := _number(row.migration))]
    return max(numbers) if numbers else None


def _check_order(
    environment: Environment,
    chosen: Sequence[Migration],
    applied: Sequence[AppliedMigration],
    allow_out_of_order: bool,
) -> None:
    numbered = {parsed[0]: row.migration for row in applied if (parsed := _number(row.migration))}
    if not numbered or allow_out_of_order:
        return
    highest = max(numbered)
    late = [m.name for m in chosen if m.number < highest]
    if late:
        raise Refused(
            f"{late[0]} is numbered below {numbered[highest]}, which {environment.key} already "
            "has; was a branch merged?",
            "renumber it after the applied ones, or pass --allow-out-of-order",
        )


def _number(name: str) -> tuple[int, str] | None:
    return parse_name(name + ".sql")


def choose_rollback(
    environment: Environment,
    catalog: Catalog,
    history: Sequence[AppliedMigration],
    target: str | None = None,
) -> Plan:
    """The migrations to roll back: the last applied one, or `target` and every migration
    applied after it, newest first.

    Refused (nothing runs) when one of them has no rollback section, is declared
    irreversible, or its file is gone.
    """
    history = tuple(history)
    rows = [row for row in history if row.is_applied]
    warnings = tuple(history_warnings(catalog, history, environment.key))
    plan = Plan(environment, Direction.DOWN, (), (), history, warnings)
    chosen = rows[-1:]
    if target is not None:
        wanted = catalog.find(target)
        names = [row.migration for row in rows]
        if wanted.name not in names:
            return replace(plan, not_applied=wanted)
        chosen = rows[names.index(wanted.name) :]
    files = catalog.by_name()
    steps = []
    for row in reversed(chosen):
        migration = files.get(row.migration)
        if migration is None:
            raise Refused(
                f"{row.migration} is applied to {environment.key} but its file is gone, so its "
                "rollback cannot be read; nothing was rolled back",
                f"restore {row.migration}.sql (git checkout it) and run the same command again",
            )
        if migration.rollback_kind is RollbackKind.IRREVERSIBLE:
            why = f" ({migration.rollback_note})" if migration.rollback_note else ""
            raise Refused(
                f"{migration.path} is declared irreversible{why}; nothing was rolled back "
                f"on {environment.key}",
                "undo it with a new migration, or restore a backup",
            )
        if migration.rollback is None:
            raise Refused(
                f"{migration.path} has no rollback section; nothing was rolled back "
                f"on {environment.key}",
                "write its rollback, commented out, below a '-- rollback' line, or undo it "
                "with a new migration",
            )
        steps.append(Step(migration, (), True))
    return replace(plan, steps=tuple(steps), pending=tuple(s.migration for s in steps))


# -- statements and transactions ------------------------------------------------------------
def with_steps(plan: Plan, driver: Driver) -> Plan:
    """The plan with each step's statements split and its transaction decided."""
    steps = tuple(
        replace(step, statements=tuple(s), in_transaction=not _outside(driver, step.migration, s))
        for step in plan.steps
        if (s := section_statements(driver, step.migration, plan.direction)) is not None
    )
    return replace(plan, steps=steps)


def steps_for(driver: Driver, migrations: Sequence[Migration], direction: Direction) -> list[Step]:
    """Steps with no plan around them (verify's scratch runs)."""
    steps = []
    for migration in migrations:
        statements = section_statements(driver, migration, direction)
        steps.append(
            Step(migration, tuple(statements), not _outside(driver, migration, statements))
        )
    return steps


def runs_outside(driver: Driver, migration: Migration, direction: Direction) -> bool:
    """Whether that section of the migration runs statement by statement (a file error when
    it mixes what must and what cannot run in a transaction)."""
    return _outside(driver, migration, section_statements(driver, migration, direction))


def section_statements(
    driver: Driver, migration: Migration, direction: Direction
) -> list[Statement]:
    """The forward or rollback section's statements, with the file lines they are on."""
    if direction is Direction.UP:
        return _split(driver, migration, migration.forward, 0)
    if migration.rollback is None or migration.rollback_line is None:
        return []
    # rollback statements count from the marker's next line
    return _split(driver, migration, migration.rollback, migration.rollback_line)


def _split(driver: Driver, migration: Migration, sql: str, offset: int) -> list[Statement]:
    """A driver's split error (`line 3: ...`, counted in `sql`) names the file and its line."""
    try:
        statements = driver.statements(sql)
    except MigrationFileError as err:
        message = err.message
        found = re.match(r"line (\d+): (.*)", message, re.DOTALL)
        if found:
            message = f"{migration.path}:{int(found[1]) + offset}: {found[2]}"
        elif not message.startswith(str(migration.path)):
            message = f"{migration.path}: {message}"
        raise MigrationFileError(message, err.fix, err.details) from err
    return [Statement(s.sql, offset + s.line) for s in statements] if offset else statements


def _outside(driver: Driver, migration: Migration, statements: Sequence[Statement]) -> bool:
    """Whether the section runs statement by statement in autocommit.

    Yes when the file starts with the directive, or when every statement must; a section that
    mixes such a statement with others and has no directive is a file error (exit 2) naming
    the line, because half of it would commit and half would not. Where DDL commits itself
    (MySQL), a section with such a statement can never be one transaction, so it runs
    statement by statement whatever else it holds, recording its progress after each one
    (`repair --resume` continues it); a section of DML alone stays one transaction.
    """
    if not migration.no_transaction:
        _refuse_transaction_control(driver, migration, statements)
    flagged = [(s, r) for s in statements if (r := driver.outside_transaction_reason(s.sql))]
    if migration.no_transaction or not flagged:
        return migration.no_transaction
    if len(flagged) == len(statements) or not driver.facts.transactional_ddl:
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
                f"{migration.path}:{statement.line}: "
                + TRANSACTION_CONTROL.format(control=control),
                TRANSACTION_CONTROL_FIX,
            )
