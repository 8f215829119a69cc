"""Putting a record right: `repair` (one history row), `baseline` (adopt an existing
database) and `status --repair` (rebuild status.json from what it still says).

Each changes only sqlstage's records, never the user's schema, and says what it did in the
history row's note: who, when and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlstage.catalog import Catalog, is_number
from sqlstage.checksums import edited
from sqlstage.errors import ConfigError, Refused, StatusFileError
from sqlstage.history import AppliedMigration, History, Origin, Status, new_row
from sqlstage.migration import Migration, parse_name
from sqlstage.status_file import Recorded, StatusFile, parse_stamp, parse_status, utc_stamp


class RepairAction(StrEnum):
    MARK_APPLIED = "mark-applied"
    FORGET = "forget"
    ACCEPT = "accept"
    #: run the statements a migration outside a transaction did not get to
    RESUME = "resume"
    #: the history row follows a file renamed after it ran (same number and checksum)
    RENAME = "rename"


def _stamp() -> str:
    return utc_stamp(datetime.now(UTC))


def find_row(history: Sequence[AppliedMigration], name: str) -> AppliedMigration | None:
    return next((row for row in history if row.migration == name), None)


def resolve_name(catalog: Catalog, history: Sequence[AppliedMigration], reference: str) -> str:
    """A migration's name from a file name or number; a history row whose file is gone counts
    (and, for a number, wins: that is the row a repair changes)."""
    wanted = reference.removesuffix(".sql")
    for row in history:
        parsed = parse_name(row.migration + ".sql")
        if row.migration == wanted or (
            is_number(wanted) and parsed is not None and parsed[0] == int(wanted)
        ):
            return row.migration
    return catalog.find(reference).name


def repair(
    history: History,
    environment: str,
    catalog: Catalog,
    name: str,
    action: RepairAction,
    by: str,
) -> str:
    """Change one history row; returns a sentence saying what changed. (RESUME runs SQL and
    is done by `commands.repair` through the runner.)"""
    rows = history.read()
    row = find_row(rows, name)
    migration = catalog.by_name().get(name)
    if action is RepairAction.FORGET:
        if row is None:
            raise Refused(f"{name} is not in {environment}'s history: nothing to forget")
        history.forget(name)
        return f"forgot {name} on {environment}: it is pending again (its SQL was not undone)"
    if action is RepairAction.ACCEPT:
        return _accept(history, environment, migration, row, name, by)
    if action is RepairAction.RENAME:
        return _rename(history, environment, catalog, row, name)
    return _mark_applied(history, environment, migration, row, name, by)


def _accept(
    history: History,
    environment: str,
    migration: Migration | None,
    row: AppliedMigration | None,
    name: str,
    by: str,
) -> str:
    if migration is None or row is None or not edited(_catalog_of(migration), [row]):
        raise Refused(
            f"{name} is not an applied migration whose file was edited on {environment}: "
            "nothing to accept"
        )
    note = _join(
        row.note, f"edit accepted by {by} at {_stamp()} (checksum was {row.checksum[:12]})"
    )
    history.update(replace(row, checksum=migration.checksum, note=note, origin=Origin.ACCEPTED))
    return f"accepted the edit of {migration.file_name} on {environment}"


def _mark_applied(
    history: History,
    environment: str,
    migration: Migration | None,
    row: AppliedMigration | None,
    name: str,
    by: str,
) -> str:
    if row is not None and row.is_applied:
        raise Refused(f"{name} is already applied to {environment}: nothing to mark")
    note = f"marked applied by {by} at {_stamp()}"
    if row is not None:
        history.update(
            replace(row, status=Status.APPLIED, note=_join(row.note, note), origin=Origin.MARKED)
        )
        return f"marked {name} applied on {environment}"
    if migration is None:
        raise ConfigError(f"no migration '{name}' in the migrations folder")
    history.ensure()
    history.record(
        new_row(migration, by, origin=Origin.MARKED, note=f"{note}: not run by sqlstage"),
        migration.forward,
    )
    return f"marked {name} applied on {environment} without running it"


def _rename(
    history: History,
    environment: str,
    catalog: Catalog,
    row: AppliedMigration | None,
    name: str,
) -> str:
    parsed = parse_name(name + ".sql")
    new = next((m for m in catalog.migrations if parsed and m.number == parsed[0]), None)
    if row is None or new is None or new.name == name:
        raise Refused(
            f"{name}: no applied migration whose file was renamed on {environment}: "
            "nothing to rename"
        )
    if not new.matches(row.checksum):
        raise Refused(
            f"{new.file_name} has number {parsed[0] if parsed else '?'} like the applied "
            f"{name}, but other SQL: it is not a rename",
            f"give {new.file_name} a new number, or restore {name}.sql",
        )
    history.rename(name, new.name)
    return f"renamed {name} to {new.name} in {environment}'s history"


def _catalog_of(migration: Migration) -> Catalog:
    return Catalog(migration.path.parent, (migration,))


def _join(old: str | None, new: str) -> str:
    return f"{old}; {new}" if old else new


# -- baseline -------------------------------------------------------------------------------
def plan_baseline(
    environment: str, catalog: Catalog, history: Sequence[AppliedMigration], target: Migration
) -> list[Migration]:
    """The migrations up to `target` that the history lacks; refuses when the history already
    goes past it (a baseline only moves a record forward)."""
    files = catalog.by_name()
    later = [
        row.migration
        for row in history
        if (m := files.get(row.migration)) is not None and m.number > target.number
    ]
    if later:
        raise Refused(
            f"{environment} already has {later[-1]}, after {target.name}: a baseline cannot "
            "move its history back",
            "baseline at a later migration, or use `sqlstage repair` for single rows",
        )
    have = {row.migration for row in history}
    return [m for m in catalog.migrations if m.number <= target.number and m.name not in have]


def record_baseline(
    history: History,
    migrations: Sequence[Migration],
    by: str,
    dates: Mapping[str, datetime] | None = None,
) -> None:
    """History rows for migrations that were not run, all in one transaction; a migration
    `dates` names keeps that date as its applied_at (the old record's), the others get now."""
    history.ensure()
    note = f"baseline by {by} at {_stamp()}: not run by sqlstage"
    dates = dates or {}
    with history.driver.transaction():
        for migration in migrations:
            row = new_row(migration, by, origin=Origin.BASELINE, note=note)
            when = dates.get(migration.name)
            if when is not None:
                row = replace(row, applied_at=when, note=f"{note}; applied_at from status.json")
            history.record(row, migration.forward)


def recorded_dates(records: Sequence[Recorded], catalog: Catalog) -> dict[str, datetime]:
    """The dates status.json gives the migrations it records. An undated one (a seed-shaped
    file dates only its lastApplied) takes the earliest date of those numbered after it: it
    was applied by then."""
    number = {m.name: m.number for m in catalog.migrations}
    dated = [(number.get(r.migration), parse_stamp(r.applied_at)) for r in records]
    dates: dict[str, datetime] = {}
    for record in records:
        own = parse_stamp(record.applied_at)
        mine = number.get(record.migration)
        later = [
            when for n, when in dated if when and n is not None and mine is not None and n >= mine
        ]
        when = own or (min(later) if later else None)
        if when is not None:
            dates[record.migration] = when
    return dates


# -- status.json recovery -------------------------------------------------------------------
@dataclass(frozen=True)
class Salvage:
    """What can still be read from a damaged status.json, and what cannot."""

    status: StatusFile
    unknown: tuple[str, ...]


def salvage_status(path: Path, environments: Sequence[str]) -> Salvage:
    """Rebuild what the file still tells. Conflict markers: keep what both sides agree on
    (an environment both sides describe alike), so the file never claims more is applied
    than it knows. Environments it cannot tell about are `unknown`."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    try:
        status = parse_status(text, path)
        return Salvage(status, tuple(k for k in environments if _unknown(status, k)))
    except StatusFileError:
        pass
    sides = [_side(text, keep) for keep in ("ours", "theirs")]
    try:
        ours, theirs = (parse_status(side, path) for side in sides)
    except StatusFileError:
        return Salvage(StatusFile(), tuple(environments))
    agreed = {
        key: state
        for key, state in ours.environments.items()
        if theirs.environments.get(key) == state
    }
    status = StatusFile(ours.last_updated, agreed)
    return Salvage(status, tuple(k for k in environments if _unknown(status, k)))


def _unknown(status: StatusFile, key: str) -> bool:
    return status.environments.get(key) is None


def _side(text: str, keep: str) -> str:
    """The text with each git conflict resolved to one side (diff3 base sections dropped)."""
    out, region = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("<<<<<<<"):
            region = "ours"
        elif line.startswith("|||||||") and region:
            region = "base"
        elif line.startswith("=======") and region:
            region = "theirs"
        elif line.startswith(">>>>>>>") and region:
            region = None
        elif region is None or region == keep:
            out.append(line)
    return "".join(out)
