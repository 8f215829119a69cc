"""The command line: parse, prompt, render. No SQL and no file parsing live here.

One module per group of commands; importing them registers their commands on `cli`.
"""

from __future__ import annotations

from sqlstage.cli import admin, apply, lint, schema, status  # noqa: F401 - registers commands
from sqlstage.cli.app import cli


def main(argv: list[str] | None = None) -> None:
    import signal

    from sqlstage.errors import Terminated

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    # SIGTERM stops the process the way Ctrl-C does, at a prompt too: exit 143, not killed
    signal.signal(signal.SIGTERM, terminate)
    cli.main(args=argv, prog_name="sqlstage")


__all__ = ["cli", "main"]
