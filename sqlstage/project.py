"""The library's front door: one object per project, one method per thing a user does.

The CLI is a thin layer over this module; scripts and tests use it directly:

    project = Project.load(Path("."))
    with project.connect("dev") as connection:
        plan = project.plan_apply(connection)
        project.apply(connection, plan)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from sqlstage import __version__
from sqlstage.catalog import Catalog, load_catalog
from sqlstage.config import Config, Environment, load_config, resolve_url
from sqlstage.drivers import connect
from sqlstage.drivers.base import AppliedMigration, Driver, ServerInfo
from sqlstage.errors import SqlstageError
from sqlstage.migration import Migration
from sqlstage.plan import Plan, history_warnings, plan_apply
from sqlstage.runlog import RunLog
from sqlstage.runner import Events, apply_migrations, current_user
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


@dataclass
class Connection:
    """An open connection to one environment's database, for the whole run."""

    environment: Environment
    url: DatabaseUrl
    driver: Driver
    info: ServerInfo

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
class ApplyResult:
    applied: tuple[Migration, ...]
    log_path: Path
    status_written: bool


@dataclass(frozen=True)
class StatusReport:
    """What status.json and the files say, without connecting anywhere."""

    environments: tuple[Environment, ...]
    migrations: tuple[Migration, ...]
    applied: dict[str, dict[str, Recorded]]
    pending: dict[str, tuple[str, ...]]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class LiveReport:
    """A database's history compared with what status.json says of its environment."""

    environment: Environment
    history: tuple[AppliedMigration, ...]
    differences: tuple[str, ...]
    written: bool


class Project:
    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def load(cls, start: Path) -> Project:
        """The project whose sqlstage.toml is at or above `start`."""
        return cls(load_config(start))

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.config.migrations_dir)

    def read_status(self) -> StatusFile:
        return read_status(self.config.status_file)

    # -- connecting ---------------------------------------------------------------------
    def connect(self, environment: str, ask: Callable[[str], str] | None = None) -> Connection:
        """Resolve the environment's URL (asking through `ask` when it says `prompt`) and
        open the connection: raises ConnectionFailed (exit 4) with the password masked."""
        env = self.config.environment(environment)
        url = resolve_url(self.config, env, ask)
        driver = connect(url, f"sqlstage {env.key} {current_user()}")
        return Connection(env, url, driver, driver.info())

    # -- apply --------------------------------------------------------------------------
    def plan_apply(
        self,
        connection: Connection,
        target: str | None = None,
        to: str | None = None,
        allow_out_of_order: bool = False,
    ) -> Plan:
        return plan_apply(
            connection.environment,
            self.catalog,
            connection.driver.applied(),
            target=target,
            to=to,
            allow_out_of_order=allow_out_of_order,
        )

    def apply(self, connection: Connection, plan: Plan, events: Events | None = None) -> ApplyResult:
        """Run the plan, write the log, and bring status.json up to date with the database,
        also when a migration fails (the ones before it did apply)."""
        env = connection.environment
        with RunLog(self.config.log_dir, env.key, connection.secrets) as log:
            log.write(f"sqlstage {__version__} apply {env.key} by {current_user()}")
            log.write(f"target {connection.url.masked}: {connection.info.describe()}")
            log.write(f"plan: {', '.join(m.name for m in plan.migrations) or 'nothing'}")
            for warning in plan.warnings:
                log.write(f"warning: {warning}")
            try:
                done = apply_migrations(connection.driver, plan.migrations, log, events)
            except SqlstageError as error:
                log.write(f"ERROR: {error}")
                raise
            except KeyboardInterrupt:
                log.write("INTERRUPTED: the migration in progress was rolled back")
                raise
            finally:
                written = self._sync_status(connection, log)
            log.write(f"done: {len(done)} migration(s) applied to {env.key}")
        return ApplyResult(tuple(done), log.path, written)

    def _sync_status(self, connection: Connection, log: RunLog) -> bool:
        try:
            history = connection.driver.applied()
        except Exception as error:  # the connection may be what failed
            log.write(f"status.json not updated: cannot read the history ({error})")
            return False
        return self.record_status(connection.environment, history)

    def record_status(self, environment: Environment, history: list[AppliedMigration]) -> bool:
        """Write the environment's entry of status.json from its database's history."""
        status = with_environment(
            self.read_status(), environment.key, state_from_history(environment.name, history)
        )
        return write_status(self.config.status_file, status, self.config, self.catalog)

    # -- status -------------------------------------------------------------------------
    def status(self) -> StatusReport:
        """Offline: status.json and the files, no database."""
        status = self.read_status()
        catalog = self.catalog
        files = catalog.by_name()
        applied: dict[str, dict[str, Recorded]] = {}
        pending: dict[str, tuple[str, ...]] = {}
        warnings: list[str] = []
        for key in self.config.environments:
            state = status.environments.get(key)
            rows = {row.migration: row for row in state.applied} if state else {}
            if state is not None:
                for name in state.applied_names(catalog) - rows.keys():
                    rows[name] = Recorded(name)
            applied[key] = rows
            pending[key] = tuple(m.name for m in pending_for(state, catalog))
            for row in rows.values():
                migration = files.get(row.migration)
                if migration is None:
                    warnings.append(f"{row.migration} is recorded as applied to {key} "
                                    "but its file is gone")
                elif row.checksum and row.checksum != migration.checksum:
                    warnings.append(f"{migration.file_name} was edited after it was applied "
                                    f"to {key} (checksum differs from status.json)")
        return StatusReport(
            tuple(self.config.environments.values()),
            catalog.migrations,
            applied,
            pending,
            tuple(warnings),
        )

    def pending(self, environment: str) -> list[Migration]:
        """What status.json says the environment still lacks (offline)."""
        self.config.environment(environment)
        return pending_for(self.read_status().environments.get(environment), self.catalog)

    def live_status(self, connection: Connection, write: bool = False) -> LiveReport:
        """Compare the database's history with status.json; with `write`, trust the database."""
        env = connection.environment
        history = connection.driver.applied()
        recorded = self.read_status().environments.get(env.key)
        in_file = recorded.applied_names(self.catalog) if recorded else set()
        in_db = {row.migration for row in history if row.status == "applied"}
        differences = [
            *(f"{name}: applied in the database, not in status.json"
              for name in sorted(in_db - in_file)),
            *(f"{name}: in status.json, not applied in the database"
              for name in sorted(in_file - in_db)),
            *history_warnings(self.catalog, history, env.key),
        ]
        written = self.record_status(env, history) if write else False
        return LiveReport(env, tuple(history), tuple(differences), written)
