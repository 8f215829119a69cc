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


@cli.command()
@click.argument("environment")
@json_option
@click.pass_obj
def drift(state: State, environment: str) -> object:
    """Compare ENVIRONMENT's live schema with the schema its history says it has.

    The SQL its history rows recorded is replayed, in applied order, on a scratch database
    (on its own server, or verify_url), and the two schemas are compared. Pending
    migrations are not drift. Exit 0 no drift, 1 drift, 5 the check could not finish
    (another run holds the database, the replay failed).
    """
    from sqlstage import commands

    project = state.project()
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
