"""status.json: the committed record of where each environment stands.

Read tolerantly (date-only timestamps and the seed's hand-written shape are accepted), written
atomically (temp file + rename) with stable key order, 2-space indent and a final newline, one
applied migration per line, so git diffs stay small.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlstage.catalog import Catalog
from sqlstage.config import Config
from sqlstage.errors import StatusFileError
from sqlstage.history import AppliedMigration, Origin
from sqlstage.migration import Migration, parse_name


@dataclass(frozen=True)
class Recorded:
    """What status.json knows of one applied migration (checksum unknown in seed-shaped files)."""

    migration: str
    applied_at: str | None = None
    checksum: str | None = None
    #: applied with --allow-out-of-order, below a migration the environment already had
    out_of_order: bool = False
    #: how it came to be recorded: only RAN is a rehearsal
    origin: Origin = Origin.RAN


@dataclass(frozen=True)
class EnvironmentState:
    name: str
    last_applied: str | None = None
    applied_at: str | None = None
    applied: tuple[Recorded, ...] = ()
    #: False when the file only says lastApplied (seed shape): earlier ones are assumed applied
    complete: bool = True
    #: migrations that stopped midway outside a transaction: the environment is blocked
    #: until `sqlstage repair`
    failed: tuple[str, ...] = ()

    def applied_names(self, catalog: Catalog) -> set[str]:
        names = {row.migration for row in self.applied}
        if not self.complete and self.last_applied:
            last = parse_name(self.last_applied.removesuffix(".sql") + ".sql")
            if last is not None:
                names |= {m.name for m in catalog.migrations if m.number <= last[0]}
        return names


@dataclass(frozen=True)
class StatusFile:
    last_updated: str | None = None
    environments: dict[str, EnvironmentState] = field(default_factory=dict)


def utc_stamp(moment: datetime) -> str:
    """`2025-12-04T10:22:31Z`"""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def read_status(path: Path) -> StatusFile:
    """The file's content; an empty StatusFile when it does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors may add a BOM
    except FileNotFoundError:
        return StatusFile()
    except UnicodeDecodeError as err:
        raise StatusFileError(f"{path}: not valid UTF-8", _REBUILD) from err
    last = _last_read.get(path)
    if last is not None and last[0] == text:  # unchanged since the last read: same value
        return last[1]
    status = parse_status(text, path)
    _last_read.clear()  # one entry: a long-lived library user keeps one file's worth
    _last_read[path] = (text, status)
    return status


# `sqlstage status` reads the file twice (the report, then the edited-files check), and
# parsing 30,000 applied rows is a quarter of its time; StatusFile is immutable, so the
# second read of the same text returns the first one's value.
_last_read: dict[Path, tuple[str, StatusFile]] = {}


def parse_status(text: str, path: Path) -> StatusFile:
    """status.json's text -> StatusFile; errors name `path` and the line."""
    # the loop over every line (~20 ms for 10,000 migrations) only when a marker is there
    if "<<<<<<<" in text or ">>>>>>>" in text:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.startswith(("<<<<<<<", ">>>>>>>")):
                raise StatusFileError(f"{path}:{number}: holds git conflict markers", _REBUILD)
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as err:
        raise StatusFileError(f"{path}:{err.lineno}: not valid JSON ({err.msg})", _REBUILD) from err
    if not isinstance(data, dict):
        raise StatusFileError(f"{path}: expected a JSON object", _REBUILD)
    environments = data.get("environments") or {}
    if not isinstance(environments, dict):
        raise StatusFileError(f"{path}: 'environments' must be an object", _REBUILD)
    return StatusFile(
        last_updated=data.get("lastUpdated"),
        environments={key: _environment(path, key, value) for key, value in environments.items()},
    )


_REBUILD = (
    "fix it by hand, rebuild what it still tells with `sqlstage status --repair`, or rebuild "
    "it from the database with `sqlstage status --live ENV --write`"
)


def _environment(path: Path, key: str, value: Any) -> EnvironmentState:
    if not isinstance(value, dict):
        raise StatusFileError(f"{path}: environments.{key} must be an object", _REBUILD)
    applied = value.get("applied")
    rows: tuple[Recorded, ...] = ()
    if isinstance(applied, dict):
        rows = tuple(
            Recorded(
                name,
                entry.get("appliedAt"),
                entry.get("checksum"),
                bool(entry.get("outOfOrder")),
                _origin(entry.get("origin")),
            )
            for name, entry in applied.items()
            if isinstance(entry, dict)
        )
    last = value.get("lastApplied")
    return EnvironmentState(
        name=str(value.get("name") or key),
        last_applied=last.removesuffix(".sql") if isinstance(last, str) else None,
        applied_at=value.get("appliedAt"),
        applied=rows,
        complete=isinstance(applied, dict),
        failed=tuple(str(name) for name in value.get("failed") or () if isinstance(name, str)),
    )


def _origin(value: Any) -> Origin:
    """Unknown words read as not run: a hand-edited file never makes a rehearsal."""
    if value is None:
        return Origin.RAN
    try:
        return Origin(value)
    except ValueError:
        return Origin.MARKED


def state_from_history(name: str, history: Iterable[AppliedMigration]) -> EnvironmentState:
    """An environment's entry as its database's history table tells it."""
    rows = tuple(
        Recorded(
            row.migration, utc_stamp(row.applied_at), row.checksum, row.out_of_order, row.origin
        )
        for row in sorted(history, key=lambda row: (row.applied_at, row.migration))
        if row.is_applied
    )
    last = rows[-1] if rows else None
    return EnvironmentState(
        name=name,
        last_applied=last.migration if last else None,
        applied_at=last.applied_at if last else None,
        applied=rows,
        failed=tuple(row.migration for row in history if row.stopped_midway),
    )


def with_environment(status: StatusFile, key: str, state: EnvironmentState) -> StatusFile:
    return StatusFile(status.last_updated, {**status.environments, key: state})


def pending_for(state: EnvironmentState | None, catalog: Catalog) -> list[Migration]:
    done = state.applied_names(catalog) if state else set()
    return [m for m in catalog.migrations if m.name not in done]


def to_json(status: StatusFile, config: Config, catalog: Catalog) -> dict[str, Any]:
    """The document written to disk: every configured environment, in config order."""
    keys = [*config.environments, *(k for k in status.environments if k not in config.environments)]
    environments: dict[str, Any] = {}
    pending: dict[str, list[str]] = {}
    for key in keys:
        state = status.environments.get(key)
        name = config.environments[key].name if key in config.environments else key
        entry: dict[str, Any] = {
            "name": name,
            "lastApplied": state.last_applied if state else None,
            "appliedAt": state.applied_at if state else None,
        }
        if state is not None and state.complete:
            entry["applied"] = {row.migration: _applied_entry(row) for row in state.applied}
        if state is not None and state.failed:  # only when there is one: diffs stay small
            entry["failed"] = list(state.failed)
        environments[key] = entry
        pending[key] = [m.name for m in pending_for(state, catalog)]
    return {"lastUpdated": status.last_updated, "environments": environments, "pending": pending}


def _applied_entry(row: Recorded) -> dict[str, Any]:
    entry: dict[str, Any] = {"appliedAt": row.applied_at, "checksum": row.checksum}
    if row.out_of_order:
        entry["outOfOrder"] = True
    if row.origin is not Origin.RAN:  # only then: diffs stay small
        entry["origin"] = row.origin.value
    return entry


def render(document: Mapping[str, Any]) -> str:
    """JSON with 2-space indent, but each applied migration on a single line."""
    return _render(document, 0, inline=False) + "\n"


def _render(value: Any, level: int, inline: bool) -> str:
    if not isinstance(value, dict) or not value or inline:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    pad, inner = "  " * level, "  " * (level + 1)
    items = [
        f"{inner}{json.dumps(key, ensure_ascii=False)}: "
        f"{_render(item, level + 1, inline=_is_leaf(item))}"
        for key, item in value.items()
    ]
    return "{\n" + ",\n".join(items) + "\n" + pad + "}"


def _is_leaf(value: Any) -> bool:
    """A dict of scalars (one applied migration) renders on one line."""
    return isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values())


def write_status(path: Path, status: StatusFile, config: Config, catalog: Catalog) -> bool:
    """Write the file atomically if its content changed; returns whether it did.

    `lastUpdated` moves only when something else changed, so a no-op run leaves git clean.
    """
    document = to_json(status, config, catalog)
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            old = None
        if isinstance(old, dict) and {**old, "lastUpdated": None} == {
            **document,
            "lastUpdated": None,
        }:
            return False
    document["lastUpdated"] = utc_stamp(datetime.now(UTC))
    write_atomic(path, render(document))
    return True


def write_atomic(path: Path, text: str) -> None:
    """Write through a temp file in the same folder and rename it over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
