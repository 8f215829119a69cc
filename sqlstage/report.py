"""Reports: where each environment stands, offline from status.json, or live from a
database compared with status.json."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlstage.config import Environment
from sqlstage.errors import SqlstageError, StatusFileError
from sqlstage.history import AppliedMigration
from sqlstage.migration import Migration
from sqlstage.plan import history_warnings
from sqlstage.project import Project
from sqlstage.session import Session
from sqlstage.status_file import DriftVerdict, EnvironmentState, Recorded, pending_for


@dataclass(frozen=True)
class StatusReport:
    """What status.json and the files say, without connecting anywhere."""

    environments: tuple[Environment, ...]
    migrations: tuple[Migration, ...]
    applied: dict[str, dict[str, Recorded]]
    pending: dict[str, tuple[str, ...]]
    warnings: tuple[str, ...]
    #: per environment, migrations recorded `failed` (blocked until `sqlstage repair`)
    failed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: applied files edited since (an error once the report is shown: exit 2)
    edited: tuple[str, ...] = ()
    #: per environment, its last drift check (sqlstage.drift), when there was one
    drift: dict[str, DriftVerdict] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveReport:
    """A database's history compared with what status.json says of its environment."""

    environment: Environment
    history: tuple[AppliedMigration, ...]
    differences: tuple[str, ...]
    written: bool
    #: environments a damaged file no longer tells about: rebuild each with --live ENV --write
    unknown: tuple[str, ...] = ()
    #: an applied file edited since (exit 2, with the diff), shown after the report
    edited: SqlstageError | None = None


def status_report(project: Project) -> StatusReport:
    """Offline: status.json and the files, no database."""
    status = project.read_status()
    catalog = project.catalog
    files = catalog.by_name()
    applied: dict[str, dict[str, Recorded]] = {}
    pending: dict[str, tuple[str, ...]] = {}
    failed: dict[str, tuple[str, ...]] = {}
    warnings: list[str] = []
    edited: list[str] = []
    for key in project.config.environments:
        state = status.environments.get(key)
        rows = {row.migration: row for row in state.applied} if state else {}
        if state is not None:
            for name in state.applied_names(catalog) - rows.keys():
                # a seed-shaped file dates only its lastApplied migration
                when = state.applied_at if name == state.last_applied else None
                rows[name] = Recorded(name, when)
        applied[key] = rows
        pending[key] = tuple(m.name for m in pending_for(state, catalog))
        if state is not None and state.failed:
            failed[key] = state.failed
            warnings.append(
                f"{', '.join(state.failed)} failed midway on {key}: it is blocked until "
                f"`sqlstage repair {key} {state.failed[0]} --resume` (runs the statements "
                "that had not committed, once the cause is fixed) or `--mark-applied|--forget`"
            )
        for row in rows.values():
            migration = files.get(row.migration)
            if migration is None:
                warnings.append(
                    f"{row.migration} is recorded as applied to {key} but its file is gone"
                )
            elif row.checksum and row.checksum != migration.checksum:
                edited.append(
                    f"{migration.file_name} was edited after it was applied "
                    f"to {key} (checksum differs from status.json)"
                )
    states = {key: status.environments.get(key) for key in project.config.environments}
    warnings += fingerprint_warnings(states)
    return StatusReport(
        tuple(project.config.environments.values()),
        catalog.migrations,
        applied,
        pending,
        tuple(warnings),
        failed,
        tuple(edited),
        {key: state.drift for key, state in states.items() if state and state.drift},
    )


def fingerprint_warnings(states: dict[str, EnvironmentState | None]) -> list[str]:
    """Environments that applied the same migrations (same checksums) but whose last runs
    recorded different schema fingerprints: one of them was changed by hand."""
    warnings = []
    seen: dict[tuple[tuple[str, str | None], ...], tuple[str, str]] = {}
    for key, state in states.items():
        if state is None or not state.fingerprint or not state.complete or not state.applied:
            continue
        migrations = tuple(sorted((row.migration, row.checksum) for row in state.applied))
        first = seen.setdefault(migrations, (key, state.fingerprint))
        if first[1] != state.fingerprint:
            warnings.append(
                f"{first[0]} and {key} have applied the same migrations but recorded different "
                f"schema fingerprints: one of them was changed outside the migrations; run "
                f"`sqlstage diff {first[0]} {key}`"
            )
    return warnings


def pending_anywhere(project: Project) -> list[Migration]:
    """Offline: the migrations some environment still lacks, in file order."""
    report = status_report(project)
    names = {name for pending in report.pending.values() for name in pending}
    return [m for m in project.catalog.migrations if m.name in names]


def live_report(project: Project, session: Session, write: bool = False) -> LiveReport:
    """Compare the database's history with status.json; with `write`, trust the database."""
    env = session.environment
    history = session.applied()
    try:  # compare with the file as it is, before any rewrite
        recorded = project.read_status().environments.get(env.key)
    except StatusFileError as error:
        if not write:
            raise
        return _rebuild_from(project, session, history, error)
    in_file = recorded.applied_names(project.catalog) if recorded else set()
    in_db = {row.migration for row in history if row.is_applied}
    differences = [
        *(
            f"{name}: applied in the database, not in status.json"
            for name in sorted(in_db - in_file)
        ),
        *(
            f"{name}: in status.json, not applied in the database"
            for name in sorted(in_file - in_db)
        ),
        *history_warnings(project.catalog, history, env.key),
    ]
    written = project.record_status(env, history) if write else False
    return LiveReport(env, tuple(history), tuple(differences), written)


def _rebuild_from(
    project: Project, session: Session, history: list[AppliedMigration], error: StatusFileError
) -> LiveReport:
    """A damaged status.json: write this environment's entry from its database, keep
    what the file still tells of the others, and name those it cannot tell about."""
    from sqlstage.repair import salvage_status

    env = session.environment
    unknown = salvage_status(project.config.status_file, list(project.config.environments)).unknown
    written = project.record_status(env, history, rebuild=True)
    others = tuple(key for key in unknown if key != env.key)
    return LiveReport(env, tuple(history), (f"status.json: {error.message}",), written, others)
