"""`database/migrations/fleets/ENV.json`: the committed record of where each target of a
fleet stands, and status.json's entry for the fleet computed from it.

The record names targets, never URLs or passwords. Each target says its last applied
migration (the highest numbered), when, the migrations below it it lacks (`missing`, almost
always absent) and its last failure, if any:

    {"environment": "pro", "targets": {
      "127.0.0.1:5433/tenant_01": {"lastApplied": "002_add_check", "appliedAt": "..."},
      "127.0.0.1:5433/tenant_02": {"lastApplied": "001_create", "appliedAt": "...",
                                   "failed": {"migration": "002_add_check", "at": "...",
                                              "error": "check constraint ... is violated"}}}}

Like status.json it is rewritten atomically under its folder's lock, one target per line,
so runs of two fleets (or two runs of one) keep each other's targets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlstage.catalog import Catalog
from sqlstage.config import Config, Environment
from sqlstage.errors import ConfigError, StatusFileError
from sqlstage.history import AppliedMigration, Origin
from sqlstage.status_file import (
    EnvironmentState,
    Recorded,
    update_environment,
    utc_stamp,
    write_atomic,
)
from sqlstage.writable import folder_lock

FLEET_DIR = "fleets"
#: a failure's message is kept to one short line: the record is committed
ERROR_CHARS = 300


@dataclass(frozen=True)
class TargetFailure:
    migration: str
    at: str
    error: str


@dataclass(frozen=True)
class TargetState:
    """Where one target stands."""

    last_applied: str | None = None
    applied_at: str | None = None
    #: migrations numbered below last_applied that it does not have
    missing: tuple[str, ...] = ()
    failure: TargetFailure | None = None

    def has(self, migration: str, catalog: Catalog) -> bool:
        if self.last_applied is None or migration in self.missing:
            return False
        by_name = catalog.by_name()
        last, this = by_name.get(self.last_applied), by_name.get(migration)
        if last is None or this is None:
            return migration == self.last_applied
        return this.number <= last.number


@dataclass(frozen=True)
class FleetRecord:
    environment: str
    targets: dict[str, TargetState] = field(default_factory=dict)


def record_path(config: Config, key: str) -> Path:
    """`fleets/ENV.json` next to status.json."""
    return config.status_file.parent / FLEET_DIR / f"{key}.json"


def target_state(history: Iterable[AppliedMigration], catalog: Catalog) -> TargetState:
    """A target's place from its history table (no failure: the run adds it)."""
    applied = {row.migration: row for row in history if row.is_applied}
    known = [m for m in catalog.migrations if m.name in applied]
    if not known:
        return TargetState()
    last = known[-1]
    missing = tuple(
        m.name for m in catalog.migrations if m.number < last.number and m.name not in applied
    )
    return TargetState(last.name, utc_stamp(applied[last.name].applied_at), missing)


def failure(migration: str, error: str) -> TargetFailure:
    line = error.splitlines()[0] if error else ""
    return TargetFailure(migration, utc_stamp(datetime.now(UTC)), line[:ERROR_CHARS])


# -- the file -----------------------------------------------------------------------------
def read_record(path: Path, key: str) -> FleetRecord:
    """The record; empty when it does not exist. A damaged one is StatusFileError (exit 2)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return FleetRecord(key)
    except (OSError, UnicodeDecodeError) as err:
        raise StatusFileError(f"cannot read {path}: {err}", _REBUILD) from err
    try:
        data = json.loads(text) if text.strip() else {}
        targets = data.get("targets") or {}
        return FleetRecord(key, {name: _state(entry) for name, entry in targets.items()})
    except (ValueError, AttributeError, TypeError, KeyError) as err:
        raise StatusFileError(f"{path}: not a fleet record ({err})", _REBUILD) from err


_REBUILD = "delete it and run `sqlstage status --live ENV --write`, which rebuilds it"


def _state(entry: dict[str, Any]) -> TargetState:
    failed = entry.get("failed")
    return TargetState(
        entry.get("lastApplied"),
        entry.get("appliedAt"),
        tuple(entry.get("missing") or ()),
        TargetFailure(str(failed["migration"]), str(failed["at"]), str(failed["error"]))
        if failed
        else None,
    )


def _entry(state: TargetState) -> dict[str, Any]:
    entry: dict[str, Any] = {"lastApplied": state.last_applied, "appliedAt": state.applied_at}
    if state.missing:
        entry["missing"] = list(state.missing)
    if state.failure is not None:
        entry["failed"] = {
            "migration": state.failure.migration,
            "at": state.failure.at,
            "error": state.failure.error,
        }
    return entry


def _document(record: FleetRecord) -> dict[str, Any]:
    targets = {name: _entry(record.targets[name]) for name in sorted(record.targets)}
    return {"environment": record.environment, "targets": targets}


def _render(document: dict[str, Any]) -> str:
    """status.json's layout, each target on one line (its `failed` inline)."""
    lines = [f'  "environment": {json.dumps(document["environment"])},']
    items = [
        f"    {json.dumps(name)}: {json.dumps(entry, ensure_ascii=False)}"
        for name, entry in document["targets"].items()
    ]
    body = "{\n" + ",\n".join(items) + "\n  }" if items else "{}"
    return "{\n" + lines[0] + f'\n  "targets": {body}\n' + "}\n"


def update_targets(
    config: Config,
    key: str,
    states: dict[str, TargetState],
    keep_failures: bool = False,
    only: set[str] | None = None,
) -> FleetRecord:
    """Set these targets' entries (the others as the file holds them now); returns the
    record written. With `keep_failures`, a target's last failure stays unless it has
    since reached that migration; with `only` (the fleet's every target), targets no longer
    configured are dropped."""
    path = record_path(config, key)
    with folder_lock(path.parent, path.name):
        record = read_record(path, key)
        merged = {n: s for n, s in record.targets.items() if only is None or n in only}
        for name, state in states.items():
            old = merged.get(name)
            if keep_failures and state.failure is None and old is not None and old.failure:
                state = replace(state, failure=old.failure)
            merged[name] = state
        record = FleetRecord(key, merged)
        text = _render(_document(record))
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)
        return record


def cleared(state: TargetState, catalog: Catalog) -> TargetState:
    """Drop a failure the target has since got past."""
    if state.failure is not None and state.has(state.failure.migration, catalog):
        return replace(state, failure=None)
    return state


# -- status.json's entry for the fleet ------------------------------------------------------
def applied_counts(record: FleetRecord, catalog: Catalog) -> dict[str, int]:
    return {
        m.name: sum(state.has(m.name, catalog) for state in record.targets.values())
        for m in catalog.migrations
    }


def fleet_entry(
    env: Environment,
    record: FleetRecord,
    catalog: Catalog,
    histories: Sequence[Sequence[AppliedMigration]],
) -> Any:
    """status.json's entry for the fleet as a function of the entry there now (for
    `update_environment`): per migration its latest appliedAt and checksum (from the
    histories this run read, else as recorded) and on how many targets it is applied."""
    counts = applied_counts(record, catalog)
    total = len(record.targets)

    def merge(current: EnvironmentState | None) -> EnvironmentState:
        rows = {row.migration: row for row in current.applied} if current else {}
        for history in histories:
            for row in history:
                if not row.is_applied:
                    continue
                at = utc_stamp(row.applied_at)
                old = rows.get(row.migration)
                if old is None or (old.applied_at or "") < at:
                    # a run on any target is a rehearsal, whatever the others recorded
                    ran = old is not None and old.origin is Origin.RAN
                    origin = Origin.RAN if ran else row.origin
                    rows[row.migration] = Recorded(
                        row.migration, at, row.checksum, row.out_of_order, origin
                    )
                elif row.origin is Origin.RAN and old.origin is not Origin.RAN:
                    rows[row.migration] = replace(old, origin=Origin.RAN)
        kept = [
            replace(rows[m.name], targets=counts[m.name])
            for m in catalog.migrations
            if m.name in rows and counts[m.name]
        ]
        everywhere = [row for row in kept if row.targets == total]
        last = everywhere[-1] if everywhere else None
        return EnvironmentState(
            name=env.name,
            last_applied=last.migration if last else None,
            applied_at=last.applied_at if last else None,
            applied=tuple(kept),
            targets=total,
        )

    return merge


def record_status(
    config: Config,
    catalog: Catalog,
    env: Environment,
    histories: Sequence[Sequence[AppliedMigration]],
) -> bool:
    """Rewrite status.json's entry for the fleet from the record as it is now; returns
    whether the file changed. The record is read and status.json written under the
    record's lock: targets ending at the same moment each write their own state first, and
    a counts computed from a record another target has since updated would be stale."""
    path = record_path(config, env.key)
    with folder_lock(path.parent, path.name):
        merge = fleet_entry(env, read_record(path, env.key), catalog, histories)
        return update_environment(config.status_file, env.key, merge, config, catalog)


# -- the offline summary --------------------------------------------------------------------
def summary(record: FleetRecord, catalog: Catalog) -> str:
    """`498 of 500 targets at 042_x; 2 at 041_y (tenant_17, tenant_311: failed)`"""
    total = len(record.targets)
    if not total:
        return "no target has been reached yet"
    groups: dict[str | None, list[str]] = {}
    for name, state in record.targets.items():
        groups.setdefault(state.last_applied, []).append(name)
    order = {m.name: m.number for m in catalog.migrations}
    ranked = sorted(groups, key=lambda last: -order.get(last or "", -1))
    parts = []
    for index, last in enumerate(ranked):
        names = sorted(groups[last])
        where = f"at {last}" if last else "with nothing applied"
        count = f"{len(names)} of {total} targets" if index == 0 else f"{len(names)}"
        part = f"{count} {where}"
        if index > 0:
            failed = [n for n in names if record.targets[n].failure is not None]
            shown = _names(failed or names)
            part += f" ({shown}: failed)" if failed else f" ({shown})"
        parts.append(part)
    return "; ".join(parts)


def _names(names: Sequence[str], limit: int = 5) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def failures(record: FleetRecord) -> list[tuple[str, TargetFailure]]:
    return sorted((name, state.failure) for name, state in record.targets.items() if state.failure)


def pending_on(config: Config, catalog: Catalog, key: str, names: Sequence[str]) -> list[str]:
    """Offline: the migrations some of the named targets lack, from the record."""
    env = config.environment(key)
    if not env.is_fleet:
        raise ConfigError(f"--target is for fleets; {key} is one database")
    record = read_record(record_path(config, key), key)
    unknown = [name for name in names if name not in record.targets]
    if unknown:
        raise ConfigError(
            f"{key}'s record ({record_path(config, key).name}) has no target {unknown[0]}",
            f"`sqlstage status --live {key} --write` records every target",
        )
    states = [record.targets[name] for name in names]
    return [m.name for m in catalog.migrations if not all(s.has(m.name, catalog) for s in states)]
