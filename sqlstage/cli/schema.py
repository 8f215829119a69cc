"""`schema` and `verify`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sqlstage.cli.app import State, cli, plain
from sqlstage.cli.guard import Screen, TerminalAsk
from sqlstage.cli.output import json_option, json_requested
from sqlstage.cli.output import keep as keep_value
from sqlstage.errors import MigrationFailed

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    pass


@cli.command()
@click.option(
    "--from", "start", metavar="N", help="Check migrations from N on; apply earlier ones as setup."
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    metavar="FILE",
    help="SQL file of representative rows to load on the way up.",
)
@click.option("--keep", is_flag=True, help="Leave the scratch database in place.")
@click.option(
    "--env",
    "environment",
    metavar="ENV",
    help="Make the scratch database on ENV's server (default: dev).",
)
@click.option("--strict", is_flag=True, help="A migration declared irreversible fails verify too.")
@json_option
@click.pass_obj
def verify(
    state: State,
    start: str | None,
    data: Path | None,
    keep: bool,
    environment: str | None,
    strict: bool,
) -> object:
    """Prove every rollback undoes its migration, on a scratch database.

    Each migration is judged on its own, from the state just before it: applied, rolled
    back, the schema compared with what it was before, then applied for good. The scratch
    database is created on the dev server (or verify_url) and dropped afterwards. Exit 0
    only when every checked migration round-trips (one declared irreversible passes unless
    --strict); 1 otherwise (a migration with no rollback section too).
    """
    from sqlstage.cli.progress import Progress, render_verify

    project = state.project()
    if not project.catalog.migrations:
        click.echo("no migrations to verify")
        return {"ok": True, "migrations": []}
    as_json = json_requested()
    with Progress(enabled=sys.stdout.isatty() and not as_json and not plain()) as progress:
        from sqlstage import commands

        report = commands.verify(
            project, start, data, keep, environment, progress, TerminalAsk(state), strict
        )
    keep_value(report)
    if not as_json:
        render_verify(report)
    outcome = report.outcome
    if not outcome.ok:
        failed = [
            c.migration
            for c in outcome.checks
            if not c.passed(outcome.strict) and c.result != "not checked"
        ]
        unchecked = sum(check.result == "not checked" for check in outcome.checks)
        message = (
            f"verify: {', '.join(failed)} {'does' if len(failed) == 1 else 'do'} not round-trip"
        )
        if unchecked:
            message += f" ({unchecked} later not checked)"
        raise MigrationFailed(
            message,
            "fix the rollback sections listed above and run `sqlstage verify` again, "
            "or declare one that cannot be undone with '-- sqlstage:irreversible'",
        )
    return report


@cli.command()
@click.argument("environment")
@click.option("--no-owners", is_flag=True, help="Leave out who owns each object.")
@click.option("--no-grants", is_flag=True, help="Leave out privileges (GRANT / REVOKE).")
@json_option
@click.pass_obj
def schema(state: State, environment: str, no_owners: bool, no_grants: bool) -> object:
    """Print ENVIRONMENT's schema: tables, columns, constraints, indexes, views, functions...

    Read from the database's catalogs, normalised and sorted: two databases print the same
    text exactly when their pg_dump --schema-only (SQLite: .schema) is the same.
    """
    from sqlstage.schema import render_text

    project = state.project()
    from sqlstage import commands

    screen = Screen(state, announce=False)
    snap = commands.schema(
        project, environment, TerminalAsk(state), screen, not no_owners, not no_grants
    )
    if not json_requested():
        click.echo(render_text(snap), nl=False)
    return snap
