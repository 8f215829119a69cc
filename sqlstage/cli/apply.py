"""`apply` and `rollback`: flags in, the library's run, its result on screen."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.guard import Screen, TerminalAsk, lock_wait_option
from sqlstage.cli.output import json_option, keep
from sqlstage.cli.render import date_of, plural, relative

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.commands import ApplyOptions, RollbackOptions, RunResult
    from sqlstage.plan import Plan
    from sqlstage.project import Project


def fleet_options(command: Any) -> Any:
    """--target, --max-failures, --resume: for an environment that is a fleet."""
    for option in reversed(
        [
            click.option(
                "--target",
                "only",
                multiple=True,
                metavar="NAME",
                help="A fleet: only this target (repeatable).",
            ),
            click.option(
                "--max-failures",
                type=click.IntRange(min=0),
                default=0,
                metavar="K",
                help="A fleet: go on starting targets until more than K have failed.",
            ),
            click.option(
                "--resume",
                is_flag=True,
                help="A fleet: continue a stopped run, its failed targets first.",
            ),
        ]
    ):
        command = option(command)
    return command


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
@click.option(
    "--allow-drift",
    is_flag=True,
    help="Apply although the environment drifted from its history (needs --reason).",
)
@click.option(
    "--reason", metavar="TEXT", help="Why the rehearsal or drift check is set aside (logged)."
)
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
    help="Apply despite this lint rule's errors (logged); once per rule.",
)
@click.option(
    "--not-from-migrations",
    is_flag=True,
    help="The database's tables (it has no sqlstage history) are not from these migrations: "
    "apply them all instead of refusing (see `sqlstage baseline`).",
)
@fleet_options
@lock_wait_option
@json_option
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
    allow_drift: bool,
    reason: str | None,
    adopt: bool,
    allow_lint: tuple[str, ...],
    not_from_migrations: bool,
    only: tuple[str, ...],
    max_failures: int,
    resume: bool,
    lock_wait: float,
) -> object:
    """Apply pending migrations to ENVIRONMENT: all of them, exactly MIGRATION (the next
    pending one), or those up to --to. On a fleet, to each of its targets.

    \b
      sqlstage apply dev          every pending migration
      sqlstage apply dev 5        exactly 005, which must be the next pending one
      sqlstage apply dev --to 5   the pending ones up to and including 005

    (`rollback dev 5` is not its mirror: it rolls back 005 and everything after it.)
    """
    from sqlstage import commands

    if migration and to:
        raise click.UsageError("give MIGRATION or --to, not both")
    if skip_rehearsal and not (reason and reason.strip()):
        raise click.UsageError('--skip-rehearsal needs --reason "why"')
    _drift_reason(allow_drift, reason)
    options = commands.ApplyOptions(
        target=migration,
        to=to,
        dry_run=dry_run,
        yes=yes,
        allow_out_of_order=allow_out_of_order,
        backup=backup,
        skip_rehearsal=reason if skip_rehearsal else None,
        adopt=adopt,
        allow_lint=allow_lint,
        lock_wait=lock_wait,
        allow_drift=reason if allow_drift else None,
        not_from_migrations=not_from_migrations,
    )
    project = state.project()
    started = time.perf_counter()
    if project.config.environment(environment).is_fleet:
        return _fleet_run(state, project, environment, options, (only, max_failures, resume))
    if only or max_failures or resume:
        raise click.UsageError("--target, --max-failures and --resume are for fleets")
    with _screen(state, lock_wait) as screen:
        keep({"done": screen.finished})  # what committed, if a later migration fails
        result = commands.apply(project, environment, options, TerminalAsk(state), screen)
    plan = result.plan
    if plan.already_applied is not None:
        row = plan.already_applied
        key = plan.environment.key
        click.echo(f"{row.migration} is already applied to {key} ({date_of(row.applied_at)})")
        return result
    if dry_run:
        if not plan.empty:
            _show_sql(plan)
            for refusal in plan.refusals:
                click.secho(f"would refuse: {refusal}", fg="yellow")
        click.echo("dry run: nothing was changed")
        return result
    if plan.empty:
        return result
    done = plural(len(result.done), "migration")
    _report(project, f"Applied {done} to {plan.environment.key}", started, result)
    return result


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
@click.option(
    "--allow-drift",
    is_flag=True,
    help="Roll back although the environment drifted from its history (needs --reason).",
)
@click.option("--reason", metavar="TEXT", help="Why the drift check is set aside (logged).")
@fleet_options
@lock_wait_option
@json_option
@click.pass_obj
def rollback(
    state: State,
    environment: str,
    migration: str | None,
    dry_run: bool,
    yes: bool,
    backup: bool,
    allow_drift: bool,
    reason: str | None,
    only: tuple[str, ...],
    max_failures: int,
    resume: bool,
    lock_wait: float,
) -> object:
    """Roll back ENVIRONMENT's last migration, or MIGRATION and every one applied after it.

    \b
      sqlstage rollback dev       the last applied migration only
      sqlstage rollback dev 2     002 and every migration applied after it, newest
                                  first: dev is left as it was before 002 ran

    Unlike `apply dev 2`, which applies exactly 002, MIGRATION here is where the rollback
    stops, included. Runs each migration's rollback section (its commented-out lines)
    newest first, each in its own transaction together with the removal of its history row.
    """
    from sqlstage import commands

    _drift_reason(allow_drift, reason)
    options = commands.RollbackOptions(
        migration, dry_run, yes, backup, lock_wait, reason if allow_drift else None
    )
    project = state.project()
    started = time.perf_counter()
    if project.config.environment(environment).is_fleet:
        return _fleet_run(state, project, environment, options, (only, max_failures, resume))
    if only or max_failures or resume:
        raise click.UsageError("--target, --max-failures and --resume are for fleets")
    with _screen(state, lock_wait) as screen:
        keep({"done": screen.finished})  # what committed, if a later migration fails
        result = commands.rollback(project, environment, options, TerminalAsk(state), screen)
    plan = result.plan
    if plan.not_applied is not None or plan.empty:
        return result
    if dry_run:
        for step in plan.steps:
            click.secho(f"\n-- {step.migration.file_name}, rollback", bold=True)
            click.echo((step.migration.rollback or "").strip())
        click.echo("\ndry run: nothing was changed")
        return result
    done = plural(len(result.done), "migration")
    _report(project, f"Rolled back {done} on {plan.environment.key}", started, result)
    return result


def _drift_reason(allow_drift: bool, reason: str | None) -> None:
    if allow_drift and not (reason and reason.strip()):
        raise click.UsageError('--allow-drift needs --reason "why"')


def _fleet_run(
    state: State,
    project: Project,
    environment: str,
    options: ApplyOptions | RollbackOptions,
    fleet_flags: tuple[tuple[str, ...], int, bool],
) -> dict[str, Any]:
    """apply or rollback on every target of a fleet (sqlstage.fleet)."""
    from sqlstage import fleet
    from sqlstage.cli.fleet import FleetScreen, report
    from sqlstage.commands import ApplyOptions

    only, max_failures, resume = fleet_flags
    started = time.perf_counter()
    screen = FleetScreen(state)
    settings = fleet.FleetOptions(only=only, max_failures=max_failures, resume=resume)
    try:
        if isinstance(options, ApplyOptions):
            result = fleet.apply(
                project, environment, options, settings, TerminalAsk(state), screen
            )
        else:
            result = fleet.rollback(
                project, environment, options, settings, TerminalAsk(state), screen
            )
    finally:
        screen.close()
    if options.dry_run:
        refusal = fleet.refused_everywhere(result.plan)
        confirmation = result.plan.confirmation
        if confirmation is not None and isinstance(options, ApplyOptions):
            _show_sql(confirmation)
        if refusal is not None:
            click.secho(f"would refuse: {refusal}", fg="yellow")
        click.echo("dry run: nothing was changed")
        return screen.document
    if result.plan.to_run:
        report(project, result, started)
    return screen.document


@contextmanager
def _screen(state: State, lock_wait: float) -> Iterator[Screen]:
    screen = Screen(state, lock_wait)
    try:
        yield screen
    finally:
        screen.close()


def _report(project: Project, what: str, started: float, result: RunResult) -> None:
    """The run's last lines: what it did, its log, and the files to commit."""
    click.secho(f"{what} in {time.perf_counter() - started:.1f} s", fg="green")
    if result.log_path is not None:
        click.echo(f"log: {relative(result.log_path, Path.cwd())}")
    for changed, path in (
        (result.status_written, project.config.status_file),
        (result.schema_dump is not None, result.schema_dump),
    ):
        if changed and path is not None:
            click.echo(f"updated {relative(path, Path.cwd())}: commit it")


def _show_sql(plan: Plan) -> None:
    for step in plan.steps:
        click.secho(f"\n-- {step.migration.file_name}", bold=True)
        click.echo(step.migration.forward.rstrip())
    click.echo()
