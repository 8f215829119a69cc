"""`status` and `pending`: where each environment stands, offline or live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.guard import Screen, TerminalAsk
from sqlstage.cli.render import date_of, print_json, relative

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.project import Project


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--live", "live", metavar="ENV", help="Compare ENV's database with status.json.")
@click.option("--write", is_flag=True, help="With --live: rewrite status.json from the database.")
@click.option("--all", "show_all", is_flag=True, help="List every migration, not just recent ones.")
@click.option(
    "--repair",
    "repair_file",
    is_flag=True,
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
    from sqlstage.report import status_report

    report = status_report(project)
    if as_json:
        print_json(
            {
                "environments": {
                    env.key: {
                        "name": env.name,
                        "applied": sorted(report.applied[env.key]),
                        "pending": list(report.pending[env.key]),
                        **(
                            {"drift": report.drift[env.key].to_json()}
                            if env.key in report.drift
                            else {}
                        ),
                    }
                    for env in report.environments
                },
                "warnings": [*report.warnings, *report.edited],
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


def _live_status(state: State, project: Project, key: str, write: bool, as_json: bool) -> None:
    from sqlstage import commands

    report = commands.live_status(project, key, write, TerminalAsk(state), Screen(state))
    _render_live(project, key, report, as_json)
    if report.edited is not None:
        raise report.edited


def _render_live(project: Project, key: str, report: Any, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "environment": key,
                "applied": [row.migration for row in report.history],
                "differences": list(report.differences),
                "written": report.written,
                "needsRebuild": list(report.unknown),
            }
        )
        return
    if not report.differences:
        click.echo(f"status.json agrees with the {key} database")
    for difference in report.differences:
        click.secho(f"  {difference}", fg="yellow")
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
        cells = [
            "FAILED" if bad else date_of(row.applied_at) if row else "pending"
            for row, bad in zip(found, failed, strict=True)
        ]
        colours = [
            "red" if bad else None if row else "yellow"
            for row, bad in zip(found, failed, strict=True)
        ]
        click.echo(_row(f"{migration.name:<{width}}", cells, columns, colours))
    click.echo()
    for env in report.environments:
        pending = report.pending[env.key]
        done = len(report.applied[env.key])
        if pending:
            names = ", ".join(pending[:3]) + (", ..." if len(pending) > 3 else "")
            text = f"{done} applied, {len(pending)} pending ({names})"
        else:
            text = f"{done} applied, up to date"
        click.echo(f"{env.label}: {text}")
    for env in report.environments:
        verdict = report.drift.get(env.key)
        if verdict is not None:
            _print_drift(env.key, verdict)


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
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_obj
def pending(state: State, environment: str, as_json: bool) -> None:
    """List what ENVIRONMENT still lacks, from status.json (no connection)."""
    names = [m.name for m in state.project().pending(environment)]
    if as_json:
        print_json(names)
    else:
        for name in names:
            click.echo(name)
