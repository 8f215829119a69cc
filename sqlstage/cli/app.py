"""The click group, per-run state, and the one place errors become a line and an exit code."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from sqlstage import __version__
from sqlstage.cli.output import META_KEY, JsonOutput, error_fields
from sqlstage.errors import ConfigError, ExitCode, SqlstageError, Terminated
from sqlstage.urls import redact, secrets_in

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from sqlstage.project import Project


class State:
    """Per-invocation state: where the project is, and secrets to keep out of any output."""

    def __init__(self, directory: Path, output: JsonOutput | None = None) -> None:
        self.directory = directory
        self.secrets: list[str] = []
        #: --json: the document and where it goes
        self.output = output or JsonOutput()

    def project(self, read_only: bool = False) -> Project:
        """`read_only` (status, pending): a migration file with no SQL yet is a warning."""
        from sqlstage.project import Project

        project = Project.load(self.directory, read_only)
        if read_only:
            for path in project.catalog.unwritten:
                click.secho(
                    f"warning: {path}: no SQL yet (left out until it has some; apply refuses it)",
                    fg="yellow",
                    err=True,
                )
        return project

    def ask_hidden(self, question: str) -> str:
        """Read a URL without echoing it. Where the input cannot be hidden (no terminal to
        turn echo off on, so getpass would warn and read a pipe with echo on) it is not
        read at all."""
        import getpass
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            try:
                value: str = click.prompt(f"{question} (input hidden)", hide_input=True, err=True)
            except getpass.GetPassWarning as err:
                raise ConfigError(
                    f"{question}: the input cannot be hidden here, so it is not read",
                    'run it in a terminal; an unattended run takes url = "env:VAR"',
                ) from err
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
    **dict.fromkeys(("plan", "check-edits"), "review"),
}


#: each command's line in `--help` (the first sentence of its help), so listing the commands
#: imports none of their modules; tests/test_cli_start.py checks they say what the commands do
COMMAND_SUMMARIES = {
    "agents": "Print the rules for AI coding agents, or add them to FILE.",
    "apply": "Apply pending migrations to ENVIRONMENT: all of them, exactly MIGRATION (the "
    "next pending one), or those up to --to.",
    "baseline": "Mark ENVIRONMENT as having reached MIGRATION without running anything.",
    "check": "Test ENVIRONMENT's connection and show what it is; changes nothing.",
    "diff": "Compare the live schemas of ENV1 and ENV2.",
    "drift": "Compare ENVIRONMENT's live schema with the schema its history says it has.",
    "init": "Create sqlstage.toml, the migrations folder and status.json.",
    "lint": "Find statements that lock or rewrite tables or break running code, with the safe SQL.",
    "new": "Write the next NNN_NAME.sql from the template and print its path.",
    "pending": "List what ENVIRONMENT still lacks, from status.json (no connection).",
    "plan": "What `apply ENV` would run, per environment (default: all), from status.json and "
    "the files, with lint findings; no connection, no credentials.",
    "check-edits": "Refuse (exit 2) when a migration some environment has applied was edited "
    "or deleted, by the checksums status.json records; no connection, no credentials.",
    "repair": "Put ENVIRONMENT's record of MIGRATION right; runs no migration SQL (but "
    "--resume, which runs the statements a migration stopped midway outside a transaction "
    "did not).",
    "rollback": "Roll back ENVIRONMENT's last migration, or MIGRATION and every one applied "
    "after it.",
    "schema": "Print ENVIRONMENT's schema: tables, columns, constraints, indexes, views, "
    "functions...",
    "status": "Where each environment stands, from status.json and the files (no connection).",
    "verify": "Prove every rollback undoes its migration, on a scratch database.",
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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's list of commands, from COMMAND_SUMMARIES (a command registered some
        other way is looked up as click does)."""
        names = self.list_commands(ctx)
        if not names or any(name not in COMMAND_SUMMARIES for name in names):
            super().format_commands(ctx, formatter)
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, summary(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[META_KEY] = JsonOutput()
        # a usage error stops parsing before --json takes effect: the document is still due
        ctx.meta["sqlstage.json_asked"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        output: JsonOutput = ctx.meta[META_KEY]
        try:
            value = self._invoke(ctx, output)
            if output.active:
                self._emit(ctx, output, value, None)
            return value
        finally:
            output.stop()

    def _invoke(self, ctx: click.Context, output: JsonOutput) -> Any:
        try:
            return super().invoke(ctx)
        except SqlstageError as error:
            state = ctx.find_object(State)
            secrets = state.secrets if state else []
            self._emit(ctx, output, output.result, error_fields(error))
            if error.details:
                click.echo(redact(error.details, secrets), err=True)
            fail(str(error), error.exit_code, secrets)
        except click.ClickException as error:  # usage: click prints it (stderr), exits 2
            self._emit(ctx, output, None, _usage_fields(error))
            raise
        except SystemExit as done:  # `lint` and `verify` exit 1 on what they found
            code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
            if code and output.active:
                message = f"exit {code}: the document's fields say why"
                self._emit(ctx, output, output.result, _plain("failed", code, message))
            raise
        except KeyboardInterrupt as interrupt:
            terminated = isinstance(interrupt, Terminated)
            code = ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
            what = "terminated (SIGTERM)" if terminated else "interrupted"
            message = f"{what}: {interrupted(ctx.invoked_subcommand)}"
            self._emit(ctx, output, None, _plain("interrupted", code, message))
            click.echo(f"\n{message}", err=True)
            sys.exit(code)
        except click.Abort as abort:  # at a prompt: Ctrl-C, or no more input to read
            if isinstance(abort.__context__, KeyboardInterrupt):
                terminated = isinstance(abort.__context__, Terminated)
                what = "terminated (SIGTERM)" if terminated else "interrupted"
                code = ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
                message = f"{what} at a prompt: nothing was changed"
                self._emit(ctx, output, None, _plain("interrupted", code, message))
                click.echo(f"\n{message}", err=True)
                sys.exit(code)
            message = "no answer at the prompt (end of input): nothing was changed"
            self._emit(ctx, output, None, _plain("no-answer", ExitCode.REFUSED, message))
            fail(message, ExitCode.REFUSED, [])
        except Exception as error:  # a bug: Python prints its traceback, so redact what it says
            state = ctx.find_object(State)
            redact_exception(error, state.secrets if state else [])
            raise

    def _emit(
        self, ctx: click.Context, output: JsonOutput, value: object, error: dict[str, Any] | None
    ) -> None:
        """Write the --json document once: the value's fields, or the error (and what the
        command had found before it)."""
        if not (output.active or (error is not None and ctx.meta.get("sqlstage.json_asked"))):
            return
        state = ctx.find_object(State)
        document = output.document(ctx.invoked_subcommand or "", value, error)
        output.emit(document, state.secrets if state else [])  # redacted as a whole
        output.stop()
        ctx.meta["sqlstage.json_asked"] = False
        output.command = None


def _plain(code: str, exit_code: int, message: str) -> dict[str, Any]:
    return {"code": code, "exitCode": exit_code, "message": message, "fix": None, "details": None}


def _usage_fields(error: click.ClickException) -> dict[str, Any]:
    return _plain("usage", error.exit_code, error.format_message())


def summary(name: str, limit: int) -> str:
    """A command's line in `--help`, shortened to `limit` as click shortens its help."""
    return click.Command(name, help=COMMAND_SUMMARIES[name]).get_short_help_str(limit)


def interrupted(command: str | None) -> str:
    """What an interrupted command leaves behind, in its own words."""
    if command == "verify":
        return "the scratch database was dropped (unless --keep); nothing else was changed"
    if command in ("apply", "rollback", "repair", "baseline"):
        return (
            "the work in progress was rolled back (the migration's transaction, if it ran in "
            "one); status.json and the log record what had committed"
        )
    return "nothing was changed"


def plain() -> bool:
    """No colour and no cursor movement: NO_COLOR is set (https://no-color.org) or the
    terminal says it is dumb."""
    return bool(os.environ.get("NO_COLOR")) or os.environ.get("TERM") == "dumb"


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
    5 not up to date (--exit-code, --check), 6 a drift check could not finish,
    130 interrupted.
    """
    if plain():
        ctx.color = False  # every click.secho below strips its styles
    ctx.obj = State(directory, ctx.meta.get(META_KEY))
