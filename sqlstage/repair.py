"""Putting a record right: `repair` (one history row), `baseline` (adopt an existing
database) and `status --repair` (rebuild status.json from what it still says).

Each changes only sqlstage's records, never the user's schema, and says what it did in the
history row's note: who, when and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlstage.catalog import Catalog
from sqlstage.checksums import edited
from sqlstage.drivers.base import AppliedMigration, Driver
from sqlstage.errors import ConfigError, Refused, StatusFileError
from sqlstage.migration import Migration, parse_name
from sqlstage.status_file import StatusFile, parse_status, utc_stamp
from sqlstage.transactions import FAILED, history_row


class RepairAction(StrEnum):
    MARK_APPLIED = "mark-applied"
    FORGET = "forget"
    ACCEPT = "accept"


def _stamp() -> str:
    return utc_stamp(datetime.now(UTC))


def _find_row(history: Sequence[AppliedMigration], name: str) -> AppliedMigration | None:
    return next((row for row in history if row.migration == name), None)


def resolve_name(catalog: Catalog, history: Sequence[AppliedMigration], reference: str) -> str:
    """A migration's name from a file name or number; a history row whose file is gone counts."""
    try:
        return catalog.find(reference).name
    except ConfigError:
        wanted = reference.removesuffix(".sql")
        for row in history:
            parsed = parse_name(row.migration + ".sql")
            if row.migration == wanted or (
                wanted.isdigit() and parsed is not None and parsed[0] == int(wanted)
            ):
                return row.migration
        raise


def repair(
    driver: Driver, environment: str, catalog: Catalog, name: str, action: RepairAction, by: str
) -> str:
    """Change one history row; returns a sentence saying what changed."""
    history = driver.applied()
    row = _find_row(history, name)
    migration = catalog.by_name().get(name)
    if action is RepairAction.FORGET:
        if row is None:
            raise Refused(f"{name} is not in {environment}'s history: nothing to forget")
        driver.forget(name)
        return f"forgot {name} on {environment}: it is pending again (its SQL was not undone)"
    if action is RepairAction.ACCEPT:
        return _accept(driver, environment, migration, row, name, by)
    return _mark_applied(driver, environment, migration, row, name, by)


def _accept(
    driver: Driver,
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
    driver.update_history(name, row.status, migration.checksum, note)
    return f"accepted the edit of {migration.file_name} on {environment}"


def _mark_applied(
    driver: Driver,
    environment: str,
    migration: Migration | None,
    row: AppliedMigration | None,
    name: str,
    by: str,
) -> str:
    if row is not None and row.status != FAILED:
        raise Refused(f"{name} is already applied to {environment}: nothing to mark")
    if row is not None:
        driver.update_history(
            name, "applied", row.checksum, _join(row.note, f"marked applied by {by} at {_stamp()}")
        )
        return f"marked {name} applied on {environment}"
    if migration is None:
        raise ConfigError(f"no migration '{name}' in {row or 'the migrations folder'}")
    driver.ensure_history()
    driver.record(
        _not_run(migration, by, f"marked applied by {by} at {_stamp()}: not run by sqlstage"),
        migration.forward,
    )
    return f"marked {name} applied on {environment} without running it"


def _catalog_of(migration: Migration) -> Catalog:
    return Catalog(migration.path.parent, (migration,))


def _join(old: str | None, new: str) -> str:
    return f"{old}; {new}" if old else new


def _not_run(migration: Migration, by: str, note: str) -> AppliedMigration:
    return history_row(migration, by, 0, note=note)


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


def record_baseline(driver: Driver, migrations: Sequence[Migration], by: str) -> None:
    """History rows for migrations that were not run, all in one transaction."""
    driver.ensure_history()
    note = f"baseline by {by} at {_stamp()}: not run by sqlstage"
    with driver.transaction():
        for migration in migrations:
            driver.record(_not_run(migration, by, note), migration.forward)


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
