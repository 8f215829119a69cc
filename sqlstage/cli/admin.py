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


def target_option(command: Any) -> Any:
    return click.option(
        "--target",
        "only",
        multiple=True,
        metavar="NAME",
        help="A fleet: this target (repeatable where it makes sense).",
    )(command)


@cli.command()
@click.argument("environment")
@target_option
@json_option
@click.pass_obj
def check(state: State, environment: str, only: tuple[str, ...]) -> object:
    """Test ENVIRONMENT's connection and show what it is; changes nothing. On a fleet, a
    line per target."""
    from sqlstage import commands

    project = state.project()
    if project.config.environment(environment).is_fleet:
        return _check_fleet(state, project, environment, only)
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


def _check_fleet(
    state: State, project: Project, environment: str, only: tuple[str, ...]
) -> dict[str, object]:
    from sqlstage import commands
    from sqlstage.cli.fleet import remember_secrets
    from sqlstage.fleet_target import each, target_projects
    from sqlstage.interaction import QUIET

    ask = TerminalAsk(state)
    projects = target_projects(project, environment, only, ask.secret)
    remember_secrets(state, [p.target for p in projects])
    env = project.config.environment(environment)
    results = each(projects, lambda p: commands.check(p, environment, ask, QUIET), env.parallel)
    click.echo(f"{env.label}: a fleet of {plural(len(results), 'target')}")
    problems: list[Exception] = []
    for name, report in results:
        if isinstance(report, commands.CheckReport):
            last = report.last_applied
            where = f"last {last.migration}" if last else "nothing applied yet"
            line = f"  {name}  {report.info.product} {report.info.version}, {where}"
            if report.refusal is not None:
                problems.append(report.refusal)
                click.secho(f"{line}: {report.refusal.message}", fg="red")
            else:
                click.echo(line)
        else:
            problems.append(report)
            click.secho(f"  {name}  {report.message}", fg="red")
    document: dict[str, object] = {
        "targets": {name: _check_fields(report) for name, report in results}
    }
    keep(document)
    if problems:
        raise problems[0]
    return document


def _check_fields(report: object) -> dict[str, object]:
    """One target's entry of `check --json` on a fleet."""
    from sqlstage import commands
    from sqlstage.cli.documents import fields

    if isinstance(report, commands.CheckReport):
        return fields(report)
    return {"error": str(report)}


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
@target_option
@lock_wait_option
@json_option
@click.pass_obj
def repair(
    state: State,
    /,
    environment: str,
    migration: str | None,
    yes: bool,
    only: tuple[str, ...],
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
    project = _one_database(state, environment, only, "repair")
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
    _updated(project)
    return result


def _one_database(state: State, environment: str, only: tuple[str, ...], what: str) -> Project:
    """The project, or on a fleet the one target --target names, as a project of its own."""
    project = state.project()
    if not project.config.environment(environment).is_fleet:
        if only:
            raise click.UsageError(f"--target is for fleets; {environment} is one database")
        return project
    from sqlstage.cli.fleet import remember_secrets
    from sqlstage.fleet_target import one_target

    target = one_target(project, environment, only, what)
    remember_secrets(state, [target.target])
    return target


def _updated(project: Project) -> None:
    """The files to commit after a change of records."""
    from sqlstage.fleet_target import TargetProject

    paths = [project.config.status_file]
    if isinstance(project, TargetProject):
        from sqlstage.fleet_record import record_path

        paths.insert(0, record_path(project.fleet_config, project.key))
    for path in paths:
        click.echo(f"updated {relative(path, Path.cwd())}: commit it")


@cli.command()
@click.argument("environment")
@click.argument("migration", required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask (not for protected environments).")
@click.option(
    "--adopt",
    is_flag=True,
    help="Mark a database that has migrations but no environment marker as ENVIRONMENT.",
)
@target_option
@lock_wait_option
@json_option
@click.pass_obj
def baseline(
    state: State,
    environment: str,
    migration: str | None,
    yes: bool,
    adopt: bool,
    only: tuple[str, ...],
    lock_wait: float,
) -> object:
    """Mark ENVIRONMENT as having reached MIGRATION without running anything.

    For a database made by hand or by another tool. MIGRATION defaults to the lastApplied
    that status.json records for ENVIRONMENT.
    """
    from sqlstage import commands

    project = _one_database(state, environment, only, "baseline")
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
        _updated(project)
    return result


def _recorded_last(project: Project, key: str) -> str:
    state = project.read_status().environments.get(key)
    if state is None or not state.last_applied:
        raise click.UsageError(f"give MIGRATION: status.json records no lastApplied for {key}")
    return state.last_applied
