"""`apply` and `rollback`: the plan, the confirmation, the run, its progress."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.guard import (
    ROLL_BACK,
    confirm_run,
    connect_to,
    lock_wait_option,
    locked,
    refuse_unattended,
)
from sqlstage.cli.lint import lint_gate, lint_plan
from sqlstage.cli.render import date_of, plural, relative, truncate

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.config import Environment
    from sqlstage.migration import Migration
    from sqlstage.plan import Plan, RollbackPlan
    from sqlstage.project import ApplyResult, Connection, Project, RollbackResult


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
@lock_wait_option
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
        raise click.UsageError('--skip-rehearsal needs --reason "why"')
    from sqlstage.safety import check_identity  # here, not at the top: `--help` stays light

    project = state.project()
    env = project.config.environment(environment)
    with _run(state, project, env, dry_run, lock_wait) as connection:
        plan = project.plan_apply(connection, migration, to, allow_out_of_order)
        for warning in plan.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
        if plan.already_applied is not None:
            row = plan.already_applied
            click.echo(
                f"{row.migration} is already applied to {env.key} ({date_of(row.applied_at)})"
            )
            return
        if not plan.migrations:
            click.echo(f"{env.key} is up to date")
            if not dry_run:
                project.up_to_date(connection, plan)
            return
        _show_plan(plan, connection)
        findings = lint_plan(project, plan, connection)
        if dry_run:
            _show_sql(plan)
            click.echo("dry run: nothing was changed")
            return
        lint_note = lint_gate(env, findings, allow_lint)
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
        confirm_run(env, plan, yes, identity, take_backup, adopt=adopt)
        if take_backup:
            _backup(project, connection)
        started = time.perf_counter()
        note = "; ".join(n for n in (note, lint_note) if n) or None
        with _Progress() as progress:
            result = project.apply(
                connection, plan, progress, note=note, skip_rehearsal=skip_rehearsal
            )
    done = plural(len(result.applied), "migration")
    _report(project, f"Applied {done} to {env.key}", started, result)


@contextmanager
def _run(
    state: State, project: Project, env: Environment, dry_run: bool, lock_wait: float
) -> Iterator[Connection]:
    """The start every changing run shares: no unattended protected run, the connection,
    and the run lock (none of that lock for a dry run, which changes nothing)."""
    if not dry_run:
        refuse_unattended(env)
    with (
        connect_to(state, project, env.key, changes=not dry_run) as connection,
        locked(project, connection, lock_wait, skip=dry_run),
    ):
        yield connection


def _backup(project: Project, connection: Connection) -> None:
    path = project.backup(connection)
    click.echo(f"Backup: {relative(path, Path.cwd())} ({path.stat().st_size:,} bytes)")


def _report(
    project: Project, what: str, started: float, result: ApplyResult | RollbackResult
) -> None:
    """The run's last lines: what it did, its log, and the files to commit."""
    click.secho(f"{what} in {time.perf_counter() - started:.1f} s", fg="green")
    click.echo(f"log: {relative(result.log_path, Path.cwd())}")
    for changed, path in (
        (result.status_written, project.config.status_file),
        (result.schema_dump is not None, result.schema_dump),
    ):
        if changed and path is not None:
            click.echo(f"updated {relative(path, Path.cwd())}: commit it")


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
@lock_wait_option
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
    with _run(state, project, env, dry_run, lock_wait) as connection:
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
        confirm_run(env, plan, yes, identity, take_backup, ROLL_BACK)
        if take_backup:
            _backup(project, connection)
        started = time.perf_counter()
        with _Progress() as progress:
            result = project.rollback(connection, plan, progress)
    done = plural(len(result.rolled_back), "migration")
    _report(project, f"Rolled back {done} on {env.key}", started, result)


def _show_rollback_plan(plan: RollbackPlan, connection: Connection) -> None:
    env = plan.environment
    click.echo(
        f"Rollback plan for {env.label}: {plural(len(plan.migrations), 'migration')}, newest first"
    )
    width = max(len(m.name) for m in plan.migrations)
    for migration in plan.migrations:
        statements = connection.driver.statements(migration.rollback or "")
        first = statements[0].sql.splitlines()[0] if statements else ""
        count = plural(len(statements), "statement")
        click.echo(f"  {migration.name:<{width}}  {count:<13} {truncate(first, 60)}")


LONG_RUN = 20  # migrations; from here on a terminal shows a bar instead of a line each


class _Progress:
    """One line per migration; on a terminal, a long run gets a progress bar instead."""

    def __init__(self) -> None:
        from sqlstage.cli.progress import Progress

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
    click.echo(f"Plan for {env.label}: {plural(len(plan.migrations), 'migration')}")
    width = max(len(m.name) for m in plan.migrations)
    for migration in plan.migrations:
        statements = connection.driver.statements(migration.forward)
        first = statements[0].sql.splitlines()[0] if statements else ""
        count = plural(len(statements), "statement")
        click.echo(f"  {migration.name:<{width}}  {count:<13} {truncate(first, 60)}")
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
