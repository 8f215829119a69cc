"""The command line: parse, prompt, render. No SQL and no file parsing live here."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from sqlstage import __version__
from sqlstage.errors import ExitCode, MigrationFailed, Refused, SqlstageError
from sqlstage.urls import redact

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.config import Environment
    from sqlstage.lint import Finding
    from sqlstage.migration import Migration
    from sqlstage.plan import Plan, RollbackPlan
    from sqlstage.project import Connection, Project
    from sqlstage.safety import Identity


class State:
    """Per-invocation state: where the project is, and secrets to keep out of any output."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.secrets: list[str] = []

    def project(self) -> Project:
        from sqlstage.project import Project

        return Project.load(self.directory)

    def ask_hidden(self, question: str) -> str:
        value: str = click.prompt(f"{question} (input hidden)", hide_input=True, err=True)
        self._remember_password(value)
        return value

    def _remember_password(self, url: str) -> None:
        from urllib.parse import unquote, urlsplit

        try:
            password = urlsplit(url.strip()).password
        except ValueError:
            password = None
        self.secrets.extend(p for p in (password, unquote(password or "")) if p)
        if not password:
            self.secrets.append(url.strip())  # unparseable: treat the whole answer as secret


class SqlstageGroup(click.Group):
    """Turns SqlstageError into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SqlstageError as error:
            state = ctx.find_object(State)
            secrets = state.secrets if state else []
            if error.details:
                click.echo(redact(error.details, secrets), err=True)
            fail(str(error), error.exit_code, secrets)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: the migration in progress was rolled back", err=True)
            sys.exit(ExitCode.INTERRUPTED)


def fail(message: str, code: int, secrets: list[str]) -> NoReturn:
    click.secho(f"error: {redact(message, secrets)}", fg="red", err=True)
    sys.exit(code)


@click.group(cls=SqlstageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Run as if started in DIR.",
    metavar="DIR",
)
@click.version_option(__version__, prog_name="sqlstage")
@click.pass_context
def cli(ctx: click.Context, directory: Path) -> None:
    """Apply plain, numbered SQL migrations to dev, staging and production, safely.

    \b
    Exit codes: 0 done or nothing to do, 1 a migration failed, 2 usage, configuration
    or migration-file error, 3 refused (not confirmed, a safety rule), 4 cannot connect,
    130 interrupted.
    """
    ctx.obj = State(directory)


@cli.command()
@click.option(
    "--example", is_flag=True, help="Also write three example migrations and a SQLite dev."
)
@click.pass_obj
def init(state: State, example: bool) -> None:
    """Create sqlstage.toml, the migrations folder and status.json."""
    from sqlstage.scaffold import init_project

    state.directory.mkdir(parents=True, exist_ok=True)
    for path in init_project(state.directory.resolve(), example):
        click.echo(f"created {_relative(path, state.directory.resolve())}")
    if example:
        click.echo("next: sqlstage apply dev --yes && sqlstage status")


@cli.command()
@click.argument("name")
@click.pass_obj
def new(state: State, name: str) -> None:
    """Write the next NNN_NAME.sql from the template and print its path."""
    from sqlstage.scaffold import new_migration

    project = state.project()
    click.echo(_relative(new_migration(project.config.migrations_dir, name), Path.cwd()))


def _lock_wait_option(command: Any) -> Any:
    from sqlstage.locking import DEFAULT_LOCK_WAIT_SECONDS

    return click.option(
        "--lock-wait",
        type=click.FloatRange(min=0),
        default=DEFAULT_LOCK_WAIT_SECONDS,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for another run on the same database to finish.",
    )(command)


def _locked(
    project: Project, connection: Connection, wait_seconds: float, skip: bool = False
) -> AbstractContextManager[None]:
    """The run lock for a command that changes the database (`skip` for a dry run)."""
    if skip:
        return nullcontext()

    def waiting(holder: str) -> None:
        click.secho(
            f"waiting up to {wait_seconds:g} s: {connection.environment.key} is being changed "
            f"by {holder}",
            fg="yellow",
            err=True,
        )

    return project.locked(connection, wait_seconds, waiting)


@cli.command()
@click.argument("environment")
@click.argument("migration", required=False)
@click.option("--to", "to", metavar="MIGRATION", help="Apply pending migrations up to this one.")
@click.option("--dry-run", is_flag=True, help="Print the plan and the SQL; run nothing.")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask. A protected environment accepts it only with allow_non_interactive.",
)
@click.option(
    "--allow-out-of-order", is_flag=True, help="Apply a migration numbered below applied ones."
)
@click.option("--backup", is_flag=True, help="Back the database up before applying.")
@click.option(
    "--skip-rehearsal",
    is_flag=True,
    help="Apply even if `requires` has not run it (needs --reason).",
)
@click.option("--reason", metavar="TEXT", help="Why the rehearsal check is skipped (logged).")
@click.option(
    "--adopt",
    is_flag=True,
    help="Mark a database that has migrations but no environment marker as ENVIRONMENT.",
)
@click.option(
    "--allow-lint",
    "allow_lint",
    multiple=True,
    metavar="RULE",
    help="Apply to a protected environment despite this lint rule's errors (logged).",
)
@_lock_wait_option
@click.pass_obj
def apply(
    state: State,
    environment: str,
    migration: str | None,
    to: str | None,
    dry_run: bool,
    yes: bool,
    allow_out_of_order: bool,
    backup: bool,
    skip_rehearsal: bool,
    reason: str | None,
    adopt: bool,
    allow_lint: tuple[str, ...],
    lock_wait: float,
) -> None:
    """Apply pending migrations to ENVIRONMENT (all, MIGRATION alone, or up to --to)."""
    if migration and to:
        raise click.UsageError("give MIGRATION or --to, not both")
    if skip_rehearsal and not (reason and reason.strip()):
        raise click.UsageError("--skip-rehearsal needs --reason \"why\"")
    from sqlstage.safety import check_identity  # here, not at the top: `--help` stays light

    project = state.project()
    env = project.config.environment(environment)
    if not dry_run:
        _refuse_unattended(env)
    with (
        _connect(state, project, environment, changes=not dry_run) as connection,
        _locked(project, connection, lock_wait, skip=dry_run),
    ):
        plan = project.plan_apply(connection, migration, to, allow_out_of_order)
        for warning in plan.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
        if plan.already_applied is not None:
            row = plan.already_applied
            click.echo(f"{row.migration} is already applied to {env.key} ({_date(row.applied_at)})")
            return
        if not plan.migrations:
            click.echo(f"{env.key} is up to date")
            if not dry_run:  # the plan's history: reading it again doubled a no-op's queries
                project.record_status(env, list(plan.applied))
            return
        _show_plan(plan, connection)
        findings = _lint_plan(project, plan, connection)
        if dry_run:
            _show_sql(plan)
            click.echo("dry run: nothing was changed")
            return
        lint_note = _lint_gate(env, findings, allow_lint)
        note = None
        if skip_rehearsal:
            note = f"rehearsal check skipped: {reason}"
            click.secho(f"warning: {note}", fg="yellow", err=True)
        else:
            project.check_rehearsal(plan)
        take_backup = backup or env.backup is not None
        if take_backup:
            connection.driver.check_backup()
        identity = check_identity(env, connection.marker, len(plan.applied))
        _confirm(env, plan, yes, identity, take_backup, adopt=adopt)
        if take_backup:
            path = project.backup(connection)
            size = path.stat().st_size
            click.echo(f"Backup: {_relative(path, Path.cwd())} ({size:,} bytes)")
        started = time.perf_counter()
        note = "; ".join(n for n in (note, lint_note) if n) or None
        with _Progress() as progress:
            result = project.apply(connection, plan, progress, note=note)
    count = len(result.applied)
    click.secho(
        f"Applied {_plural(count, 'migration')} to {env.key} in "
        f"{time.perf_counter() - started:.1f} s",
        fg="green",
    )
    click.echo(f"log: {_relative(result.log_path, Path.cwd())}")
    if result.status_written:
        click.echo(f"updated {_relative(project.config.status_file, Path.cwd())}: commit it")
    if result.schema_dump:
        click.echo(f"updated {_relative(result.schema_dump, Path.cwd())}: commit it")


@cli.command()
@click.argument("environment")
@click.argument("migration", required=False)
@click.option("--dry-run", is_flag=True, help="Print the plan and the rollback SQL; run nothing.")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask. A protected environment accepts it only with allow_non_interactive.",
)
@click.option("--backup", is_flag=True, help="Back the database up before rolling back.")
@_lock_wait_option
@click.pass_obj
def rollback(
    state: State,
    environment: str,
    migration: str | None,
    dry_run: bool,
    yes: bool,
    backup: bool,
    lock_wait: float,
) -> None:
    """Roll back ENVIRONMENT's last migration, or MIGRATION and every one applied after it.

    Runs each migration's rollback section (its commented-out lines) newest first, each in
    its own transaction together with the removal of its history row.
    """
    from sqlstage.safety import check_identity

    project = state.project()
    env = project.config.environment(environment)
    if not dry_run:
        _refuse_unattended(env)
    with (
        _connect(state, project, environment, changes=not dry_run) as connection,
        _locked(project, connection, lock_wait, skip=dry_run),
    ):
        plan = project.plan_rollback(connection, migration)
        for warning in plan.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
        if plan.not_applied is not None:
            click.echo(f"{plan.not_applied.name} is not applied to {env.key}: nothing to roll back")
            return
        if not plan.migrations:
            click.echo(f"{env.key} has no applied migrations: nothing to roll back")
            return
        _show_rollback_plan(plan, connection)
        if dry_run:
            for item in plan.migrations:
                click.secho(f"\n-- {item.file_name}, rollback", bold=True)
                click.echo((item.rollback or "").strip())
            click.echo("\ndry run: nothing was changed")
            return
        take_backup = backup or env.backup is not None
        if take_backup:
            connection.driver.check_backup()
        identity = check_identity(env, connection.marker, len(plan.applied))
        _confirm(env, plan, yes, identity, take_backup, ROLL_BACK)
        if take_backup:
            path = project.backup(connection)
            click.echo(f"Backup: {_relative(path, Path.cwd())} ({path.stat().st_size:,} bytes)")
        started = time.perf_counter()
        with _Progress() as progress:
            result = project.rollback(connection, plan, progress)
    click.secho(
        f"Rolled back {_plural(len(result.rolled_back), 'migration')} on {env.key} in "
        f"{time.perf_counter() - started:.1f} s",
        fg="green",
    )
    click.echo(f"log: {_relative(result.log_path, Path.cwd())}")
    if result.status_written:
        click.echo(f"updated {_relative(project.config.status_file, Path.cwd())}: commit it")
    if result.schema_dump:
        click.echo(f"updated {_relative(result.schema_dump, Path.cwd())}: commit it")


def _show_rollback_plan(plan: RollbackPlan, connection: Connection) -> None:
    env = plan.environment
    click.echo(f"Rollback plan for {env.label}: {_plural(len(plan.migrations), 'migration')}, "
               "newest first")
    width = max(len(m.name) for m in plan.migrations)
    for migration in plan.migrations:
        statements = connection.driver.statements(migration.rollback or "")
        first = statements[0].sql.splitlines()[0] if statements else ""
        count = _plural(len(statements), "statement")
        click.echo(f"  {migration.name:<{width}}  {count:<13} {_truncate(first, 60)}")


def _connect(
    state: State,
    project: Project,
    environment: str,
    verify_identity: bool = True,
    preflight: bool = True,
    changes: bool = True,
) -> Connection:
    """Connect to ENV and print where. `changes=False` for commands that change nothing:
    they never create a SQLite file that does not exist yet."""
    if preflight:  # a file error stops the run before a prompt or a connection
        project.preflight()
    connection = project.connect(
        environment, ask=state.ask_hidden, verify_identity=verify_identity, create=changes
    )
    state.secrets.extend(connection.secrets)
    click.echo(f"Connected: {connection.info.describe()}")
    for warning in connection.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    return connection


def _refuse_unattended(env: Environment) -> None:
    """A protected environment needs a human at a terminal, unless the committed config says
    otherwise: no flag alone can let an unattended process (or an AI agent) reach production."""
    if env.protected and not env.allow_non_interactive and not sys.stdin.isatty():
        raise Refused(
            f"{env.key} is protected and this run has no terminal to confirm on",
            "a person runs it in a terminal; for CI deploys set allow_non_interactive = true "
            f"in [environments.{env.key}] of sqlstage.toml and pass --yes",
        )


LONG_RUN = 20  # migrations; from here on a terminal shows a bar instead of a line each


class _Progress:
    """One line per migration; on a terminal, a long run gets a progress bar instead."""

    def __init__(self) -> None:
        from sqlstage.cli_render import Progress

        self.bar = Progress(enabled=sys.stdout.isatty())

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__()

    def migration_started(self, migration: Migration, index: int, total: int) -> None:
        if index == 1 and total >= LONG_RUN:
            self.bar.started(total)

    def migration_applied(self, migration: Migration, duration_ms: int) -> None:
        self._done(f"applied {migration.name}", duration_ms)

    def migration_rolled_back(self, migration: Migration, duration_ms: int) -> None:
        self._done(f"rolled back {migration.name}", duration_ms)

    def _done(self, text: str, duration_ms: int) -> None:
        if self.bar.active:
            self.bar.step(text)
        else:
            click.echo(f"  {text} ({duration_ms} ms)")


def _show_plan(plan: Plan, connection: Connection) -> None:
    env = plan.environment
    click.echo(f"Plan for {env.label}: {_plural(len(plan.migrations), 'migration')}")
    width = max(len(m.name) for m in plan.migrations)
    for migration in plan.migrations:
        statements = connection.driver.statements(migration.forward)
        first = statements[0].sql.splitlines()[0] if statements else ""
        count = _plural(len(statements), "statement")
        click.echo(f"  {migration.name:<{width}}  {count:<13} {_truncate(first, 60)}")
        if migration.name in plan.outside_transaction:
            click.secho(
                f"  {'':<{width}}  no transaction: each statement commits on its own",
                fg="yellow",
            )


def _show_sql(plan: Plan) -> None:
    for migration in plan.migrations:
        click.secho(f"\n-- {migration.file_name}", bold=True)
        click.echo(migration.forward.rstrip())
    click.echo()


@dataclass(frozen=True)
class _Verb:
    """How a confirmation names what it asks for: `apply 2 migrations to dev`."""

    action: str
    prep: str
    past: str
    gerund: str


APPLY = _Verb("apply", "to", "applied", "applying")
ROLL_BACK = _Verb("roll back", "on", "rolled back", "rolling back")


def _confirm(
    env: Environment,
    plan: Plan | RollbackPlan,
    yes: bool,
    identity: Identity,
    backup_planned: bool,
    verb: _Verb = APPLY,
    adopt: bool = False,
) -> None:
    from sqlstage.safety import Identity

    count = _plural(len(plan.migrations), "migration")
    nothing = f"nothing was {verb.past} {verb.prep} {env.key}"
    if identity is Identity.UNMARKED_ADOPTED and verb is APPLY:  # only apply marks
        _confirm_adoption(env, len(plan.applied), adopt)
    if env.protected:
        if env.allow_non_interactive and yes:
            return
        if not sys.stdin.isatty():
            raise Refused(
                f"{env.key} is protected: an unattended run needs --yes", "pass --yes"
            )
        if not backup_planned:
            click.secho(
                f"{env.name} is protected: take a backup before {verb.gerund} "
                '(or set backup = "pg_dump" for it in sqlstage.toml, or pass --backup).',
                fg="yellow",
            )
            if not _ask_yes_no("Backup taken?"):
                raise Refused(
                    f"no backup confirmed: {nothing}", "take a backup first, or pass --backup"
                )
        answer = click.prompt(
            f"Type '{env.key}' to {verb.action} {count} {verb.prep} {env.name}",
            default="",
            show_default=False,
        )
        if answer.strip() != env.key:
            raise Refused(f"not confirmed: {nothing}", f"type '{env.key}' exactly to go on")
        return
    if yes:
        return
    if not _ask_yes_no(f"{verb.action.capitalize()} {count} {verb.prep} {env.label}?"):
        raise Refused(f"not confirmed: {nothing}", "answer y, or pass --yes")


def _confirm_adoption(env: Environment, applied: int, adopt: bool) -> None:
    """A database with migrations but no marker may be another environment's (a production
    database adopted from a hand-made script): marking it takes a person, or --adopt; --yes
    alone never does it."""
    what = (
        f"this database has {_plural(applied, 'applied migration')} but no sqlstage "
        "environment marker, so nothing tells which environment it is"
    )
    if adopt:
        return
    if not sys.stdin.isatty():
        raise Refused(
            what, f"check the URL of '{env.key}', then pass --adopt to mark it as '{env.key}'"
        )
    click.secho(f"{what[0].upper()}{what[1:]}.", fg="yellow")
    if not _ask_yes_no(f"Is it '{env.key}' ({env.name})? Mark it as such"):
        raise Refused(f"not confirmed: nothing was applied to {env.key}")


def _ask_yes_no(question: str) -> bool:
    try:
        return bool(click.confirm(question, default=False))
    except click.Abort:
        return False


@cli.command()
@click.argument("environment")
@click.pass_obj
def check(state: State, environment: str) -> None:
    """Test ENVIRONMENT's connection and show what it is; changes nothing."""
    project = state.project()
    with _connect(
        state, project, environment, verify_identity=False, preflight=False, changes=False
    ) as connection:
        report = project.check(connection)
    info = report.info
    click.echo(f"  server    {info.product} {info.version}")
    click.echo(f"  database  {info.database}" + (f" on {info.host}" if info.host else ""))
    if info.user:
        click.echo(f"  user      {info.user}")
    if report.marker is None:
        marker = "none (marked on the first apply)"
    elif report.marker == environment:
        marker = f"'{report.marker}' (matches)"
    else:
        marker = click.style(f"'{report.marker}' (you asked for '{environment}')", fg="red")
    click.echo(f"  marker    {marker}")
    last = report.last_applied
    click.echo(
        "  applied   "
        + (f"{report.applied_count}, last {last.migration} ({_date(last.applied_at)})" if last
           else "nothing yet")
    )
    from sqlstage.safety import check_identity

    check_identity(project.config.environment(environment), report.marker, report.applied_count)


@cli.command()
@click.option(
    "--write",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Add the rules to FILE (e.g. AGENTS.md or CLAUDE.md); running it again changes nothing.",
)
@click.pass_obj
def agents(state: State, target: Path | None) -> None:
    """Print the rules for AI coding agents, or add them to FILE."""
    from sqlstage.agents import RULES, write_rules

    if target is None:
        click.echo(RULES, nl=False)
        return
    path = target if target.is_absolute() else state.directory / target
    changed = write_rules(path)
    click.echo(f"{'updated' if changed else 'unchanged'}: {_relative(path, Path.cwd())}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--live", "live", metavar="ENV", help="Compare ENV's database with status.json.")
@click.option("--write", is_flag=True, help="With --live: rewrite status.json from the database.")
@click.option("--all", "show_all", is_flag=True, help="List every migration, not just recent ones.")
@click.option(
    "--repair", "repair_file", is_flag=True,
    help="Rewrite a damaged status.json from what it still tells (no connection).",
)
@click.pass_obj
def status(
    state: State, as_json: bool, live: str | None, write: bool, show_all: bool, repair_file: bool
) -> None:
    """Where each environment stands, from status.json and the files (no connection).

    With --live ENV, connect to ENV and compare its history with status.json.
    """
    if write and not live:
        raise click.UsageError("--write goes with --live ENV")
    if repair_file and live:
        raise click.UsageError("--repair is offline; to rebuild from a database: --live ENV")
    project = state.project()
    if repair_file:
        _repair_status_file(project)
        return
    if live:
        _live_status(state, project, live, write, as_json)
        return
    report = project.status()
    if as_json:
        _print_json(
            {
                "environments": {
                    env.key: {
                        "name": env.name,
                        "applied": sorted(report.applied[env.key]),
                        "pending": list(report.pending[env.key]),
                    }
                    for env in report.environments
                },
                "warnings": list(report.warnings),
            }
        )
    else:
        _print_status_table(report, show_all)
        for warning in report.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
    from sqlstage.checksums import refuse_edited_offline

    refuse_edited_offline(project.read_status(), project.catalog)


def _repair_status_file(project: Project) -> None:
    written, unknown = project.repair_status()
    path = _relative(project.config.status_file, Path.cwd())
    if written:
        click.echo(f"rewrote {path} from what it still tells")
    elif not unknown or len(unknown) < len(project.config.environments):
        click.echo(f"{path} needed no repair")
    else:
        click.echo(f"nothing in {path} can be read")
    for key in unknown:
        click.secho(
            f"  {key}: unknown; run `sqlstage status --live {key} --write`", fg="yellow"
        )
    if written:
        click.echo(f"commit {path}")


def _live_status(state: State, project: Project, key: str, write: bool, as_json: bool) -> None:
    with _connect(state, project, key, preflight=False, changes=write) as connection:
        report = project.live_status(connection, write)
        _render_live(project, key, report, as_json)
        project.refuse_edited(connection)


def _render_live(project: Project, key: str, report: Any, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "environment": key,
                "applied": [row.migration for row in report.history],
                "differences": list(report.differences),
                "written": report.written,
            }
        )
        return
    if not report.differences:
        click.echo(f"status.json agrees with the {key} database")
    for difference in report.differences:
        click.secho(f"  {difference}", fg="yellow")
    if report.written:
        click.echo(f"rewrote {_relative(project.config.status_file, Path.cwd())} from {key}")


RECENT = 10


def _print_status_table(report: Any, show_all: bool) -> None:
    envs = [env.key for env in report.environments]
    rows = list(report.migrations)
    everywhere = [m.name for m in rows if all(m.name in report.applied[e] for e in envs)]
    hidden = 0 if show_all else max(0, len(everywhere) - RECENT)
    if hidden:  # a set: a list here made status quadratic (11 s for 10,000 files)
        hidden_names = set(everywhere[:hidden])
        rows = [m for m in rows if m.name not in hidden_names]
    width = max([len("migration"), *(len(m.name) for m in rows)])
    click.echo("  ".join([f"{'migration':<{width}}", *(f"{e:<10}" for e in envs)]).rstrip())
    if hidden:
        click.echo(f"... {hidden} earlier migrations applied everywhere (--all lists them)")
    for migration in rows:
        cells = []
        for env in envs:
            row = report.applied[env].get(migration.name)
            cell = _date(row.applied_at) if row else "pending"
            cells.append(click.style(f"{cell:<10}", fg=None if row else "yellow"))
        click.echo("  ".join([f"{migration.name:<{width}}", *cells]).rstrip())
    click.echo()
    for env in report.environments:
        pending = report.pending[env.key]
        done = len(report.applied[env.key])
        if pending:
            names = ", ".join(pending[:3]) + (", ..." if len(pending) > 3 else "")
            text = f"{done} applied, {len(pending)} pending ({names})"
        else:
            text = f"{done} applied, up to date"
        click.echo(f"{env.key:<10} {env.name}: {text}")


@cli.command()
@click.option("--from", "start", metavar="N", help="Check migrations from N on; apply earlier ones "
              "as setup.")
@click.option("--data", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              metavar="FILE", help="SQL file of representative rows to load on the way up.")
@click.option("--keep", is_flag=True, help="Leave the scratch database in place.")
@click.option("--env", "environment", metavar="ENV",
              help="Make the scratch database on ENV's server (default: dev).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def verify(
    state: State,
    start: str | None,
    data: Path | None,
    keep: bool,
    environment: str | None,
    as_json: bool,
) -> None:
    """Prove every rollback undoes its migration, on a scratch database.

    Applies each migration in order, rolls them back newest first checking that the schema
    is what it was before each one, then applies them all again. The scratch database is
    created on the dev server (or verify_url) and dropped afterwards. Exit 0 only when
    every checked migration round-trips; 1 otherwise (a migration with no rollback section
    too: start after it with --from).
    """
    from sqlstage.cli_render import Progress, render_verify, verify_as_json

    project = state.project()
    if not project.catalog.migrations:
        click.echo("no migrations to verify")
        return
    with Progress(enabled=sys.stdout.isatty() and not as_json) as progress:
        report = project.verify(start, data, keep, environment, progress, state.ask_hidden)
    if as_json:
        _print_json(verify_as_json(report))
    else:
        render_verify(report)
    outcome = report.outcome
    if not outcome.ok:
        failed = [c.migration for c in outcome.checks if c.result not in ("ok", "not checked")]
        unchecked = sum(check.result == "not checked" for check in outcome.checks)
        message = (
            f"verify: {', '.join(failed)} {'does' if len(failed) == 1 else 'do'} not round-trip"
            if failed else "verify: the schema after up, down and up again differs"
        )
        if unchecked:
            message += f" ({unchecked} earlier not checked)"
        raise MigrationFailed(
            message,
            "fix the rollback sections listed above and run `sqlstage verify` again, "
            "or check only later migrations with --from N",
        )


@cli.command()
@click.argument("environment")
@click.argument("migration")
@click.option("--mark-applied", "action", flag_value="mark-applied",
              help="Record MIGRATION as applied (after fixing a failed one by hand).")
@click.option("--forget", "action", flag_value="forget",
              help="Remove MIGRATION from the history, so it is pending again.")
@click.option("--accept", "action", flag_value="accept",
              help="Accept the edit of an applied MIGRATION (records who and when).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (not for protected environments).")
@_lock_wait_option
@click.pass_obj
def repair(
    state: State, environment: str, migration: str, action: str | None, yes: bool,
    lock_wait: float,
) -> None:
    """Put ENVIRONMENT's record of MIGRATION right; runs no migration SQL."""
    from sqlstage.repair import RepairAction

    if action is None:
        raise click.UsageError("say what to do: --mark-applied, --forget or --accept")
    project = state.project()
    env = project.config.environment(environment)
    with _connect(state, project, environment) as connection, _locked(
        project, connection, lock_wait
    ):
        _confirm_action(env, f"{action} {migration} on {env.label}", yes)
        click.echo(project.repair(connection, migration, RepairAction(action)))
    click.echo(f"updated {_relative(project.config.status_file, Path.cwd())}: commit it")


@cli.command()
@click.argument("environment")
@click.argument("migration", required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask (not for protected environments).")
@_lock_wait_option
@click.pass_obj
def baseline(
    state: State, environment: str, migration: str | None, yes: bool, lock_wait: float
) -> None:
    """Mark ENVIRONMENT as having reached MIGRATION without running anything.

    For a database made by hand or by another tool. MIGRATION defaults to the lastApplied
    that status.json records for ENVIRONMENT.
    """
    project = state.project()
    env = project.config.environment(environment)
    target = migration or _recorded_last(project, env.key)
    with _connect(state, project, environment) as connection, _locked(
        project, connection, lock_wait
    ):
        chosen = project.plan_baseline(connection, target)
        if not chosen:
            click.echo(f"{env.key} already records everything up to {target}")
            return
        click.echo(f"Baseline for {env.label}: record {_plural(len(chosen), 'migration')} "
                   "as applied, running none of them")
        for item in chosen:
            click.echo(f"  {item.name}")
        _confirm_action(env, f"record {_plural(len(chosen), 'migration')} on {env.label}", yes)
        written = project.baseline(connection, chosen)
    click.secho(f"Baselined {env.key} at {chosen[-1].name}", fg="green")
    if written:
        click.echo(f"updated {_relative(project.config.status_file, Path.cwd())}: commit it")


def _recorded_last(project: Project, key: str) -> str:
    state = project.read_status().environments.get(key)
    if state is None or not state.last_applied:
        raise click.UsageError(f"give MIGRATION: status.json records no lastApplied for {key}")
    return state.last_applied


def _confirm_action(env: Environment, what: str, yes: bool) -> None:
    """The usual confirmation: type the key for a protected environment, else [y/N]/--yes."""
    _refuse_unattended(env)
    if env.protected:
        if env.allow_non_interactive and yes:
            return
        answer = click.prompt(f"Type '{env.key}' to {what}", default="", show_default=False)
        if answer.strip() != env.key:
            raise Refused(f"not confirmed: nothing was changed on {env.key}")
        return
    if yes:
        return
    if not _ask_yes_no(f"{what[0].upper()}{what[1:]}?"):
        raise Refused(f"not confirmed: nothing was changed on {env.key}", "answer y, or pass --yes")


@cli.command()
@click.argument("environment")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def schema(state: State, environment: str, as_json: bool) -> None:
    """Print ENVIRONMENT's schema: tables, columns, constraints, indexes, views, functions...

    Read from the database's catalogs, normalised and sorted, so two databases with the same
    schema print the same text.
    """
    from sqlstage.schema import render_text

    project = state.project()
    with project.connect(environment, ask=state.ask_hidden, create=False) as connection:
        state.secrets.extend(connection.secrets)
        snap = project.schema(connection)
    if as_json:
        _print_json(snap.to_dict())
    else:
        click.echo(render_text(snap), nl=False)


@cli.command()
@click.argument("environment")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def pending(state: State, environment: str, as_json: bool) -> None:
    """List what ENVIRONMENT still lacks, from status.json (no connection)."""
    names = [m.name for m in state.project().pending(environment)]
    if as_json:
        _print_json(names)
    else:
        for name in names:
            click.echo(name)


# -- lint ---------------------------------------------------------------------------------
@cli.command()
@click.argument(
    "files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON (docs/lint.md).")
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "github"]),
    default="text",
    help="github: GitHub Actions annotations.",
)
@click.option(
    "--dialect",
    type=click.Choice(["postgresql", "sqlite"]),
    help="Lint as this dialect (default: sqlite when the environments' literal URLs are SQLite).",
)
@click.option("--rules", "list_rules", is_flag=True, help="List the rules and exit.")
@click.pass_obj
def lint(
    state: State,
    files: tuple[Path, ...],
    as_json: bool,
    output: str,
    dialect: str | None,
    list_rules: bool,
) -> None:
    """Find statements that lock or rewrite tables or break running code, with the safe SQL.

    FILES default to the migrations some environment has not applied yet (from status.json).
    Exits 1 when an error-severity finding is neither waived in the file nor down-graded in
    sqlstage.toml. Rules are PostgreSQL rules: a SQLite project gets no findings.
    """
    if list_rules:
        _print_rules()
        return
    project = _lint_project(state, bool(files))
    if files:
        from sqlstage.lint.files import read_sql_file

        migrations = [read_sql_file(path) for path in files]
    else:
        migrations = project.pending_anywhere()
    findings = project.lint(migrations, dialect or project.lint_dialect())
    paths = [_relative(m.path, Path.cwd()) for m in migrations]
    if as_json:
        _print_json(_findings_json(findings, paths, dialect or project.lint_dialect()))
    elif output == "github":
        for finding in findings:
            _print_annotation(finding)
    else:
        _print_findings(findings, verbose=True)
        click.echo(_lint_summary(findings, len(migrations)))
    if any(finding.blocking for finding in findings):
        sys.exit(1)


def _lint_project(state: State, has_files: bool) -> Project:
    """The project; with FILES and no sqlstage.toml anywhere, one with default settings."""
    from sqlstage.config import find_root, parse_config
    from sqlstage.project import Project

    if has_files:
        try:
            find_root(state.directory)
        except SqlstageError:
            return Project(parse_config(state.directory.resolve(), {}))
    return state.project()


def _print_rules() -> None:
    from sqlstage.lint import RULES

    width = max(len(rule_id) for rule_id in RULES)
    for rule in RULES.values():
        click.echo(f"{rule.id:<{width}}  {rule.severity:<7}  {rule.title}")


def _print_findings(findings: list[Finding], verbose: bool) -> None:
    for finding in findings:
        where = f"{_relative(finding.path, Path.cwd())}:{finding.line}:{finding.column}"
        if finding.waived is not None:
            click.echo(f"{where}: waived {finding.rule} ({finding.waived})")
            continue
        colour = "red" if finding.severity == "error" else "yellow"
        click.echo(f"{where}: " + click.style(f"{finding.severity} {finding.rule}", fg=colour))
        click.echo(f"  {finding.message}")
        if verbose:
            click.echo(f"  why: {finding.why}")
        click.echo("  instead:")
        for line in finding.safe.splitlines():
            click.echo(f"    {line}")


def _lint_summary(findings: list[Finding], files: int) -> str:
    errors = sum(f.blocking for f in findings)
    warnings = sum(f.severity == "warning" and f.waived is None for f in findings)
    waived = sum(f.waived is not None for f in findings)
    text = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    text += f" ({waived} waived)" if waived else ""
    return f"{text} in {_plural(files, 'file')}"


def _findings_json(findings: list[Finding], files: list[str], dialect: str) -> dict[str, Any]:
    return {
        "version": 1,
        "dialect": dialect,
        "files": files,
        "findings": [f.as_dict(_relative(f.path, Path.cwd())) for f in findings],
        "summary": {
            "errors": sum(f.blocking for f in findings),
            "warnings": sum(f.severity == "warning" and f.waived is None for f in findings),
            "waived": sum(f.waived is not None for f in findings),
        },
    }


def _print_annotation(finding: Finding) -> None:
    """One GitHub Actions workflow command: `::error file=...,line=...::message`."""
    if finding.waived is not None:
        return

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    file = prop(_relative(finding.path, Path.cwd()))
    message = data(f"{finding.message}\n\nInstead:\n{finding.safe}")
    click.echo(
        f"::{finding.severity} file={file},line={finding.line},col={finding.column},"
        f"title={prop('sqlstage ' + finding.rule)}::{message}"
    )


def _lint_plan(project: Project, plan: Plan, connection: Connection) -> list[Finding]:
    """Lint the migrations about to run, against the connected server, and show findings."""
    info = connection.info
    version = info.version.split(".")[0]
    findings = project.lint(
        plan.migrations,
        connection.driver.dialect,
        int(version) if info.product == "PostgreSQL" and version.isdigit() else None,
        plan.environment.effective_lock_timeout is not None,
    )
    if findings:
        click.echo(f"Lint: {_lint_summary(findings, len(plan.migrations))}")
        _print_findings(findings, verbose=False)
    return findings


def _lint_gate(env: Environment, findings: list[Finding], allowed: tuple[str, ...]) -> str | None:
    """Refuse a protected environment's error findings unless --allow-lint names them;
    returns the note for the log naming what was allowed."""
    from sqlstage.lint import RULES

    unknown = [rule for rule in allowed if rule not in RULES]
    if unknown:
        raise click.UsageError(f"--allow-lint {unknown[0]}: no such rule (`sqlstage lint --rules`)")
    blocking = [f for f in findings if f.blocking and f.rule not in allowed]
    if env.protected and blocking:
        first = blocking[0]
        raise Refused(
            f"{env.key} is protected and the plan has {_plural(len(blocking), 'lint error')} "
            f"({first.rule} at {first.path.name}:{first.line})",
            "write the safe form shown, waive it on the line before the statement with "
            f"'-- sqlstage:allow {first.rule} <reason>', or pass --allow-lint {first.rule}",
        )
    used = [f for f in findings if f.blocking and f.rule in allowed]
    if not used:
        return None
    return "lint allowed (--allow-lint): " + ", ".join(
        f"{f.rule} at {f.path.name}:{f.line}" for f in used
    )


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _date(value: Any) -> str:
    """`2025-12-04` from a datetime or an ISO string; `applied` when unknown."""
    if value is None:
        return "applied"
    return str(value.isoformat() if hasattr(value, "isoformat") else value)[:10]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="sqlstage")

