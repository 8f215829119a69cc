"""Migrations + an environment's applied history -> what to run, or why not."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlstage.catalog import Catalog
from sqlstage.config import Environment
from sqlstage.drivers.base import AppliedMigration
from sqlstage.errors import Refused
from sqlstage.migration import Migration, RollbackKind, parse_name


@dataclass(frozen=True)
class Plan:
    """What an `apply` will run against one environment.

    `migrations` is what runs, in order; `pending` everything not yet applied;
    `already_applied` is set when the user named a migration the environment already has.
    """

    environment: Environment
    migrations: tuple[Migration, ...]
    pending: tuple[Migration, ...]
    applied: tuple[AppliedMigration, ...]
    warnings: tuple[str, ...] = ()
    already_applied: AppliedMigration | None = None
    #: names of the migrations that run statement by statement (sqlstage.transactions)
    outside_transaction: frozenset[str] = frozenset()


def pending_migrations(catalog: Catalog, applied_names: Iterable[str]) -> list[Migration]:
    done = set(applied_names)
    return [m for m in catalog.migrations if m.name not in done]


def history_warnings(catalog: Catalog, applied: Sequence[AppliedMigration], env: str) -> list[str]:
    """Edited applied files and recorded migrations whose file is gone."""
    files = catalog.by_name()
    warnings = []
    for row in applied:
        migration = files.get(row.migration)
        if migration is None:
            warnings.append(f"{row.migration} is applied to {env} but its file is gone")
        elif migration.checksum != row.checksum:
            warnings.append(
                f"{migration.file_name} was edited after it was applied to {env} "
                "(its checksum differs from the recorded one)"
            )
    return warnings


def plan_apply(
    environment: Environment,
    catalog: Catalog,
    applied: Sequence[AppliedMigration],
    target: str | None = None,
    to: str | None = None,
    allow_out_of_order: bool = False,
) -> Plan:
    """Choose the migrations to run.

    No target: every pending migration. `target`: exactly that one, which must be the next
    pending one. `to`: pending ones up to and including it.
    """
    applied = tuple(applied)
    pending = pending_migrations(catalog, (row.migration for row in applied))
    warnings = tuple(history_warnings(catalog, applied, environment.key))
    by_name = {row.migration: row for row in applied}
    chosen = pending
    if target is not None:
        wanted = catalog.find(target)
        if wanted.name in by_name:
            return Plan(environment, (), tuple(pending), applied, warnings, by_name[wanted.name])
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
    _check_order(environment, chosen, applied, allow_out_of_order)
    return Plan(environment, tuple(chosen), tuple(pending), applied, warnings)


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


def out_of_order_notes(plan: Plan) -> dict[str, str]:
    """History notes for planned migrations numbered below one already applied."""
    from sqlstage.status_file import OUT_OF_ORDER_NOTE

    numbered = {
        parsed[0]: row.migration for row in plan.applied if (parsed := _number(row.migration))
    }
    if not numbered:
        return {}
    highest = max(numbered)
    return {
        m.name: f"{OUT_OF_ORDER_NOTE} (after {numbered[highest]})"
        for m in plan.migrations
        if m.number < highest
    }


def _number(name: str) -> tuple[int, str] | None:
    return parse_name(name + ".sql")


@dataclass(frozen=True)
class RollbackPlan:
    """What a `rollback` will undo on one environment, newest first.

    `not_applied` is set when the user named a migration the environment does not have.
    """

    environment: Environment
    migrations: tuple[Migration, ...]
    applied: tuple[AppliedMigration, ...]
    warnings: tuple[str, ...] = ()
    not_applied: Migration | None = None


def plan_rollback(
    environment: Environment,
    catalog: Catalog,
    applied: Sequence[AppliedMigration],
    target: str | None = None,
) -> RollbackPlan:
    """Choose the migrations to roll back: the last applied one, or `target` after every
    migration applied after it, newest first.

    Refused (nothing runs) when one of them has no rollback section, is declared
    irreversible, or its file is gone.
    """
    applied = tuple(applied)
    rows = [row for row in applied if row.status == "applied"]
    warnings = tuple(history_warnings(catalog, applied, environment.key))
    chosen = rows[-1:]
    if target is not None:
        wanted = catalog.find(target)
        names = [row.migration for row in rows]
        if wanted.name not in names:
            return RollbackPlan(environment, (), applied, warnings, not_applied=wanted)
        chosen = rows[names.index(wanted.name) :]
    files = catalog.by_name()
    migrations = []
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
        migrations.append(migration)
    return RollbackPlan(environment, tuple(migrations), applied, warnings)
