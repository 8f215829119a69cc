"""Commands that set a project up or put its records right.

init, new, check, agents, repair, baseline.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.guard import Screen, TerminalAsk, lock_wait_option
from sqlstage.cli.output import json_option, keep
from sqlstage.cli.render import date_of, plural, relative

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.migration import Migration
    from sqlstage.project import Project


@cli.command()
@click.option(
    "--example", is_flag=True, help="Also write three example migrations and a SQLite dev."
)
@json_option
@click.pass_obj
def init(state: State, example: bool) -> object:
    """Create sqlstage.toml, the migrations folder and status.json."""
    from sqlstage.scaffold import init_project

    state.directory.mkdir(parents=True, exist_ok=True)
    root = state.directory.resolve()
    existed = {name: (root / name).exists() for name in (".gitignore",)}
    written: dict[str, list[str]] = {"created": [], "updated": []}
    for path in init_project(root, example):
        verb = "updated" if existed.get(path.name) and path.parent == root else "created"
        written[verb].append(str(path))
        click.echo(f"{verb} {relative(path, root)}")
    if example:
        here = state.directory.resolve() == Path.cwd().resolve()
        where = "" if here else f"-C {relative(state.directory, Path.cwd())} "
        click.echo(f"next: sqlstage {where}apply dev --yes && sqlstage {where}status")
    return written


@cli.command()
@click.argument("name")
@json_option
@click.pass_obj
def new(state: State, name: str) -> object:
    """Write the next NNN_NAME.sql from the template and print its path."""
    from sqlstage.scaffold import new_migration

    project = state.project()
    path = new_migration(project.config.migrations_dir, name)
    click.echo(relative(path, Path.cwd()))
    return {"path": str(path)}


@cli.command()
@click.argument("environment")
@json_option
@click.pass_obj
def check(state: State, environment: str) -> object:
    """Test ENVIRONMENT's connection and show what it is; changes nothing."""
    from sqlstage import commands

    project = state.project()
    report = commands.check(project, environment, TerminalAsk(state), Screen(state))
    keep(report)
    info = report.info
    click.echo(f"  server    {info.product} {info.version}")
    click.echo(f"  database  {info.database}" + (f" on {info.host}" if info.host else ""))
    if info.user:
        click.echo(f"  user      {info.user}")
    marker = report.marker
    if not marker.present and report.applied_count:
        shown = click.style(
            "none, though it has migrations: `apply` needs --adopt (or a person at a "
            "terminal) to mark it",
            fg="yellow",
        )
    elif not marker.present:
        shown = "none (marked on the first apply)"
    elif report.refusal is None:
        shown = f"'{marker.environment}' (matches)" + (", protected" if marker.protected else "")
    else:
        shown = click.style(f"'{marker.environment}' (you asked for '{environment}')", fg="red")
    click.echo(f"  marker    {shown}")
    last = report.last_applied
    click.echo(
        "  applied   "
        + (
            f"{report.applied_count}, last {last.migration} ({date_of(last.applied_at)})"
            if last
            else "nothing yet"
        )
    )
    if report.adoption is not None:
        click.secho(f"  history   {report.adoption.message}", fg="yellow")
        if report.adoption.fix:
            click.echo(f"            {report.adoption.fix}")
    if report.refusal is not None:
        raise report.refusal
    return report


@cli.command()
@click.option(
    "--write",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Add the rules to FILE (e.g. AGENTS.md or CLAUDE.md); running it again changes nothing.",
)
@json_option
@click.pass_obj
def agents(state: State, target: Path | None) -> object:
    """Print the rules for AI coding agents, or add them to FILE."""
    from sqlstage.agents import RULES, write_rules

    if target is None:
        click.echo(RULES, nl=False)
        return {"rules": RULES}
    path = target if target.is_absolute() else state.directory / target
    changed = write_rules(path)
    click.echo(f"{'updated' if changed else 'unchanged'}: {relative(path, Path.cwd())}")
    return {"file": str(path), "changed": changed}


REPAIR_ACTIONS = {
    "mark-applied": "Record MIGRATION as applied (after fixing a failed one by hand).",
    "forget": "Remove MIGRATION from the history, so it is pending again.",
    "accept": "Accept the edit of an applied MIGRATION (records who and when).",
    "resume": "Run the statements a migration that stopped midway (no transaction) did not get to.",
    "rename": "Make the history follow MIGRATION's file, renamed after it ran (same number "
    "and SQL).",
    "remark": "Mark the database as ENVIRONMENT though it is marked as another one (a dev "
    "database restored from a production dump); asks you to type ENVIRONMENT. No MIGRATION.",
}


def _action_options(command: Any) -> Any:
    for action, text in reversed(REPAIR_ACTIONS.items()):
        command = click.option(f"--{action}", action.replace("-", "_"), is_flag=True, help=text)(
            command
        )
    return command


@cli.command()
@click.argument("environment")
@click.argument("migration", required=False)
@_action_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask (not for protected environments).")
@lock_wait_option
@json_option
@click.pass_obj
def repair(
    state: State,
    /,
    environment: str,
    migration: str | None,
    yes: bool,
    lock_wait: float,
    **flags: bool,
) -> object:
    """Put ENVIRONMENT's record of MIGRATION right; runs no migration SQL (but --resume,
    which runs the statements a migration stopped midway outside a transaction did not)."""
    from sqlstage import commands
    from sqlstage.repair import RepairAction

    given = [action for action in REPAIR_ACTIONS if flags[action.replace("-", "_")]]
    if len(given) != 1:
        said = "say what to do" if not given else f"--{' and --'.join(given)} do not go together"
        raise click.UsageError(f"{said}: one of --{', --'.join(REPAIR_ACTIONS)}")
    project = state.project()
    with closing(Screen(state, lock_wait)) as screen:
        if given[0] == "remark":
            if migration is not None:
                raise click.UsageError("--remark marks the database: it takes no MIGRATION")
            done = commands.remark(project, environment, TerminalAsk(state), screen)
            click.echo(done)
            return {"done": done}
        if migration is None:
            raise click.UsageError(f"--{given[0]} needs MIGRATION")
        result = commands.repair(
            project,
            environment,
            migration,
            RepairAction(given[0]),
            yes,
            lock_wait,
            TerminalAsk(state),
            screen,
        )
    click.echo(result.done)
    click.echo(f"updated {relative(project.config.status_file, Path.cwd())}: commit it")
    return result


@cli.command()
@click.argument("environment")
@click.argument("migration", required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask (not for protected environments).")
@click.option(
    "--adopt",
    is_flag=True,
    help="Mark a database that has migrations but no environment marker as ENVIRONMENT.",
)
@lock_wait_option
@json_option
@click.pass_obj
def baseline(
    state: State,
    environment: str,
    migration: str | None,
    yes: bool,
    adopt: bool,
    lock_wait: float,
) -> object:
    """Mark ENVIRONMENT as having reached MIGRATION without running anything.

    For a database made by hand or by another tool. MIGRATION defaults to the lastApplied
    that status.json records for ENVIRONMENT.
    """
    from sqlstage import commands

    project = state.project()
    env = project.config.environment(environment)
    target = migration or _recorded_last(project, env.key)

    def show(chosen: list[Migration]) -> None:
        click.echo(
            f"Baseline for {env.label}: record {plural(len(chosen), 'migration')} "
            "as applied, running none of them"
        )
        for item in chosen:
            click.echo(f"  {item.name}")

    result = commands.baseline(
        project,
        environment,
        target,
        yes,
        adopt,
        lock_wait,
        TerminalAsk(state),
        Screen(state, lock_wait),
        show,
    )
    if not result.migrations:
        click.echo(f"{env.key} already records everything up to {target}")
        return result
    click.secho(f"Baselined {env.key} at {result.migrations[-1].name}", fg="green")
    if result.status_written:
        click.echo(f"updated {relative(project.config.status_file, Path.cwd())}: commit it")
    return result


def _recorded_last(project: Project, key: str) -> str:
    state = project.read_status().environments.get(key)
    if state is None or not state.last_applied:
        raise click.UsageError(f"give MIGRATION: status.json records no lastApplied for {key}")
    return state.last_applied
