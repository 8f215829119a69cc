"""What stands between a command and a database: connecting, the run lock, confirmation."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State
from sqlstage.cli.render import plural
from sqlstage.errors import Refused

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.config import Environment
    from sqlstage.plan import Plan, RollbackPlan
    from sqlstage.project import Connection, Project
    from sqlstage.safety import Identity


def lock_wait_option(command: Any) -> Any:
    from sqlstage.locking import DEFAULT_LOCK_WAIT_SECONDS, lock_wait

    return click.option(
        "--lock-wait",
        type=click.FloatRange(min=0),
        callback=lambda _ctx, _param, seconds: lock_wait(seconds),
        default=DEFAULT_LOCK_WAIT_SECONDS,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for another run on the same database to finish.",
    )(command)


def locked(
    project: Project, connection: Connection, wait_seconds: float, skip: bool = False
) -> AbstractContextManager[None]:
    """The run lock for a command that changes the database (`skip` for a dry run)."""
    if skip:
        return nullcontext()

    def waiting(holder: str) -> None:
        click.secho(
            f"waiting up to {wait_seconds:g} s: {connection.environment.key} is being changed "
            f"by {holder}",
            fg="yellow",
            err=True,
        )

    return project.locked(connection, wait_seconds, waiting)


def connect_to(
    state: State,
    project: Project,
    environment: str,
    verify_identity: bool = True,
    preflight: bool = True,
    changes: bool = True,
) -> Connection:
    """Connect to ENV and print where. `changes=False` for commands that change nothing:
    they never create a SQLite file that does not exist yet."""
    if preflight:  # a file error stops the run before a prompt or a connection
        project.preflight()
    connection = project.connect(
        environment, ask=state.ask_hidden, verify_identity=verify_identity, create=changes
    )
    state.secrets.extend(connection.secrets)
    click.echo(f"Connected: {connection.info.describe()}")
    for warning in connection.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    return connection


def refuse_unattended(env: Environment) -> None:
    """A protected environment needs a human at a terminal, unless the committed config says
    otherwise: no flag alone can let an unattended process (or an AI agent) reach production."""
    if env.protected and not env.allow_non_interactive and not sys.stdin.isatty():
        raise Refused(
            f"{env.key} is protected and this run has no terminal to confirm on",
            "a person runs it in a terminal; for CI deploys set allow_non_interactive = true "
            f"in [environments.{env.key}] of sqlstage.toml and pass --yes",
        )


@dataclass(frozen=True)
class Verb:
    """How a confirmation names what it asks for: `apply 2 migrations to dev`."""

    action: str
    prep: str
    past: str
    gerund: str


APPLY = Verb("apply", "to", "applied", "applying")
ROLL_BACK = Verb("roll back", "on", "rolled back", "rolling back")


def confirm_run(
    env: Environment,
    plan: Plan | RollbackPlan,
    yes: bool,
    identity: Identity,
    backup_planned: bool,
    verb: Verb = APPLY,
    adopt: bool = False,
) -> None:
    from sqlstage.safety import Identity

    count = plural(len(plan.migrations), "migration")
    nothing = f"nothing was {verb.past} {verb.prep} {env.key}"
    if identity is Identity.UNMARKED_ADOPTED and verb is APPLY:  # only apply marks
        confirm_adoption(env, len(plan.applied), adopt)
    if env.protected:
        if env.allow_non_interactive and yes:
            return
        if not sys.stdin.isatty():
            raise Refused(f"{env.key} is protected: an unattended run needs --yes", "pass --yes")
        if not backup_planned:
            click.secho(
                f"{env.name} is protected: take a backup before {verb.gerund} "
                '(or set backup = "pg_dump" for it in sqlstage.toml, or pass --backup).',
                fg="yellow",
            )
            if not ask_yes_no("Backup taken?"):
                raise Refused(
                    f"no backup confirmed: {nothing}", "take a backup first, or pass --backup"
                )
        answer = click.prompt(
            f"Type '{env.key}' to {verb.action} {count} {verb.prep} {env.name}",
            default="",
            show_default=False,
        )
        if answer.strip() != env.key:
            raise Refused(f"not confirmed: {nothing}", f"type '{env.key}' exactly to go on")
        return
    if yes:
        return
    if not ask_yes_no(f"{verb.action.capitalize()} {count} {verb.prep} {env.label}?"):
        raise Refused(f"not confirmed: {nothing}", "answer y, or pass --yes")


def confirm_adoption(env: Environment, applied: int, adopt: bool) -> None:
    """A database with migrations but no marker may be another environment's (a production
    database adopted from a hand-made script): marking it takes a person, or --adopt; --yes
    alone never does it."""
    what = (
        f"this database has {plural(applied, 'applied migration')} but no sqlstage "
        "environment marker, so nothing tells which environment it is"
    )
    if adopt:
        return
    if not sys.stdin.isatty():
        raise Refused(
            what, f"check the URL of '{env.key}', then pass --adopt to mark it as '{env.key}'"
        )
    click.secho(f"{what[0].upper()}{what[1:]}.", fg="yellow")
    if not ask_yes_no(f"Is it '{env.key}' ({env.name})? Mark it as such"):
        raise Refused(f"not confirmed: nothing was applied to {env.key}")


def ask_yes_no(question: str) -> bool:
    try:
        return bool(click.confirm(question, default=False))
    except click.Abort:
        return False


def confirm_action(env: Environment, what: str, yes: bool) -> None:
    """The usual confirmation: type the key for a protected environment, else [y/N]/--yes."""
    refuse_unattended(env)
    if env.protected:
        if env.allow_non_interactive and yes:
            return
        answer = click.prompt(f"Type '{env.key}' to {what}", default="", show_default=False)
        if answer.strip() != env.key:
            raise Refused(f"not confirmed: nothing was changed on {env.key}")
        return
    if yes:
        return
    if not ask_yes_no(f"{what[0].upper()}{what[1:]}?"):
        raise Refused(f"not confirmed: nothing was changed on {env.key}", "answer y, or pass --yes")
