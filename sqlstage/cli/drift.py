"""`drift` and `diff`: a live schema against its history, two live schemas against each other.

With --json (sqlstage.cli.output), stdout holds only the document; every line printed here
goes to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.guard import Screen, TerminalAsk
from sqlstage.cli.output import json_option, keep
from sqlstage.cli.render import plural
from sqlstage.errors import DriftFound

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.drift.check import Drifted, DriftReport
    from sqlstage.drift.compare import EnvironmentsDiff
    from sqlstage.project import Project


@cli.command()
@click.argument("environment")
@click.option(
    "--target", "only", multiple=True, metavar="NAME", help="A fleet: this target (repeatable)."
)
@json_option
@click.pass_obj
def drift(state: State, environment: str, only: tuple[str, ...]) -> object:
    """Compare ENVIRONMENT's live schema with the schema its history says it has.

    The SQL its history rows recorded is replayed, in applied order, on a scratch database
    (on its own server, or verify_url), and the two schemas are compared. Pending
    migrations are not drift. Exit 0 no drift, 1 drift, 5 the check could not finish
    (another run holds the database, the replay failed).
    """
    from sqlstage import commands

    project = state.project()
    if project.config.environment(environment).is_fleet:
        return _drift_fleet(state, project, environment, only)
    report = commands.drift(project, environment, TerminalAsk(state), Screen(state))
    keep(report)
    _render(report)
    if report.drifted:
        raise DriftFound(
            f"{environment} has drifted from what its history says ({report.summary()})",
            "bring it back by hand (the fixes above are suggestions, never run) or record "
            "the change in a migration",
        )
    return report


def _drift_fleet(
    state: State, project: Project, environment: str, only: tuple[str, ...]
) -> dict[str, object]:
    """A line per target (and a drifted one's differences); exit 1 when one drifted, else
    the first target without a verdict's exit code (busy or a failed replay: 6)."""
    from sqlstage import fleet
    from sqlstage.cli.fleet import remember_secrets
    from sqlstage.drift.check import render_lines
    from sqlstage.fleet_target import targets

    ask = TerminalAsk(state)
    env = project.config.environment(environment)
    remember_secrets(state, targets(project.config, env, ask.secret, only))
    found = fleet.drift(project, environment, only, ask)
    document = found.to_dict()
    keep(document)
    click.echo(f"{env.label}: drift of {plural(len(found.results), 'target')}")
    for name, report in found.results:
        if isinstance(report, Exception):
            click.secho(f"  {name}: no verdict: {report}", fg="yellow")
        elif report.drifted:
            click.secho(f"  {name}: drifted ({report.summary()})", fg="red")
            click.echo("\n".join(f"  {line}" for line in render_lines(report).splitlines()))
        else:
            click.echo(f"  {name}: no drift")
    drifted, incomplete = found.drifted, found.incomplete
    if drifted:
        names = ", ".join(name for name, _ in drifted[:5]) + (", ..." if len(drifted) > 5 else "")
        raise DriftFound(
            f"{environment}: {len(drifted)} of {plural(len(found.results), 'target')} drifted "
            f"from what their history says ({names})",
            "bring them back by hand (the fixes above are suggestions, never run) or record "
            "the change in a migration",
        )
    if incomplete:
        raise incomplete[0][1]
    click.secho(
        f"{environment}: no drift on any of {plural(len(found.results), 'target')}", fg="green"
    )
    return document


def _render(report: DriftReport) -> None:
    from sqlstage.drift.check import render_lines

    env = report.environment
    replayed = plural(report.replayed, "migration")
    if not report.drifted:
        click.secho(f"{env}: no drift; its live schema is what its {replayed} made", fg="green")
    else:
        click.echo(f"{env}: live schema against what its {replayed} made:")
        click.echo(render_lines(report))
    if report.pending:
        names = ", ".join(report.pending[:5]) + (", ..." if len(report.pending) > 5 else "")
        click.echo(f"pending (not drift): {names}")


@cli.command(name="diff")
@click.argument("left", metavar="ENV1")
@click.argument("right", metavar="ENV2")
@json_option
@click.pass_obj
def diff_command(state: State, left: str, right: str) -> object:
    """Compare the live schemas of ENV1 and ENV2.

    Differences are split into those explained by migrations one has applied and the other
    has not, and unexplained ones (drift in one of them). Exit 0 when every difference is
    explained, 1 when some are not, 5 when the comparison could not finish.
    """
    from sqlstage import commands

    project = state.project()
    result = commands.diff(project, left, right, TerminalAsk(state), Screen(state))
    keep(result)
    _render_diff(result)
    if result.unexplained:
        raise DriftFound(
            f"{left} and {right} differ in {plural(len(result.unexplained), 'object')} that no "
            "migration explains",
            f"see which with `sqlstage drift {left}` and `sqlstage drift {right}`",
        )
    return result


def _render_diff(result: EnvironmentsDiff) -> None:
    left, right = result.left, result.right
    click.echo(f"{left} -> {right} (each line: as in {left} -> as in {right})")
    for key, names in ((left, result.only_left), (right, result.only_right)):
        if names:
            click.echo(f"only {key} has applied: {', '.join(names)}")
    if result.explained:
        click.echo(f"explained by those migrations ({len(result.explained)}):")
        _lines(list(result.explained))
    if result.unexplained:
        click.secho(f"unexplained: drift ({len(result.unexplained)}):", fg="yellow", bold=True)
        for item in result.unexplained:
            where = " and ".join(item.drift_in) or "neither history"
            _lines([item.drifted], suffix=f"   [drift in {where}]")
    if not result.explained and not result.unexplained:
        click.secho(f"{left} and {right} have the same schema", fg="green")


def _lines(items: list[Drifted], suffix: str = "") -> None:
    for item in items:
        text = item.difference.text.splitlines()
        click.echo(f"  {text[0]}{suffix}")
        for line in text[1:]:
            click.echo(f"  {line}")
