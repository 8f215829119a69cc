"""The project on disk: its config, its migration files, status.json; no database.

What touches a database is in `sqlstage.commands` (apply, rollback, repair, baseline); the
reports are in `sqlstage.report`:

    project = Project.load(Path("."))
    result = commands.apply(project, "dev", commands.ApplyOptions(yes=True))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlstage import __version__
from sqlstage.catalog import Catalog, load_catalog
from sqlstage.checksums import AppliedEdit, applied_edits
from sqlstage.config import Config, Environment, load_config, resolve_url
from sqlstage.git import changed_since, file_at
from sqlstage.history import AppliedMigration
from sqlstage.migration import Migration
from sqlstage.runlog import RunLog, check_log_dir
from sqlstage.status_file import (
    DriftVerdict,
    Recorded,
    StatusFile,
    check_writable,
    only_in_file,
    parse_status,
    pending_for,
    read_status,
    record_drift,
    state_from_history,
    update_environment,
    write_status,
)

if TYPE_CHECKING:
    from sqlstage.lint import Finding
    from sqlstage.verify import VerifyEvents, VerifyOutcome


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


class Project:
    #: what `status --live` compares a database with
    record_name = "status.json"

    def __init__(self, config: Config, read_only: bool = False) -> None:
        self.config = config
        #: only reading (status, pending): a file with no SQL yet is left out and named in
        #: `catalog.unwritten` instead of stopping the command
        self.read_only = read_only

    @classmethod
    def load(cls, start: Path, read_only: bool = False) -> Project:
        """The project whose sqlstage.toml is at or above `start`."""
        return cls(load_config(start), read_only)

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(
            self.config.migrations_dir, self.config.log_dir / ".cache", self.read_only
        )

    def read_status(self) -> StatusFile:
        return read_status(self.config.status_file)

    def missing_status(self) -> str | None:
        """A warning when status.json does not exist (yet): then nothing is recorded as
        applied anywhere, which is true of a new project and a surprise in any other."""
        path = self.config.status_file
        if path.exists():
            return None
        return (
            f"{path} does not exist: nothing is recorded as applied to any environment "
            "(a run writes it; `sqlstage status --live ENV --write` rebuilds it from a database)"
        )

    def preflight(self, writes: bool = True) -> None:
        """Read the migration files and status.json, and (`writes`: the run will change the
        database) check that status.json and the log folder can be written, so that a file
        error (exit 2) stops a run before it prompts, connects or changes anything."""
        self.catalog  # noqa: B018 - loading it is the check
        self.read_status()
        if writes:
            check_writable(self.config.status_file)
            check_log_dir(self.config.log_dir)

    def record_status(
        self,
        environment: Environment,
        history: list[AppliedMigration],
        rebuild: bool = False,
        keep: Sequence[Recorded] = (),
        fingerprint: str | None = None,
    ) -> bool:
        """Write the environment's entry of status.json from its database's history (and
        `fingerprint`, its schema's, when given; else the one the file holds stays).

        The file is re-read and rewritten under a lock on its folder, so runs on other
        environments of this checkout keep their entries. A damaged file is an error (exit
        2), so that no run quietly drops what it says of other environments; `rebuild`
        (status --live ENV --write) keeps what can still be read of them instead. `keep`:
        records only the file held before the run, kept while the history lacks them."""
        state = replace(
            state_from_history(environment.name, history, keep), fingerprint=fingerprint
        )
        return update_environment(
            self.config.status_file,
            environment.key,
            state,
            self.config,
            self.catalog,
            salvage=self._salvage_status if rebuild else None,
        )

    def record_drift(
        self, key: str, fingerprint: str | None = None, verdict: DriftVerdict | None = None
    ) -> bool:
        """Write the environment's schema fingerprint and/or last drift verdict into
        status.json (under its lock); returns whether the file changed."""
        path = self.config.status_file
        return record_drift(path, key, self.config, self.catalog, fingerprint, verdict)

    def _salvage_status(self) -> StatusFile:
        from sqlstage.repair import salvage_status

        return salvage_status(self.config.status_file, list(self.config.environments)).status

    # -- verify -------------------------------------------------------------------------
    def verify(
        self,
        start: str | None = None,
        data: Path | None = None,
        keep: bool = False,
        environment: str | None = None,
        events: VerifyEvents | None = None,
        ask: Callable[[str], str] | None = None,
        strict: bool = False,
    ) -> VerifyReport:
        """Judge every migration's rollback on its own, on a scratch database made on the
        server of `environment` (default: `dev`, else the first one), or of its or the
        top-level `verify_url`.

        Migrations numbered below `start` are applied as setup and not judged; `data` is a SQL
        file of representative rows loaded on the way up; with `strict`, a migration declared
        irreversible fails too.
        """
        env = self.config.environment(environment or self.verify_base())
        spec = env.verify_url or self.config.verify_url or env.url
        base = resolve_url(self.config, replace(env, url=spec), ask)
        from_number = self.catalog.find(start).number if start is not None else None
        # verify's machinery (scratch databases, schema snapshots) only for verify
        from sqlstage.scratch import Workspace, scratch_database
        from sqlstage.user import current_user
        from sqlstage.verify import read_data_file, verify_migrations

        data_file = read_data_file(data, from_number) if data is not None else None
        secrets = [base.password] if base.password else []
        with scratch_database(base, keep) as scratch:
            workspace = Workspace(scratch, f"sqlstage verify {current_user()}")
            with workspace, RunLog(self.config.log_dir, "verify", secrets) as log:
                server = workspace.driver.info()
                log.write(f"sqlstage {__version__} verify by {current_user()}")
                log.write(f"scratch database {scratch.url.masked}: {server.describe()}")
                outcome = verify_migrations(
                    workspace, self.catalog.migrations, log, from_number, data_file, events, strict
                )
                log.write(f"done: {'every migration round-trips' if outcome.ok else 'FAILED'}")
        return VerifyReport(
            scratch.url.masked, scratch.name, keep, server.describe(), outcome, log.path
        )

    def applied_edits(self, base: str | None = None) -> list[AppliedEdit]:
        """Applied migrations whose file was edited or removed, by the checksums of
        status.json as committed at git revision `base` (a pull request's target, which the
        branch cannot rewrite), or of the file on disk."""
        status = self.read_status()
        if base is not None:
            text = file_at(base, self.config.status_file)
            status = parse_status(text, self.config.status_file) if text else StatusFile()
        return applied_edits(status, self.catalog)

    def changed_migrations(self, revision: str) -> list[Migration]:
        """The migrations a branch adds or changes since it left git revision `revision`."""
        changed = changed_since(revision, self.config.migrations_dir)
        return [m for m in self.catalog.migrations if m.path.resolve() in changed]

    def verify_base(self) -> str:
        if "dev" in self.config.environments or not self.config.environments:
            return "dev"
        return next(iter(self.config.environments))

    def only_in_file(
        self, environment: str, history: Sequence[AppliedMigration]
    ) -> tuple[Recorded, ...]:
        """What status.json records for `environment` that its database's `history` does not."""
        state = self.read_status().environments.get(environment)
        return only_in_file(state, self.catalog, history)

    def pending(self, environment: str) -> list[Migration]:
        """What status.json says the environment still lacks (offline)."""
        self.config.environment(environment)
        return pending_for(self.read_status().environments.get(environment), self.catalog)

    # -- lint ---------------------------------------------------------------------------
    def lint_dialect(self) -> str:
        """`sqlite` when every environment's URL is literally SQLite, else `postgresql`."""
        from sqlstage.lint import dialect_of_config

        return dialect_of_config(self.config)

    def lint(
        self,
        migrations: Sequence[Migration],
        dialect: str,
        server_version: int | None = None,
        tool_lock_timeout: bool | None = None,
    ) -> list[Finding]:
        """Lint findings for the migrations one run applies, in order, under `[lint]` of
        sqlstage.toml: each forward section knowing what the earlier ones created, and each
        rollback section (sqlstage.lint.lint_plan), with the options of
        `LintOptions.of_config` (the target version, whether sqlstage sets lock_timeout).
        """
        from sqlstage.lint import LintOptions, lint_plan

        options = LintOptions.of_config(self.config, dialect, server_version, tool_lock_timeout)
        return lint_plan(migrations, options)

    def repair_status(self) -> tuple[bool, tuple[str, ...]]:
        """Offline: rewrite status.json from what it still tells; returns whether it was
        written and the environments that need `status --live ENV --write`."""
        from sqlstage.repair import salvage_status
        from sqlstage.writable import folder_lock

        path = self.config.status_file
        with folder_lock(path.parent, path.name):  # a run may be writing its entry
            salvage = salvage_status(path, list(self.config.environments))
            if not salvage.status.environments:  # nothing readable: keep it to fix by hand
                return False, salvage.unknown
            written = write_status(path, salvage.status, self.config, self.catalog)
        return written, salvage.unknown
