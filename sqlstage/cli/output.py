"""`--json`: stdout holds exactly one JSON document, whatever happens; every line meant for
people (Connected:, the plan, warnings, progress, prompts) goes to stderr.

Done once, at the edge: the `--json` option moves stdout to stderr as soon as it is parsed,
the command returns the library's value (or leaves it in `JsonOutput.result` before an error),
and the group (`sqlstage.cli.app`) writes the document (docs/json.md) to the real stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from sqlstage.urls import needs_redacting, redact

if TYPE_CHECKING:
    from sqlstage.errors import SqlstageError

#: where the run's JsonOutput is kept in click's context (shared by the group and its command)
META_KEY = "sqlstage.output"

#: bumped when a field changes meaning or goes away; new fields may appear in any version
SCHEMA_VERSION = 1


class JsonOutput:
    """Where the document goes and what it carries."""

    def __init__(self) -> None:
        self._stdout: TextIO | None = None
        self.command: click.Context | None = None
        #: the command's value when it raised after computing one (check's refusal, verify)
        self.result: object = None

    @property
    def active(self) -> bool:
        return self._stdout is not None

    def start(self, command: click.Context) -> None:
        if self._stdout is None:
            self._stdout = sys.stdout
            sys.stdout = sys.stderr
        self.command = command

    def stop(self) -> None:
        if self._stdout is not None:
            sys.stdout = self._stdout
            self._stdout = None

    def emit(self, document: dict[str, Any], secrets: list[str]) -> None:
        from sqlstage.cli.json_text import indented  # only a --json run writes a document

        stream = self._stdout or sys.stdout
        text = indented(document)
        # JSON escapes a string one character at a time, so a string holding a secret, `@`
        # or `=` leaves it, escaped, in the text; a text free of them is already redacted
        # (status --json over 10,000 migrations: 185,000 strings not walked twice)
        spelled = [json.dumps(secret, ensure_ascii=False)[1:-1] for secret in secrets]
        if needs_redacting(text, spelled):
            text = indented(redacted(document, secrets))
        stream.write(text + "\n")
        stream.flush()

    def document(self, name: str, value: object, error: dict[str, Any] | None) -> dict[str, Any]:
        """The envelope every command's document shares, around the value's fields."""
        from sqlstage.cli.documents import fields

        params = self.command.params if self.command is not None else {}
        head: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "command": name}
        if isinstance(params.get("environment"), str):
            head["environment"] = params["environment"]
        body = fields(value) if value is not None else {}
        return {**head, **body, "ok": error is None, "error": error}


def redacted(value: Any, secrets: list[str]) -> Any:
    """Every string in the document redacted before it is encoded: after encoding, a password
    holding `"` or `\\` would be spelled differently from the secret looked for."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: redacted(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item, secrets) for item in value]
    if isinstance(value, Path):
        return redact(str(value), secrets)
    return value


def error_fields(error: SqlstageError) -> dict[str, Any]:
    """`{"code": "migration-failed", "exitCode": 1, "message", "fix", "details"}`"""
    return {
        "code": code_of(type(error).__name__),
        "exitCode": int(error.exit_code),
        "message": error.message,
        "fix": error.fix,
        "details": error.details or None,
    }


def code_of(class_name: str) -> str:
    """`ChecksumChanged` -> `checksum-changed`, `ConfigError` -> `config-error`"""
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in class_name).lstrip("-")


def json_option(command: Any) -> Any:
    """`--json` on a command: from the moment it is parsed, stdout is stderr."""

    def start(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        output = ctx.meta.get(META_KEY)
        if value and isinstance(output, JsonOutput):
            output.start(ctx)
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=False,
        callback=start,
        help="Print one JSON document on stdout (docs/json.md); all else goes to stderr.",
    )(command)


def json_requested() -> bool:
    """Inside a command: is --json on?"""
    output = click.get_current_context().meta.get(META_KEY)
    return isinstance(output, JsonOutput) and output.active


def keep(value: object) -> None:
    """Inside a command about to raise: the document carries `value`'s fields too."""
    output = click.get_current_context().meta.get(META_KEY)
    if isinstance(output, JsonOutput):
        output.result = value
