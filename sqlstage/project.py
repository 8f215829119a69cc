"""The library's front door: one object per project, one method per thing a user does.

The CLI is a thin layer over this module; scripts and tests use it directly:

    project = Project.load(Path("."))
    with project.connect("dev") as connection:
        plan = project.plan_apply(connection)
        project.apply(connection, plan)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlstage import __version__
from sqlstage.catalog import Catalog, load_catalog
from sqlstage.config import CONFIG_FILE, Config, Environment, load_config, resolve_url
from sqlstage.drivers import connect
from sqlstage.drivers.base import AppliedMigration, Driver, ServerInfo
from sqlstage.errors import Refused, SqlstageError, StatusFileError
from sqlstage.locking import DEFAULT_LOCK_WAIT_SECONDS
from sqlstage.migration import Migration
from sqlstage.plan import (
    Plan,
    RollbackPlan,
    history_warnings,
    out_of_order_notes,
    plan_apply,
    plan_rollback,
)
from sqlstage.runlog import RunLog, file_stamp
from sqlstage.runner import (
    Events,
    RollbackEvents,
    apply_migrations,
    current_user,
    rollback_migrations,
)
from sqlstage.safety import check_identity, check_rehearsal
from sqlstage.schema import Snapshot, snapshot
from sqlstage.scratch import scratch_database
from sqlstage.status_file import (
    Recorded,
    StatusFile,
    pending_for,
    read_status,
    state_from_history,
    with_environment,
    write_status,
)
from sqlstage.urls import DatabaseUrl
from sqlstage.verify import VerifyEvents, VerifyOutcome, read_data_file, verify_migrations

if TYPE_CHECKING:
    from sqlstage.lint import Finding
    from sqlstage.repair import RepairAction

BACKUP_DIR = "backups"


@dataclass
class Connection:
    """An open connection to one environment's database, for the whole run."""

    environment: Environment
    url: DatabaseUrl
    driver: Driver
    info: ServerInfo
    #: the environment key stored in the database, None when it was never marked
    marker: str | None = None
    warnings: tuple[str, ...] = ()

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def secrets(self) -> list[str]:
        return [self.url.password] if self.url.password else []


@dataclass(frozen=True)
class CheckReport:
    info: ServerInfo
    marker: str | None
    last_applied: AppliedMigration | None
    applied_count: int


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[Migration, ...]
    log_path: Path
    status_written: bool
    #: the schema_dump file, when this run rewrote it
    schema_dump: Path | None = None


@dataclass(frozen=True)
class RollbackResult:
    rolled_back: tuple[Migration, ...]
    log_path: Path
    status_written: bool
    #: the schema_dump file, when this run rewrote it
    schema_dump: Path | None = None


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found; `database` is the scratch database (masked), `kept` whether it
    was left in place (`--keep`)."""

    database: str
    scratch_name: str
    kept: bool
    server: str
    outcome: VerifyOutcome
    log_path: Path


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


@dataclass(frozen=True)
class LiveReport:
    """A database's history compared with what status.json says of its environment."""

    environment: Environment
    history: tuple[AppliedMigration, ...]
    differences: tuple[str, ...]
    written: bool
    #: environments a damaged file no longer tells about: rebuild each with --live ENV --write
    unknown: tuple[str, ...] = ()


class Project:
    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def load(cls, start: Path) -> Project:
        """The project whose sqlstage.toml is at or above `start`."""
        return cls(load_config(start))

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.config.migrations_dir, self.config.log_dir / ".cache")

    def read_status(self) -> StatusFile:
        return read_status(self.config.status_file)

    # -- connecting ---------------------------------------------------------------------
    def connect(
        self,
        environment: str,
        ask: Callable[[str], str] | None = None,
        verify_identity: bool = True,
        create: bool = True,
    ) -> Connection:
        """Resolve the environment's URL (asking through `ask` when it says `prompt`) and
        open the connection: raises ConnectionFailed (exit 4) with the password masked, and
        Refused (exit 3) when the database is marked as another environment."""
        env = self.config.environment(environment)
        url = resolve_url(self.config, env, ask)
        driver = connect(url, f"sqlstage {env.key} {current_user()}", create=create)
        try:
            marker = driver.read_marker()
            if verify_identity:
                check_identity(env, marker, 0)
        except BaseException:
            driver.close()
            raise
        warnings = []
        literal = env.url != "prompt" and not env.url.startswith("env:")
        if env.protected and literal and url.password:
            warnings.append(
                f"the password of protected environment '{env.key}' is written in "
                f'{CONFIG_FILE}; use url = "prompt" or url = "env:VAR" instead'
            )
        return Connection(env, url, driver, driver.info(), marker, tuple(warnings))

    def check(self, connection: Connection) -> CheckReport:
        """What `sqlstage check` shows; changes nothing."""
        history = [row for row in connection.driver.applied() if row.status == "applied"]
        return CheckReport(
            connection.info,
            connection.marker,
            history[-1] if history else None,
            len(history),
        )

    def check_rehearsal(self, plan: Plan) -> None:
        """Refuse migrations the environment's `requires` has not applied (status.json)."""
        if plan.environment.requires is None:
            return  # nothing to check: a damaged status.json must not block, say, dev
        check_rehearsal(plan.environment, plan.migrations, self.read_status(), self.catalog)

    def backup(self, connection: Connection) -> Path:
        """Back the database up into backups/<env>/<UTC timestamp><suffix>; returns the file."""
        driver = connection.driver
        folder = self.config.root / BACKUP_DIR / connection.environment.key
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{file_stamp()}{driver.backup_suffix}"
        while True:  # created empty and private first: a dump holds all the data
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                break
            except FileExistsError:  # two backups in one millisecond: never overwrite one
                path = path.with_stem(path.stem + "-2")
        driver.backup(path)
        if not path.is_file() or path.stat().st_size == 0:
            raise Refused(f"the backup {path} is missing or empty; nothing was applied")
        return path

    # -- one runner at a time -----------------------------------------------------------
    @contextmanager
    def locked(
        self,
        connection: Connection,
        wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
        waiting: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        """Hold the database's run lock (re-entrant); raises Locked (exit 3) after
        `wait_seconds`, telling `waiting` who holds it. Plan inside it, so the plan is
        made from the history as the previous run left it."""
        connection.driver.lock(wait_seconds, waiting)
        try:
            yield
        finally:
            connection.driver.unlock()

    # -- apply --------------------------------------------------------------------------
    def plan_apply(
        self,
        connection: Connection,
        target: str | None = None,
        to: str | None = None,
        allow_out_of_order: bool = False,
    ) -> Plan:
        """What to run; refuses while a migration is recorded failed (exit 3) or an applied
        file was edited (exit 2, with the diff), and marks migrations that run outside a
        transaction (a file error, exit 2, when one mixes both kinds)."""
        from sqlstage.checksums import refuse_edited
        from sqlstage.transactions import refuse_if_failed, runs_outside_transaction

        env, driver = connection.environment, connection.driver
        history = driver.applied()
        refuse_if_failed(env.key, history)
        refuse_edited(env.key, self.catalog, history, driver.applied_sql)
        plan = plan_apply(
            env, self.catalog, history, target=target, to=to, allow_out_of_order=allow_out_of_order
        )
        outside = frozenset(m.name for m in plan.migrations if runs_outside_transaction(driver, m))
        return replace(plan, outside_transaction=outside)

    def apply(
        self,
        connection: Connection,
        plan: Plan,
        events: Events | None = None,
        note: str | None = None,
        skip_rehearsal: bool = False,
    ) -> ApplyResult:
        """Run the plan, write the log, and bring status.json up to date with the database,
        also when a migration fails (the ones before it did apply).

        An unmarked database is marked as this environment first. The rehearsal rule
        (`requires`) is checked here too, so no caller can skip it by accident; `skip_rehearsal`
        does it on purpose, and `note` (why) goes into the log and every history row.
        """
        env = connection.environment
        if not skip_rehearsal:
            self.check_rehearsal(plan)
        with self.locked(connection), self._run_log(connection, "apply") as log:
            _refuse_stale(env.key, plan.migrations, connection.driver.applied())
            log.write(f"plan: {', '.join(m.name for m in plan.migrations) or 'nothing'}")
            for warning in (*plan.warnings, *connection.warnings):
                log.write(f"warning: {warning}")
            if note:
                log.write(f"note: {note}")
            if self._mark(connection):
                log.write(f"marked this database as environment '{env.key}'")
            done, written, dumped = self._run_and_record(
                connection,
                log,
                lambda: apply_migrations(
                    connection.driver,
                    plan.migrations,
                    log,
                    events,
                    lock_timeout=env.effective_lock_timeout,
                    note=note,
                    notes=out_of_order_notes(plan),
                    environment=env.key,
                ),
            )
            log.write(f"done: {len(done)} migration(s) applied to {env.key}")
        return ApplyResult(tuple(done), log.path, written, dumped)

    # -- rollback -----------------------------------------------------------------------
    def plan_rollback(self, connection: Connection, target: str | None = None) -> RollbackPlan:
        """What to roll back; refuses while a migration is recorded failed (exit 3), and
        checks each rollback section can run (a file error, exit 2, when it mixes statements
        that need a transaction with ones that cannot have one)."""
        from sqlstage.transactions import refuse_if_failed, rollback_runs_outside_transaction

        env, driver = connection.environment, connection.driver
        history = driver.applied()
        refuse_if_failed(env.key, history)
        plan = plan_rollback(env, self.catalog, history, target)
        for migration in plan.migrations:
            rollback_runs_outside_transaction(driver, migration)
        return plan

    def rollback(
        self, connection: Connection, plan: RollbackPlan, events: RollbackEvents | None = None
    ) -> RollbackResult:
        """Run the plan's rollback sections, newest first, write the log, and bring status.json
        up to date with the database, also when a rollback fails (the ones before it stay
        rolled back)."""
        env = connection.environment
        with self.locked(connection), self._run_log(connection, "rollback") as log:
            _refuse_stale_rollback(env.key, plan.migrations, connection.driver.applied())
            log.write(f"plan: roll back {', '.join(m.name for m in plan.migrations) or 'nothing'}")
            for warning in (*plan.warnings, *connection.warnings):
                log.write(f"warning: {warning}")
            done, written, dumped = self._run_and_record(
                connection,
                log,
                lambda: rollback_migrations(
                    connection.driver,
                    plan.migrations,
                    log,
                    events,
                    lock_timeout=env.effective_lock_timeout,
                    environment=env.key,
                ),
            )
            log.write(f"done: {len(done)} migration(s) rolled back on {env.key}")
        return RollbackResult(tuple(done), log.path, written, dumped)

    def _run_and_record(
        self, connection: Connection, log: RunLog, run: Callable[[], list[Migration]]
    ) -> tuple[list[Migration], bool, Path | None]:
        """Run the migrations (or rollbacks), logging an error or an interruption, and
        whatever happened bring status.json in line with the database; on success also the
        schema dump. Returns what ran, whether status.json changed, and the dump written."""
        try:
            done = run()
        except SqlstageError as error:
            log.write(f"ERROR: {error}")
            raise
        except KeyboardInterrupt:
            log.write("INTERRUPTED: the one in progress was undone (its transaction rolled back)")
            raise
        finally:
            written = self._sync_status(connection, log)
        return done, written, self._dump_schema(connection, log)

    @contextmanager
    def _run_log(self, connection: Connection, verb: str) -> Iterator[RunLog]:
        """The run's log file, opened with who, what, the tool version and the target."""
        env = connection.environment
        with RunLog(self.config.log_dir, env.key, connection.secrets) as log:
            log.write(f"sqlstage {__version__} {verb} {env.key} by {current_user()}")
            log.write(f"target {connection.url.masked}: {connection.info.describe()}")
            yield log

    def up_to_date(self, connection: Connection, plan: Plan) -> bool:
        """Record a run that had nothing to apply: a log line, and status.json brought in
        line with the database (the plan's history: no second query). Returns whether
        status.json changed."""
        with self._run_log(connection, "apply") as log:
            log.write(f"nothing to apply: {connection.environment.key} is up to date")
            return self.record_status(connection.environment, list(plan.applied))

    def _mark(self, connection: Connection) -> bool:
        """Record the environment in an unmarked database; returns whether it did."""
        if connection.marker is not None:
            return False
        env = connection.environment
        connection.driver.write_marker(env.key, datetime.now(UTC), current_user())
        connection.marker = env.key
        return True

    def _sync_status(self, connection: Connection, log: RunLog) -> bool:
        try:
            history = connection.driver.applied()
        except Exception as error:  # the connection may be what failed
            log.write(f"status.json not updated: cannot read the history ({error})")
            return False
        return self.record_status(connection.environment, history)

    def preflight(self) -> None:
        """Read the migration files and status.json, so that a file error (exit 2) stops a
        run before it prompts, connects or changes anything."""
        self.catalog  # noqa: B018 - loading it is the check
        self.read_status()

    def record_status(
        self, environment: Environment, history: list[AppliedMigration], rebuild: bool = False
    ) -> bool:
        """Write the environment's entry of status.json from its database's history.

        A damaged file is an error (exit 2), so that no run quietly drops what it says of
        other environments; `rebuild` (status --live ENV --write) keeps what can still be read
        of them instead."""
        try:
            current = self.read_status()
        except StatusFileError:
            if not rebuild:
                raise
            from sqlstage.repair import salvage_status

            current = salvage_status(self.config.status_file, list(self.config.environments)).status
        status = with_environment(
            current, environment.key, state_from_history(environment.name, history)
        )
        return write_status(self.config.status_file, status, self.config, self.catalog)

    # -- schema -------------------------------------------------------------------------
    def schema(self, connection: Connection) -> Snapshot:
        """The environment's schema as its catalogs describe it (sqlstage's tables left out)."""
        return snapshot(connection.driver)

    def _dump_schema(self, connection: Connection, log: RunLog) -> Path | None:
        """Rewrite the environment's `schema_dump` file if its schema changed; the path if so."""
        from sqlstage.schema.dump import write_dump

        env = connection.environment
        if env.schema_dump is None:
            return None
        path = self.config.root / env.schema_dump
        if not write_dump(connection.driver, env.key, path):
            return None
        log.write(f"schema written to {path}")
        return path

    # -- verify -------------------------------------------------------------------------
    def verify(
        self,
        start: str | None = None,
        data: Path | None = None,
        keep: bool = False,
        environment: str | None = None,
        events: VerifyEvents | None = None,
        ask: Callable[[str], str] | None = None,
    ) -> VerifyReport:
        """Up, down and up again on a scratch database made on the server of `environment`
        (default: `dev`, else the first one), or of its or the top-level `verify_url`.

        Migrations numbered below `start` are applied as setup and not judged; `data` is a SQL
        file of representative rows loaded on the way up.
        """
        env = self.config.environment(environment or self._verify_base())
        spec = env.verify_url or self.config.verify_url or env.url
        base = resolve_url(self.config, replace(env, url=spec), ask)
        from_number = self.catalog.find(start).number if start is not None else None
        data_file = read_data_file(data, from_number) if data is not None else None
        secrets = [base.password] if base.password else []
        with scratch_database(base, keep) as scratch:
            driver = connect(scratch.url, f"sqlstage verify {current_user()}")
            with driver, RunLog(self.config.log_dir, "verify", secrets) as log:
                server = driver.info()
                log.write(f"sqlstage {__version__} verify by {current_user()}")
                log.write(f"scratch database {scratch.url.masked}: {server.describe()}")
                outcome = verify_migrations(
                    driver, self.catalog.migrations, log, from_number, data_file, events
                )
                log.write(f"done: {'every migration round-trips' if outcome.ok else 'FAILED'}")
        return VerifyReport(
            scratch.url.masked, scratch.name, keep, server.describe(), outcome, log.path
        )

    def _verify_base(self) -> str:
        if "dev" in self.config.environments or not self.config.environments:
            return "dev"
        return next(iter(self.config.environments))

    # -- status -------------------------------------------------------------------------
    def status(self) -> StatusReport:
        """Offline: status.json and the files, no database."""
        status = self.read_status()
        catalog = self.catalog
        files = catalog.by_name()
        applied: dict[str, dict[str, Recorded]] = {}
        pending: dict[str, tuple[str, ...]] = {}
        failed: dict[str, tuple[str, ...]] = {}
        warnings: list[str] = []
        for key in self.config.environments:
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
                    f"`sqlstage repair {key} {state.failed[0]} --mark-applied|--forget`"
                )
            for row in rows.values():
                migration = files.get(row.migration)
                if migration is None:
                    warnings.append(
                        f"{row.migration} is recorded as applied to {key} but its file is gone"
                    )
                elif row.checksum and row.checksum != migration.checksum:
                    warnings.append(
                        f"{migration.file_name} was edited after it was applied "
                        f"to {key} (checksum differs from status.json)"
                    )
        return StatusReport(
            tuple(self.config.environments.values()),
            catalog.migrations,
            applied,
            pending,
            tuple(warnings),
            failed,
        )

    def refuse_edited(self, connection: Connection) -> None:
        """Raise ChecksumChanged (exit 2, with the diff) if an applied file was edited."""
        from sqlstage.checksums import refuse_edited

        driver = connection.driver
        refuse_edited(
            connection.environment.key, self.catalog, driver.applied(), driver.applied_sql
        )

    def pending(self, environment: str) -> list[Migration]:
        """What status.json says the environment still lacks (offline)."""
        self.config.environment(environment)
        return pending_for(self.read_status().environments.get(environment), self.catalog)

    def live_status(self, connection: Connection, write: bool = False) -> LiveReport:
        """Compare the database's history with status.json; with `write`, trust the database."""
        env = connection.environment
        history = connection.driver.applied()
        try:  # compare with the file as it is, before any rewrite
            recorded = self.read_status().environments.get(env.key)
        except StatusFileError as error:
            if not write:
                raise
            return self._rebuild_from(connection, history, error)
        in_file = recorded.applied_names(self.catalog) if recorded else set()
        in_db = {row.migration for row in history if row.status == "applied"}
        differences = [
            *(
                f"{name}: applied in the database, not in status.json"
                for name in sorted(in_db - in_file)
            ),
            *(
                f"{name}: in status.json, not applied in the database"
                for name in sorted(in_file - in_db)
            ),
            *history_warnings(self.catalog, history, env.key),
        ]
        written = self.record_status(env, history) if write else False
        return LiveReport(env, tuple(history), tuple(differences), written)

    def _rebuild_from(
        self, connection: Connection, history: list[AppliedMigration], error: StatusFileError
    ) -> LiveReport:
        """A damaged status.json: write this environment's entry from its database, keep
        what the file still tells of the others, and name those it cannot tell about."""
        from sqlstage.repair import salvage_status

        env = connection.environment
        unknown = salvage_status(self.config.status_file, list(self.config.environments)).unknown
        written = self.record_status(env, history, rebuild=True)
        others = tuple(key for key in unknown if key != env.key)
        return LiveReport(env, tuple(history), (f"status.json: {error.message}",), written, others)

    # -- lint ---------------------------------------------------------------------------
    def lint_dialect(self) -> str:
        """`sqlite` when every environment's URL is literally SQLite, else `postgresql`."""
        from sqlstage.lint import dialect_of_urls

        return dialect_of_urls([env.url for env in self.config.environments.values()])

    def pending_anywhere(self) -> list[Migration]:
        """Offline: the migrations some environment still lacks, in file order."""
        report = self.status()
        names = {name for pending in report.pending.values() for name in pending}
        return [m for m in self.catalog.migrations if m.name in names]

    def lint(
        self,
        migrations: Sequence[Migration],
        dialect: str,
        server_version: int | None = None,
        tool_lock_timeout: bool | None = None,
    ) -> list[Finding]:
        """Lint findings for the migrations' forward SQL under `[lint]` of sqlstage.toml.

        The target version is the lower of `[lint] pg_version` and `server_version` (the
        connected server). `tool_lock_timeout` says whether sqlstage sets lock_timeout itself
        for the run; None means: every protected environment (or every one, when none is
        protected) has one.
        """
        from sqlstage.lint import DEFAULT_PG_VERSION, LintOptions, lint_all

        settings = self.config.lint
        versions = [v for v in (settings.pg_version, server_version) if v is not None]
        if tool_lock_timeout is None:
            envs = list(self.config.environments.values())
            targets = [env for env in envs if env.protected] or envs
            tool_lock_timeout = bool(targets) and all(
                env.effective_lock_timeout is not None for env in targets
            )
        options = LintOptions(
            dialect=dialect,
            pg_version=min(versions) if versions else DEFAULT_PG_VERSION,
            disable=frozenset(settings.disable),
            warn=frozenset(settings.warn),
            tool_lock_timeout=tool_lock_timeout,
        )
        return lint_all([(m.path, m.forward) for m in migrations], options)

    # -- putting records right (sqlstage.repair) ----------------------------------------
    def repair(self, connection: Connection, migration: str, action: RepairAction) -> str:
        """Change one history row (mark applied, forget, accept an edit) and status.json."""
        from sqlstage.repair import repair, resolve_name

        driver, env = connection.driver, connection.environment
        name = resolve_name(self.catalog, driver.applied(), migration)
        with self.locked(connection), self._run_log(connection, "repair") as log:
            done = repair(driver, env.key, self.catalog, name, action, current_user())
            log.write(done)
            self.record_status(env, driver.applied())
        return done

    def plan_baseline(self, connection: Connection, target: str) -> list[Migration]:
        """The migrations up to `target` a baseline would record as applied (none run)."""
        from sqlstage.repair import plan_baseline

        env = connection.environment
        return plan_baseline(
            env.key, self.catalog, connection.driver.applied(), self.catalog.find(target)
        )

    def baseline(self, connection: Connection, migrations: list[Migration]) -> bool:
        """Record `migrations` as applied without running them, and mark the database as the
        environment (baselining is adopting it); returns whether status.json changed."""
        from sqlstage.repair import record_baseline

        with self.locked(connection), self._run_log(connection, "baseline") as log:
            env = connection.environment
            _refuse_stale(env.key, migrations, connection.driver.applied())
            self._mark(connection)
            record_baseline(connection.driver, migrations, current_user())
            log.write(f"recorded as applied, none run: {', '.join(m.name for m in migrations)}")
            return self.record_status(connection.environment, connection.driver.applied())

    def repair_status(self) -> tuple[bool, tuple[str, ...]]:
        """Offline: rewrite status.json from what it still tells; returns whether it was
        written and the environments that need `status --live ENV --write`."""
        from sqlstage.repair import salvage_status

        salvage = salvage_status(self.config.status_file, list(self.config.environments))
        if not salvage.status.environments:  # nothing could be read: keep the file to fix by hand
            return False, salvage.unknown
        written = write_status(self.config.status_file, salvage.status, self.config, self.catalog)
        return written, salvage.unknown


def _refuse_stale(
    environment: str, migrations: Sequence[Migration], history: list[AppliedMigration]
) -> None:
    """A plan made before the lock was taken may have been applied by the run that held it."""
    done = {row.migration for row in history}
    stale = [m.name for m in migrations if m.name in done]
    if stale:
        raise Refused(
            f"{stale[0]} was applied to {environment} by another run since this plan "
            "was made; nothing was changed",
            "plan again: run the same command",
        )


def _refuse_stale_rollback(
    environment: str, migrations: Sequence[Migration], history: list[AppliedMigration]
) -> None:
    """A rollback plan made before the lock was taken may have been undone by another run."""
    done = {row.migration for row in history}
    gone = [m.name for m in migrations if m.name not in done]
    if gone:
        raise Refused(
            f"{gone[0]} is no longer applied to {environment}: another run changed it since "
            "this plan was made; nothing was changed",
            "plan again: run the same command",
        )
