"""Reports: where each environment stands, offline from status.json, or live from a
database compared with status.json."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlstage.config import Environment
from sqlstage.errors import NotUpToDate, SqlstageError, StatusFileError
from sqlstage.history import AppliedMigration
from sqlstage.migration import Migration
from sqlstage.plan import history_warnings
from sqlstage.project import Project
from sqlstage.status_file import (
    DriftVerdict,
    EnvironmentState,
    Recorded,
    objects_summary,
    pending_for,
)

if TYPE_CHECKING:
    from sqlstage.lint import Finding
    from sqlstage.session import Session


@dataclass(frozen=True)
class EnvironmentStatus:
    """One environment as status.json and the files tell it, offline: each migration in
    exactly one of applied, pending and failed."""

    environment: Environment
    last_applied: str | None
    applied_at: str | None
    #: in file order (a seed-shaped file dates only its lastApplied one)
    applied: tuple[Recorded, ...]
    #: not applied and not failed, in file order
    pending: tuple[str, ...]
    #: stopped midway: blocked until `sqlstage repair`
    failed: tuple[str, ...]
    #: applied files whose checksum differs from the one status.json records
    edited: tuple[str, ...]
    #: pending ones numbered below the last applied: `apply` refuses them without
    #: --allow-out-of-order
    out_of_order: tuple[str, ...]
    #: recorded as applied, but the file is gone
    missing: tuple[str, ...]
    #: its last drift check (sqlstage.drift), when there was one
    drift: DriftVerdict | None = None

    @property
    def drifted(self) -> bool:
        return self.drift is not None and not self.drift.clean

    @property
    def up_to_date(self) -> bool:
        return not (self.pending or self.failed or self.edited or self.drifted)

    def problems(self) -> list[str]:
        """`1 pending (004_x)`-style phrases for what keeps it from being up to date."""
        found = [("pending", self.pending), ("failed", self.failed), ("edited", self.edited)]
        phrases = [f"{len(names)} {word} ({', '.join(names)})" for word, names in found if names]
        if self.drift is not None and not self.drift.clean:
            phrases.append(f"a drifted schema ({objects_summary(self.drift.objects)})")
        return phrases


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
    #: each environment's standing, in config order (what `--json` and `--check` read)
    by_environment: dict[str, EnvironmentStatus] = field(default_factory=dict)
    last_updated: str | None = None
    #: per fleet environment: `58 of 60 targets at 002_x; 2 at 001_y (a, b: failed)`
    fleets: dict[str, str] = field(default_factory=dict)
    #: per fleet environment, migrations some but not all targets have: "58/60"
    partial: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    """One way a database's history and status.json disagree. `expected` is what
    status.json (or the file) says, `live` what the database says; `message` is the sentence
    for people."""

    kind: str
    name: str
    expected: str | None
    live: str | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class LiveReport:
    """A database's history compared with what status.json says of its environment."""

    environment: Environment
    history: tuple[AppliedMigration, ...]
    differences: tuple[Difference, ...]
    written: bool
    #: environments a damaged file no longer tells about: rebuild each with --live ENV --write
    unknown: tuple[str, ...] = ()
    #: an applied file edited since (exit 2, with the diff), shown after the report
    edited: SqlstageError | None = None
    #: files the database has not applied, and migrations that stopped midway there
    pending: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    #: sqlstage has no history of this database though it is not new: `baseline` it
    adoption: SqlstageError | None = None

    @property
    def up_to_date(self) -> bool:
        # drift (issue 12): a drifted schema joins this test once the live report has it
        return not (self.pending or self.failed or self.differences or self.edited)

    def problems(self) -> list[str]:
        found = [("pending", self.pending), ("failed", self.failed)]
        phrases = [f"{len(names)} {word} ({', '.join(names)})" for word, names in found if names]
        if self.differences:
            phrases.append(f"{len(self.differences)} differences from status.json")
        if self.edited is not None:
            phrases.append("an applied file edited")
        return phrases


def refuse_not_up_to_date(reports: Iterable[EnvironmentStatus | LiveReport]) -> None:
    """`pending --exit-code` and `status --check`: NotUpToDate (exit 5) naming, per
    environment, what is pending, failed or edited."""
    parts = [
        f"{report.environment.key} has {', '.join(report.problems())}"
        for report in reports
        if not report.up_to_date
    ]
    if parts:
        raise NotUpToDate(
            "not up to date: " + "; ".join(parts),
            "apply the pending migrations, `sqlstage repair` the failed ones, revert edited "
            "files, bring a drifted schema back (`sqlstage drift ENV`)",
        )


def status_report(project: Project) -> StatusReport:
    """Offline: status.json and the files, no database."""
    status = project.read_status()
    catalog = project.catalog
    files = catalog.by_name()
    applied: dict[str, dict[str, Recorded]] = {}
    pending: dict[str, tuple[str, ...]] = {}
    failed: dict[str, tuple[str, ...]] = {}
    missing = project.missing_status()
    warnings: list[str] = [missing] if missing else []
    edited: list[str] = []
    by_environment: dict[str, EnvironmentStatus] = {}
    fleets: dict[str, str] = {}
    partial: dict[str, dict[str, str]] = {}
    for key, env in project.config.environments.items():
        state = status.environments.get(key)
        rows = {row.migration: row for row in state.applied} if state else {}
        if env.is_fleet:
            fleets[key], partial[key] = _fleet(project, key, state)
            rows = {name: row for name, row in rows.items() if name not in partial[key]}
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
        edited_here: list[str] = []
        for row in rows.values():
            migration = files.get(row.migration)
            if migration is None:
                warnings.append(
                    f"{row.migration} is recorded as applied to {key} but its file is gone"
                )
            elif row.checksum and not migration.matches(row.checksum):
                edited_here.append(migration.name)
                edited.append(
                    f"{migration.file_name} was edited after it was applied "
                    f"to {key} (checksum differs from status.json)"
                )
        by_environment[key] = _environment_status(
            project, key, state, rows, pending[key], tuple(edited_here)
        )
    warnings += fingerprint_warnings(
        {key: status.environments.get(key) for key in project.config.environments}
    )
    return StatusReport(
        tuple(project.config.environments.values()),
        catalog.migrations,
        applied,
        pending,
        tuple(warnings),
        failed,
        tuple(edited),
        by_environment,
        status.last_updated,
        fleets,
        partial,
    )


def _fleet(
    project: Project, key: str, state: EnvironmentState | None
) -> tuple[str, dict[str, str]]:
    """A fleet's one-line summary from its record, and its partly applied migrations."""
    from sqlstage import fleet_record  # only a project with a fleet reads a fleet's record

    config = project.config
    record = fleet_record.read_record(fleet_record.record_path(config, key), key)
    total = state.targets if state is not None else None
    partial = {
        row.migration: f"{row.targets}/{total}"
        for row in (state.applied if state is not None else ())
        if total is not None and row.targets is not None and row.targets < total
    }
    return fleet_record.summary(record, project.catalog), partial


def _environment_status(
    project: Project,
    key: str,
    state: EnvironmentState | None,
    rows: dict[str, Recorded],
    not_applied: tuple[str, ...],
    edited: tuple[str, ...],
) -> EnvironmentStatus:
    files = project.catalog.by_name()
    failed = state.failed if state else ()
    pending = tuple(name for name in not_applied if name not in failed)
    numbers = [files[name].number for name in rows if name in files]
    top = max(numbers, default=None)
    return EnvironmentStatus(
        project.config.environments[key],
        state.last_applied if state else None,
        state.applied_at if state else None,
        tuple(rows[m.name] for m in project.catalog.migrations if m.name in rows),
        pending,
        failed,
        edited,
        tuple(n for n in pending if top is not None and files[n].number < top),
        tuple(name for name in rows if name not in files),
        state.drift if state else None,
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


@dataclass(frozen=True)
class OfflinePlan:
    """What `apply ENV` would run, as far as status.json and the files tell (no
    connection): the pending migrations in file order and their lint findings."""

    status: EnvironmentStatus
    migrations: tuple[Migration, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class OfflinePlans:
    dialect: str
    plans: tuple[OfflinePlan, ...]


def offline_plans(project: Project, keys: Sequence[str] = ()) -> OfflinePlans:
    """The offline plan of each environment named (default: every one), for a pull
    request's comment: no credentials, no database."""
    for key in keys:
        project.config.environment(key)  # an unknown key is a ConfigError naming it
    report = status_report(project)
    files = project.catalog.by_name()
    dialect = project.lint_dialect()
    plans = []
    for key in keys or tuple(report.by_environment):
        status = report.by_environment[key]
        migrations = tuple(files[name] for name in status.pending)
        # what `apply` reports: the same in every environment (lock_timeout is the project's)
        findings = project.lint(migrations, dialect) if migrations else []
        plans.append(OfflinePlan(status, migrations, tuple(findings)))
    return OfflinePlans(dialect, tuple(plans))


def pending_anywhere(project: Project) -> list[Migration]:
    """Offline: the migrations some environment still lacks, in file order."""
    report = status_report(project)
    names = {name for pending in report.pending.values() for name in pending}
    return [m for m in project.catalog.migrations if m.name in names]


def lint_pending(project: Project, dialect: str) -> tuple[list[Migration], list[Finding]]:
    """Offline: the migrations some environment still lacks, and the findings `apply` would
    report for them: each environment's pending migrations are linted as the plan its next
    `apply` runs (a table made earlier in that plan is new), and the findings of all the
    plans are reported, each once, in file order."""
    report = status_report(project)
    order = {m.name: index for index, m in enumerate(project.catalog.migrations)}
    files = project.catalog.by_name()
    plans = dict.fromkeys(tuple(names) for names in report.pending.values() if names)
    found: dict[Finding, None] = {}
    for plan in plans:
        found.update(dict.fromkeys(project.lint([files[n] for n in plan], dialect)))
    migrations = pending_anywhere(project)
    rank = {m.path: order[m.name] for m in migrations}
    findings = sorted(found, key=lambda f: (rank.get(f.path, -1), f.line, f.column, f.rule))
    return migrations, findings


def live_report(
    project: Project,
    session: Session,
    write: bool = False,
    history: list[AppliedMigration] | None = None,
) -> LiveReport:
    """Compare the database's history (read now unless given) with status.json; with
    `write`, trust the database."""
    env = session.environment
    history = session.applied() if history is None else history
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
            Difference(
                "not-in-status-file",
                name,
                None,
                "applied",
                f"{name}: applied in the database, not in {project.record_name}",
            )
            for name in sorted(in_db - in_file)
        ),
        *(
            Difference(
                "not-in-database",
                name,
                "applied",
                None,
                f"{name}: in {project.record_name}, not applied in the database",
            )
            for name in sorted(in_file - in_db)
        ),
        *_history_differences(project, history, env.key),
    ]
    written = project.record_status(env, history) if write else False
    pending, failed = _live_pending(project, history)
    return LiveReport(
        env, tuple(history), tuple(differences), written, pending=pending, failed=failed
    )


def _history_differences(
    project: Project, history: list[AppliedMigration], key: str
) -> list[Difference]:
    """The database's rows against the files (`expected`: the file's checksum, `live`: the
    recorded one): a file gone, a file edited since it ran. The sentences are
    plan.history_warnings', row for row."""
    files = project.catalog.by_name()
    found: list[tuple[str, str, str | None, str]] = []
    for row in history:
        migration = files.get(row.migration)
        if migration is None:
            found.append(("file-gone", row.migration, None, row.checksum))
        elif not migration.matches(row.checksum):
            found.append(("edited", row.migration, migration.checksum, row.checksum))
    messages = history_warnings(project.catalog, history, key)
    return [
        Difference(kind, name, expected, live, message)
        for (kind, name, expected, live), message in zip(found, messages, strict=True)
    ]


def _live_pending(
    project: Project, history: list[AppliedMigration]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the database lacks (file order), and what stopped midway there."""
    applied = {row.migration for row in history if row.is_applied}
    failed = tuple(row.migration for row in history if row.stopped_midway)
    pending = tuple(
        m.name for m in project.catalog.migrations if m.name not in applied and m.name not in failed
    )
    return pending, failed


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
    damaged = Difference(
        "status-file-damaged", "status.json", None, None, f"status.json: {error.message}"
    )
    pending, failed = _live_pending(project, history)
    return LiveReport(
        env, tuple(history), (damaged,), written, others, pending=pending, failed=failed
    )
