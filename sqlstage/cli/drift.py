"""`drift` and `diff`: a live schema against its history, two live schemas against each other.

With --json, stdout holds only the JSON; every human line goes to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sqlstage.cli.app import State, cli
from sqlstage.cli.guard import Screen, TerminalAsk
from sqlstage.cli.render import plural, print_json
from sqlstage.errors import DriftFound

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.drift.check import Drifted, DriftReport
    from sqlstage.drift.compare import EnvironmentsDiff
    from sqlstage.session import Session


class _Screen(Screen):
    """The connection line on stderr, so that stdout can hold JSON alone."""

    def connected(self, session: Session) -> None:
        self.state.secrets.extend(session.secrets)
        self.key = session.environment.key
        click.echo(f"Connected: {session.info.describe()}", err=True)


@cli.command()
@click.argument("environment")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (human lines go to stderr).")
@click.pass_obj
def drift(state: State, environment: str, as_json: bool) -> None:
    """Compare ENVIRONMENT's live schema with the schema its history says it has.

    The SQL its history rows recorded is replayed, in applied order, on a scratch database
    (on its own server, or verify_url), and the two schemas are compared. Pending
    migrations are not drift. Exit 0 no drift, 1 drift, 5 the check could not finish
    (another run holds the database, the replay failed).
    """
    from sqlstage import commands

    project = state.project()
    report = commands.drift(project, environment, TerminalAsk(state), _Screen(state))
    if as_json:
        print_json(report.to_dict())
    _render(report, err=as_json)
    if report.drifted:
        raise DriftFound(
            f"{environment} has drifted from what its history says ({report.summary()})",
            "bring it back by hand (the fixes above are suggestions, never run) or record "
            "the change in a migration",
        )


def _render(report: DriftReport, err: bool) -> None:
    from sqlstage.drift.check import render_lines

    env = report.environment
    replayed = plural(report.replayed, "migration")
    if not report.drifted:
        click.secho(
            f"{env}: no drift; its live schema is what its {replayed} made", fg="green", err=err
        )
    else:
        click.echo(f"{env}: live schema against what its {replayed} made:", err=err)
        click.echo(render_lines(report), err=err)
    if report.pending:
        names = ", ".join(report.pending[:5]) + (", ..." if len(report.pending) > 5 else "")
        click.echo(f"pending (not drift): {names}", err=err)


@cli.command(name="diff")
@click.argument("left", metavar="ENV1")
@click.argument("right", metavar="ENV2")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (human lines go to stderr).")
@click.pass_obj
def diff_command(state: State, left: str, right: str, as_json: bool) -> None:
    """Compare the live schemas of ENV1 and ENV2.

    Differences are split into those explained by migrations one has applied and the other
    has not, and unexplained ones (drift in one of them). Exit 0 when every difference is
    explained, 1 when some are not, 5 when the comparison could not finish.
    """
    from sqlstage import commands

    project = state.project()
    result = commands.diff(project, left, right, TerminalAsk(state), _Screen(state))
    if as_json:
        print_json(result.to_dict())
    _render_diff(result, err=as_json)
    if result.unexplained:
        raise DriftFound(
            f"{left} and {right} differ in {plural(len(result.unexplained), 'object')} that no "
            "migration explains",
            f"see which with `sqlstage drift {left}` and `sqlstage drift {right}`",
        )


def _render_diff(result: EnvironmentsDiff, err: bool) -> None:
    left, right = result.left, result.right
    click.echo(f"{left} -> {right} (each line: as in {left} -> as in {right})", err=err)
    for key, names in ((left, result.only_left), (right, result.only_right)):
        if names:
            click.echo(f"only {key} has applied: {', '.join(names)}", err=err)
    if result.explained:
        click.echo(f"explained by those migrations ({len(result.explained)}):", err=err)
        _lines([d for d in result.explained], err)
    if result.unexplained:
        click.secho(
            f"unexplained: drift ({len(result.unexplained)}):", fg="yellow", bold=True, err=err
        )
        for item in result.unexplained:
            where = " and ".join(item.drift_in) or "neither history"
            _lines([item.drifted], err, suffix=f"   [drift in {where}]")
    if not result.explained and not result.unexplained:
        click.secho(f"{left} and {right} have the same schema", fg="green", err=err)


def _lines(items: list[Drifted], err: bool, suffix: str = "") -> None:
    for item in items:
        text = item.difference.text.splitlines()
        click.echo(f"  {text[0]}{suffix}", err=err)
        for line in text[1:]:
            click.echo(f"  {line}", err=err)
