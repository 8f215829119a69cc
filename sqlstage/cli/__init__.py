"""The command line: parse, prompt, render. No SQL and no file parsing live here.

One module per group of commands; the group imports a command's module when the command is
looked up (sqlstage.cli.app.COMMAND_MODULES), so a run loads only what it uses.
"""

from __future__ import annotations

import gc

from sqlstage.cli.app import cli


def main(argv: list[str] | None = None) -> None:
    import signal

    from sqlstage.errors import Terminated

    def terminate(signum: int, frame: object) -> None:
        raise Terminated()

    # SIGTERM stops the process the way Ctrl-C does, at a prompt too: exit 143, not killed
    signal.signal(signal.SIGTERM, terminate)
    # A short-lived process: what start-up made (modules, click's commands) lives to the end,
    # so the cyclic GC need not walk it again (freeze), and young objects are checked in
    # batches of 100,000 allocations, not 700: building 10,000 migrations or parse trees
    # otherwise triggers hundreds of collections (lint of 1,000 files: ~25% of its CPU).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    cli.main(args=argv, prog_name="sqlstage")


__all__ = ["cli", "main"]
