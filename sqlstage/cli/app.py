"""The click group, per-run state, and the one place errors become a line and an exit code."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from sqlstage import __version__
from sqlstage.errors import ExitCode, SqlstageError, Terminated
from sqlstage.urls import redact, secrets_in

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.project import Project


class State:
    """Per-invocation state: where the project is, and secrets to keep out of any output."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.secrets: list[str] = []

    def project(self) -> Project:
        from sqlstage.project import Project

        return Project.load(self.directory)

    def ask_hidden(self, question: str) -> str:
        value: str = click.prompt(f"{question} (input hidden)", hide_input=True, err=True)
        self._remember_password(value)
        return value

    def _remember_password(self, url: str) -> None:
        self.secrets.extend(secrets_in(url))


#: the module that registers each command: a run imports only its command's module
COMMAND_MODULES = {
    **dict.fromkeys(("init", "new", "check", "agents", "repair", "baseline"), "admin"),
    **dict.fromkeys(("apply", "rollback"), "apply"),
    "lint": "lint",
    **dict.fromkeys(("verify", "schema"), "schema"),
    **dict.fromkeys(("status", "pending"), "status"),
    **dict.fromkeys(("drift", "diff"), "drift"),
}


class SqlstageGroup(click.Group):
    """Imports a command's module when the command is looked up; turns SqlstageError into
    one line on stderr and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMAND_MODULES, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(f"sqlstage.cli.{module}")  # its decorators register it
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SqlstageError as error:
            state = ctx.find_object(State)
            secrets = state.secrets if state else []
            if error.details:
                click.echo(redact(error.details, secrets), err=True)
            fail(str(error), error.exit_code, secrets)
        except KeyboardInterrupt as interrupt:
            terminated = isinstance(interrupt, Terminated)
            click.echo(
                f"\n{'terminated (SIGTERM)' if terminated else 'interrupted'}: the work in "
                "progress was rolled back (a migration's transaction, a scratch database); "
                "status.json and the log record what had committed",
                err=True,
            )
            sys.exit(ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED)
        except click.Abort as abort:  # at a prompt: Ctrl-C, or no more input to read
            if isinstance(abort.__context__, KeyboardInterrupt):
                terminated = isinstance(abort.__context__, Terminated)
                what = "terminated (SIGTERM)" if terminated else "interrupted"
                click.echo(f"\n{what} at a prompt: nothing was changed", err=True)
                sys.exit(ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED)
            fail(
                "no answer at the prompt (end of input): nothing was changed", ExitCode.REFUSED, []
            )
        except Exception as error:  # a bug: Python prints its traceback, so redact what it says
            state = ctx.find_object(State)
            redact_exception(error, state.secrets if state else [])
            raise


def redact_exception(error: BaseException, secrets: list[str]) -> None:
    """Redact the text arguments of an exception and of those it was raised from or during,
    in place, so the traceback Python prints for them shows no password."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.args = tuple(
            redact(arg, secrets) if isinstance(arg, str) else arg for arg in current.args
        )
        current = current.__cause__ or current.__context__


def fail(message: str, code: int, secrets: list[str]) -> NoReturn:
    click.secho(f"error: {redact(message, secrets)}", fg="red", err=True)
    sys.exit(code)


@click.group(cls=SqlstageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Run as if started in DIR.",
    metavar="DIR",
)
@click.version_option(__version__, prog_name="sqlstage")
@click.pass_context
def cli(ctx: click.Context, directory: Path) -> None:
    """Apply plain, numbered SQL migrations to dev, staging and production, safely.

    \b
    Exit codes: 0 done or nothing to do, 1 a migration failed, 2 usage, configuration
    or migration-file error, 3 refused (not confirmed, a safety rule), 4 cannot connect,
    5 a drift check could not finish, 130 interrupted.
    """
    ctx.obj = State(directory)
