"""`status` and `pending`: where each environment stands, offline or live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.guard import Screen, TerminalAsk
from sqlstage.cli.output import json_option, json_requested, keep
from sqlstage.cli.render import date_of, relative

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.project import Project


@cli.command()
@json_option
@click.option("--live", "live", metavar="ENV", help="Compare ENV's database with status.json.")
@click.option("--write", is_flag=True, help="With --live: rewrite status.json from the database.")
@click.option(
    "--forget-file-only",
    "forget",
    is_flag=True,
    help="With --write: forget, without asking, what only status.json records for ENV.",
)
@click.option(
    "--target", "only", multiple=True, metavar="NAME", help="With --live on a fleet: this target."
)
@click.option("--all", "show_all", is_flag=True, help="List every migration, not just recent ones.")
@click.option(
    "--repair",
    "repair_file",
    is_flag=True,
    help="Rewrite a damaged status.json from what it still tells (no connection).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit 5 when an environment has anything pending, failed or edited.",
)
@click.pass_obj
def status(
    state: State,
    live: str | None,
    write: bool,
    forget: bool,
    only: tuple[str, ...],
    show_all: bool,
    repair_file: bool,
    check: bool,
) -> object:
    """Where each environment stands, from status.json and the files (no connection).

    With --live ENV, connect to ENV and compare its history with status.json. With
    --check, exit 5 (after the report) unless every environment (or ENV) is up to date.
    """
    if write and not live:
        raise click.UsageError("--write goes with --live ENV")
    if forget and not write:
        raise click.UsageError("--forget-file-only goes with --live ENV --write")
    if repair_file and live:
        raise click.UsageError("--repair is offline; to rebuild from a database: --live ENV")
    project = state.project(read_only=not write and not repair_file)
    if repair_file:
        return _repair_status_file(project)
    if only and not live:
        raise click.UsageError("--target goes with --live ENV")
    if live and project.config.environment(live).is_fleet:
        return _live_fleet(state, project, live, write, only, forget)
    if live:
        return _live_status(state, project, live, write, check, forget)
    from sqlstage.report import refuse_not_up_to_date, status_report

    report = status_report(project)
    keep(report)
    if not json_requested():
        _print_status_table(report, show_all)
        for warning in report.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
    from sqlstage.checksums import refuse_edited_offline

    refuse_edited_offline(project.read_status(), project.catalog)
    if check:
        refuse_not_up_to_date(report.by_environment.values())
    return report


def _repair_status_file(project: Project) -> dict[str, object]:
    written, unknown = project.repair_status()
    path = relative(project.config.status_file, Path.cwd())
    if written:
        click.echo(f"rewrote {path} from what it still tells")
    elif not unknown or len(unknown) < len(project.config.environments):
        click.echo(f"{path} needed no repair")
    else:
        click.echo(f"nothing in {path} can be read")
    for key in unknown:
        click.secho(f"  {key}: unknown; run `sqlstage status --live {key} --write`", fg="yellow")
    if written:
        click.echo(f"commit {path}")
    return {"repaired": written, "unknown": list(unknown)}


def _live_status(
    state: State, project: Project, key: str, write: bool, check: bool, forget: bool
) -> object:
    from sqlstage import commands
    from sqlstage.report import refuse_not_up_to_date

    report = commands.live_status(
        project, key, write, TerminalAsk(state), Screen(state), forget=forget
    )
    keep(report)
    _render_live(project, key, report)
    if report.edited is not None:
        raise report.edited
    if check:
        refuse_not_up_to_date([report])
    return report


def _live_fleet(
    state: State, project: Project, key: str, write: bool, only: tuple[str, ...], forget: bool
) -> dict[str, object]:
    """Each target's database compared with its place in the fleet's record; with
    --write, the record (and status.json's entry for the fleet) rebuilt from them."""
    from sqlstage import commands
    from sqlstage.cli.documents import fields
    from sqlstage.cli.fleet import remember_secrets
    from sqlstage.errors import SqlstageError
    from sqlstage.fleet_target import each, target_projects
    from sqlstage.interaction import QUIET

    ask = TerminalAsk(state)
    projects = target_projects(project, key, only, ask.secret)
    remember_secrets(state, [p.target for p in projects])

    def live(target: Any) -> Any:
        return commands.live_status(target, key, write, ask, QUIET, forget)

    # --write may ask about each target's record: one question at a time
    parallel = 1 if write and not forget else project.config.environment(key).parallel
    results = each(projects, live, parallel)
    document: dict[str, object] = {
        "targets": {
            name: {"error": str(r)} if isinstance(r, SqlstageError) else fields(r)
            for name, r in results
        }
    }
    keep(document)
    agree = 0
    for name, r in results:
        if isinstance(r, SqlstageError):
            click.secho(f"  {name}: {r.message}", fg="red")
            continue
        agree += not r.differences
        for difference in r.differences:
            click.secho(f"  {name}: {difference}", fg="yellow")
    click.echo(f"{key}: the record agrees with {agree} of {len(results)} target databases")
    if write:
        click.echo(f"rewrote the record of {key} and status.json from its databases")
    errors = [r for _, r in results if isinstance(r, SqlstageError)]
    if errors:
        raise errors[0]
    edited = next((r.edited for _, r in results if not isinstance(r, Exception) and r.edited), None)
    if edited is not None:
        raise edited
    return document


def _render_live(project: Project, key: str, report: Any) -> None:
    if not report.differences:
        click.echo(f"status.json agrees with the {key} database")
    for difference in report.differences:
        click.secho(f"  {difference}", fg="yellow")
    if report.adoption is not None:
        click.secho(f"warning: {report.adoption.message}", fg="yellow", err=True)
        if report.adoption.fix:
            click.echo(f"  {report.adoption.fix}", err=True)
    if report.written:
        click.echo(f"rewrote {relative(project.config.status_file, Path.cwd())} from {key}")
    for other in report.unknown:
        click.secho(
            f"status.json no longer tells what {other} has: "
            f"run `sqlstage status --live {other} --write`",
            fg="yellow",
        )


RECENT = 10


def _row(first: str, cells: list[str], widths: list[int], colours: list[str | None]) -> str:
    """One table line: cells padded to their column, no trailing blanks, colour after padding."""
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
    if padded:
        padded[-1] = padded[-1].rstrip()
    styled = [click.style(text, fg=colour) for text, colour in zip(padded, colours, strict=True)]
    return "  ".join([first, *styled])


def _print_status_table(report: Any, show_all: bool) -> None:
    envs = [env.key for env in report.environments]
    rows = list(report.migrations)
    everywhere = [m.name for m in rows if all(m.name in report.applied[e] for e in envs)]
    hidden = 0 if show_all else max(0, len(everywhere) - RECENT)
    if hidden:  # a set: a list here made status quadratic (11 s for 10,000 files)
        hidden_names = set(everywhere[:hidden])
        rows = [m for m in rows if m.name not in hidden_names]
    width = max([len("migration"), *(len(m.name) for m in rows)])
    columns = [max(len("yyyy-mm-dd"), len(e)) for e in envs]
    click.echo(_row(f"{'migration':<{width}}", list(envs), columns, [None] * len(envs)))
    if hidden:
        click.echo(f"... {hidden} earlier migrations applied everywhere (--all lists them)")
    for migration in rows:
        found = [report.applied[env].get(migration.name) for env in envs]
        failed = [migration.name in report.failed.get(env, ()) for env in envs]
        partly = [report.partial.get(env, {}).get(migration.name) for env in envs]
        cells = [
            "FAILED" if bad else date_of(row.applied_at) if row else part or "pending"
            for row, bad, part in zip(found, failed, partly, strict=True)
        ]
        colours = [
            "red" if bad else None if row else "yellow"
            for row, bad in zip(found, failed, strict=True)
        ]
        click.echo(_row(f"{migration.name:<{width}}", cells, columns, colours))
    click.echo()
    for env in report.environments:
        if env.key in report.fleets:  # `pro: 58 of 60 targets at 002_x; 2 at 001_y (...)`
            click.echo(f"{env.label}: {report.fleets[env.key]}")
            continue
        pending = report.pending[env.key]
        done = len(report.applied[env.key])
        if pending:
            names = ", ".join(pending[:3]) + (", ..." if len(pending) > 3 else "")
            text = f"{done} applied, {len(pending)} pending ({names})"
        else:
            text = f"{done} applied, up to date"
        click.echo(f"{env.label}: {text}")
    for key, standing in report.by_environment.items():
        if standing.drift is not None:
            _print_drift(key, standing.drift)


def _print_drift(key: str, verdict: Any) -> None:
    """`pro: DRIFTED since 2026-12-03 (2 objects: index posts_title_idx, ...)`"""
    from sqlstage.status_file import objects_summary

    if verdict.clean:
        click.echo(f"{key}: no drift at its last check ({date_of(verdict.checked_at)})")
        return
    since = date_of(verdict.since or verdict.checked_at)
    summary = objects_summary(verdict.objects)
    click.secho(f"{key}: DRIFTED since {since} ({summary})", fg="red")


@cli.command()
@click.argument("environment")
@json_option
@click.option(
    "--exit-code",
    "exit_code",
    is_flag=True,
    help="Exit 5 when anything is pending, failed or edited (0 only when up to date).",
)
@click.option(
    "--target", "only", multiple=True, metavar="NAME", help="A fleet: what these targets lack."
)
@click.pass_obj
def pending(state: State, environment: str, exit_code: bool, only: tuple[str, ...]) -> object:
    """List what ENVIRONMENT still lacks, from status.json (no connection).

    A migration that stopped midway is listed as `NAME (failed)`: it is not pending, it
    is blocked until `sqlstage repair`. On a fleet, what some target lacks; with --target,
    what those targets lack, from the fleet's record.
    """
    from sqlstage.report import refuse_not_up_to_date, status_report

    project = state.project(read_only=True)
    if only:
        from sqlstage.fleet_record import pending_on

        names = pending_on(project.config, project.catalog, environment, only)
        keep({"pending": names})
        if not json_requested():
            for name in names:
                click.echo(name)
        return {"pending": names}
    missing = project.missing_status()
    if missing:
        click.secho(f"warning: {missing}", fg="yellow", err=True)
    key = project.config.environment(environment).key  # unknown: the error naming it
    report = status_report(project).by_environment[key]
    keep(report)
    if not json_requested():
        for name in report.pending:
            click.echo(name)
        for name in report.failed:
            click.echo(f"{name} (failed)")
    if exit_code:
        refuse_not_up_to_date([report])
    return report
