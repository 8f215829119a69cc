"""status.json: the committed record of where each environment stands.

Read tolerantly (date-only timestamps and the seed's hand-written shape are accepted) but
checked value by value, so a wrong type is an error naming its key and line, not a traceback.
Written atomically (temp file + rename) with stable key order, 2-space indent and a final
newline, one applied migration per line, so git diffs stay small; one environment's entry is
updated under a lock on the file's folder, so runs on different environments of one checkout
never lose each other's entries.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlstage.catalog import Catalog
from sqlstage.config import Config
from sqlstage.errors import FileAccessError, StatusFileError
from sqlstage.history import AppliedMigration, Origin
from sqlstage.migration import Migration, parse_name
from sqlstage.writable import check_file, fix_for, folder_lock, reason


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
    #: a fleet's environment: on how many of its targets it is applied
    targets: int | None = None


def objects_summary(labels: list[str] | tuple[str, ...], limit: int = 5) -> str:
    """`2 objects: index posts_title_idx, column users.plan default`"""
    shown = ", ".join(labels[:limit]) + (", ..." if len(labels) > limit else "")
    return f"{len(labels)} object{'s' if len(labels) != 1 else ''}: {shown}"


@dataclass(frozen=True)
class DriftVerdict:
    """The last drift check of an environment (`drift`, or `apply`/`rollback` of a checked
    one): when, clean or not, since when it is drifted, and the objects that differ."""

    checked_at: str
    clean: bool
    since: str | None = None
    objects: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"checkedAt": self.checked_at, "clean": self.clean}
        if not self.clean:
            entry.update(since=self.since, objects=list(self.objects))
        return entry


@dataclass(frozen=True)
class EnvironmentState:
    """One environment's entry of status.json."""

    name: str
    last_applied: str | None = None
    applied_at: str | None = None
    applied: tuple[Recorded, ...] = ()
    #: False when the file only says lastApplied (seed shape): earlier ones are assumed applied
    complete: bool = True
    #: migrations that stopped midway outside a transaction: the environment is blocked
    #: until `sqlstage repair`
    failed: tuple[str, ...] = ()
    #: the live schema's fingerprint after the last run or drift check (sqlstage.drift)
    fingerprint: str | None = None
    drift: DriftVerdict | None = None
    #: a fleet's environment: how many targets it has (sqlstage.fleet_record)
    targets: int | None = None

    def applied_names(self, catalog: Catalog) -> set[str]:
        """What the environment has; a fleet has a migration once every target has it."""
        total = self.targets
        names = {
            row.migration
            for row in self.applied
            if total is None or row.targets is None or row.targets >= total
        }
        if not self.complete and self.last_applied:
            last = parse_name(self.last_applied.removesuffix(".sql") + ".sql")
            if last is not None:
                names |= {m.name for m in catalog.migrations if m.number <= last[0]}
        return names


@dataclass(frozen=True)
class StatusFile:
    """status.json: when it last changed and each environment's entry."""

    last_updated: str | None = None
    environments: dict[str, EnvironmentState] = field(default_factory=dict)


def utc_stamp(moment: datetime) -> str:
    """`2025-12-04T10:22:31Z`"""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_status(path: Path) -> StatusFile:
    """The file's content; an empty StatusFile when it does not exist yet.

    Raises StatusFileError (exit 2) when the content is damaged, FileAccessError (exit 2)
    when the file cannot be read at all (a folder in its place, no permission)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # editors may add a BOM
    except FileNotFoundError:
        return StatusFile()
    except UnicodeDecodeError as err:
        raise StatusFileError(f"{path}: not valid UTF-8", _REBUILD) from err
    except IsADirectoryError as err:
        raise FileAccessError(f"{path} is a folder, not a file", _MOVE_AWAY) from err
    except OSError as err:
        raise FileAccessError(f"cannot read {path}: {reason(err)}", _READ) from err
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
    shape = _Shape(path, text)
    last_updated = shape.text_or_null(data, ("lastUpdated",))
    environments = data.get("environments")
    if environments is None:  # a new file, or a seed that never had any
        environments = {}
    if not isinstance(environments, dict):
        raise shape.wrong(("environments",), environments, "an object of environments")
    return StatusFile(
        last_updated=last_updated,
        environments={key: _environment(shape, key, value) for key, value in environments.items()},
    )


_REBUILD = (
    "fix it by hand, rebuild what it still tells with `sqlstage status --repair`, or rebuild "
    "it from the database with `sqlstage status --live ENV --write`"
)
_READ = "give the user running sqlstage read and write permission on it (chmod u+rw)"
_MOVE_AWAY = "move it out of the way, then rebuild it with `sqlstage status --live ENV --write`"


class _Shape:
    """Checks the type of each value, and names the key and its line when one is wrong."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def wrong(self, keys: tuple[str, ...], value: Any, expected: str) -> StatusFileError:
        line = _line_of(self.text, keys)
        where = f"{self.path}:{line}" if line else str(self.path)
        shown = json.dumps(value, ensure_ascii=False)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        return StatusFileError(
            f"{where}: {'.'.join(keys)} must be {expected}, not {shown}", _REBUILD
        )

    def text_or_null(self, data: dict[str, Any], keys: tuple[str, ...]) -> str | None:
        """`data[keys[-1]]`, which must be a string, null or absent."""
        value = data.get(keys[-1])
        if value is not None and not isinstance(value, str):
            raise self.wrong(keys, value, "text or null")
        return value


def _environment(shape: _Shape, key: str, value: Any) -> EnvironmentState:
    where = ("environments", key)
    if not isinstance(value, dict):
        raise shape.wrong(where, value, "an object")
    name = shape.text_or_null(value, (*where, "name"))
    last = shape.text_or_null(value, (*where, "lastApplied"))
    applied = value.get("applied")  # absent or null: the seed shape, lastApplied alone
    if applied is not None and not isinstance(applied, dict):
        raise shape.wrong((*where, "applied"), applied, "an object of migrations")
    failed = value.get("failed")
    if failed is not None and not (
        isinstance(failed, list) and all(isinstance(item, str) for item in failed)
    ):
        raise shape.wrong((*where, "failed"), failed, "a list of migration names")
    targets = value.get("targets")
    if targets is not None and (isinstance(targets, bool) or not isinstance(targets, int)):
        raise shape.wrong((*where, "targets"), targets, "a number of targets")
    return EnvironmentState(
        name=name or key,
        last_applied=last.removesuffix(".sql") if last is not None else None,
        applied_at=shape.text_or_null(value, (*where, "appliedAt")),
        applied=tuple(
            _recorded(shape, where, migration, entry)
            for migration, entry in (applied or {}).items()
        ),
        complete=applied is not None,
        failed=tuple(failed or ()),
        fingerprint=shape.text_or_null(value, (*where, "fingerprint")),
        drift=_drift(shape, where, value.get("drift")),
        targets=targets,
    )


def _drift(shape: _Shape, where: tuple[str, ...], value: Any) -> DriftVerdict | None:
    if value is None:
        return None
    keys = (*where, "drift")
    objects = value.get("objects", []) if isinstance(value, dict) else None
    if not (
        isinstance(value, dict)
        and isinstance(value.get("checkedAt"), str)
        and isinstance(value.get("clean"), bool)
        and isinstance(objects, list)
        and all(isinstance(item, str) for item in objects)
    ):
        raise shape.wrong(keys, value, 'an object like {"checkedAt": ..., "clean": true}')
    since = shape.text_or_null(value, (*keys, "since"))
    return DriftVerdict(value["checkedAt"], value["clean"], since, tuple(objects))


def _recorded(shape: _Shape, where: tuple[str, ...], migration: str, entry: Any) -> Recorded:
    """One applied migration's entry. The checks are spelled out for speed: a file with
    30,000 applied rows is read on every `status`."""
    if isinstance(entry, dict):
        at, checksum, out_of_order = (
            entry.get("appliedAt"),
            entry.get("checksum"),
            entry.get("outOfOrder"),
        )
        if (
            (at is None or isinstance(at, str))
            and (checksum is None or isinstance(checksum, str))
            and (out_of_order is None or out_of_order is True or out_of_order is False)
        ):
            origin, targets = entry.get("origin"), entry.get("targets")
            if targets is None or (isinstance(targets, int) and not isinstance(targets, bool)):
                return Recorded(
                    migration,
                    at,
                    checksum,
                    bool(out_of_order),
                    Origin.RAN if origin is None else _origin(origin),
                    targets,
                )
            raise shape.wrong(
                (*where, "applied", migration, "targets"), targets, "a number of targets"
            )
    keys = (*where, "applied", migration)
    if not isinstance(entry, dict):
        raise shape.wrong(keys, entry, 'an object like {"appliedAt": ..., "checksum": ...}')
    shape.text_or_null(entry, (*keys, "appliedAt"))
    shape.text_or_null(entry, (*keys, "checksum"))
    raise shape.wrong((*keys, "outOfOrder"), entry["outOfOrder"], "true, false or absent")


def _line_of(text: str, keys: tuple[str, ...]) -> int | None:
    """The line of the last of `keys`, each looked for after the one before it; None when
    the text spells a key some other way (escapes)."""
    position = 0
    for key in keys:
        found = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:").search(
            text, position
        )
        if found is None:
            return None
        position = found.start()
    return text.count("\n", 0, position) + 1


def _origin(value: Any) -> Origin:
    """Unknown words read as not run: a hand-edited file never makes a rehearsal."""
    try:
        return Origin(value)
    except ValueError:
        return Origin.MARKED


def state_from_history(
    name: str, history: Iterable[AppliedMigration], keep: Iterable[Recorded] = ()
) -> EnvironmentState:
    """An environment's entry as its database's history table tells it, plus the `keep`
    records (what only status.json held before the run) the history still lacks."""
    history = list(history)
    rows = [
        Recorded(
            row.migration, utc_stamp(row.applied_at), row.checksum, row.out_of_order, row.origin
        )
        for row in sorted(history, key=lambda row: (row.applied_at, row.migration))
        if row.is_applied
    ]
    have = {row.migration for row in rows}
    kept = [row for row in keep if row.migration not in have]
    if kept:  # in number order: the record is kept, and lastApplied with it, for baseline
        rows = sorted([*kept, *rows], key=_number_order)
    last = rows[-1] if rows else None
    return EnvironmentState(
        name=name,
        last_applied=last.migration if last else None,
        applied_at=last.applied_at if last else None,
        applied=tuple(rows),
        failed=tuple(row.migration for row in history if row.stopped_midway),
    )


def _number_order(row: Recorded) -> tuple[int, str]:
    parsed = parse_name(row.migration + ".sql")
    return (parsed[0] if parsed else 1 << 62, row.migration)


def only_in_file(
    state: EnvironmentState | None, catalog: Catalog, history: Iterable[AppliedMigration]
) -> tuple[Recorded, ...]:
    """What status.json records as applied to an environment that its database's history
    does not (a database built with `psql -f`, or recreated), in file order. A seed-shaped
    entry dates only its lastApplied migration."""
    if state is None:
        return ()
    in_db = {row.migration for row in history if row.is_applied}
    rows = {row.migration: row for row in state.applied}
    for name in state.applied_names(catalog) - rows.keys():
        rows[name] = Recorded(name, state.applied_at if name == state.last_applied else None)
    order = {m.name: m.number for m in catalog.migrations}
    missing = [row for name, row in rows.items() if name not in in_db]
    return tuple(
        sorted(missing, key=lambda row: (order.get(row.migration, 1 << 62), row.migration))
    )


def parse_stamp(value: str | None) -> datetime | None:
    """`2025-12-04` or `2025-12-04T10:22:31Z` -> an aware UTC datetime; None if unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
        if state is not None and state.fingerprint:
            entry["fingerprint"] = state.fingerprint
        if state is not None and state.drift is not None:
            entry["drift"] = state.drift.to_json()
        if state is not None and state.targets is not None:
            entry["targets"] = state.targets
        environments[key] = entry
        pending[key] = [m.name for m in pending_for(state, catalog)]
    return {"lastUpdated": status.last_updated, "environments": environments, "pending": pending}


def _applied_entry(row: Recorded) -> dict[str, Any]:
    entry: dict[str, Any] = {"appliedAt": row.applied_at, "checksum": row.checksum}
    if row.out_of_order:
        entry["outOfOrder"] = True
    if row.origin is not Origin.RAN:  # only then: diffs stay small
        entry["origin"] = row.origin.value
    if row.targets is not None:
        entry["targets"] = row.targets
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


def update_environment(
    path: Path,
    key: str,
    state: EnvironmentState | Callable[[EnvironmentState | None], EnvironmentState],
    config: Config,
    catalog: Catalog,
    salvage: Callable[[], StatusFile] | None = None,
) -> bool:
    """Set environment `key`'s entry of status.json to `state`, keeping every other entry as
    the file holds it now; returns whether the file changed.

    The read, the merge and the write happen under a lock on the file's folder, so a run on
    another environment of the same checkout that wrote the file meanwhile keeps its entry.
    A damaged file raises StatusFileError, unless `salvage` says what to keep of it (`status
    --live ENV --write`); a file that cannot be written raises FileAccessError naming the way
    back. `state` may be a function of the entry the file holds now (a fleet's targets each
    merge theirs in).
    """
    with folder_lock(path.parent, path.name):
        try:
            current = read_status(path)
        except StatusFileError:
            if salvage is None:
                raise
            current = salvage()
        if callable(state):
            state = state(current.environments.get(key))
        before = current.environments.get(key)
        if before is not None:  # a run's history says nothing of drift: keep what was known
            state = replace(
                state,
                fingerprint=state.fingerprint or before.fingerprint,
                drift=state.drift or before.drift,
            )
        try:
            return write_status(path, with_environment(current, key, state), config, catalog)
        except FileAccessError as err:
            raise FileAccessError(
                f"{err.message}, so it does not show {key}'s latest changes (the database does)",
                f"{err.fix or 'fix that'}, then run `sqlstage status --live {key} --write`",
            ) from err


def record_drift(
    path: Path,
    key: str,
    config: Config,
    catalog: Catalog,
    fingerprint: str | None = None,
    verdict: DriftVerdict | None = None,
) -> bool:
    """Set environment `key`'s fingerprint and/or last drift verdict, keeping the rest of
    the file; a drifted verdict keeps the `since` of the drifted one before it."""
    with folder_lock(path.parent, path.name):
        current = read_status(path)
        before = current.environments.get(key) or EnvironmentState(
            config.environments[key].name, complete=False
        )
        if verdict is not None and not verdict.clean and before.drift and not before.drift.clean:
            verdict = replace(verdict, since=before.drift.since or verdict.since)
        state = replace(
            before,
            fingerprint=fingerprint or before.fingerprint,
            drift=verdict or before.drift,
        )
        return write_status(path, with_environment(current, key, state), config, catalog)


def check_writable(path: Path) -> None:
    """Before a run changes anything: raise FileAccessError (exit 2) unless status.json can
    be read and rewritten: it is a regular file (or absent) with read and write permission,
    and its folder takes a new file of its size (not read-only, not full)."""
    check_file(path, "status.json", "status_file")


def write_status(path: Path, status: StatusFile, config: Config, catalog: Catalog) -> bool:
    """Write the file atomically if its content changed; returns whether it did. Raises
    FileAccessError (exit 2) when it cannot be written; the old file is then left whole.

    `lastUpdated` moves only when something else changed, so a no-op run leaves git clean.
    Callers that change one environment use `update_environment`, which holds the lock.
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
    try:
        write_atomic(path, render(document))
    except IsADirectoryError as err:
        raise FileAccessError(f"cannot write {path}: it is a folder", _MOVE_AWAY) from err
    except OSError as err:
        raise FileAccessError(f"cannot write {path}: {reason(err)}", fix_for(err)) from err
    return True


def write_atomic(path: Path, text: str) -> None:
    """Write through a temp file in the same folder and rename it over the target, which
    keeps its permissions (a new file gets the umask's, as `open` would give it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = _new_temp(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            with suppress(FileNotFoundError):
                os.fchmod(out.fileno(), stat.S_IMODE(path.stat().st_mode))
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _new_temp(path: Path) -> tuple[int, Path]:
    """`.status.json.<random>.tmp`, created 0666 less the umask (mkstemp would make it 0600)."""
    while True:
        temp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temp
        except FileExistsError:
            continue
