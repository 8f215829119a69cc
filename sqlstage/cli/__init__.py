"""The command line: parse, prompt, render. No SQL and no file parsing live here.

One module per group of commands; the group imports a command's module when the command is
looked up (sqlstage.cli.app.COMMAND_MODULES), so a run loads only what it uses.
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

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
    try:
        cli.main(args=argv, prog_name="sqlstage")
    finally:
        # What the run made lives to the end as well: frozen too, it is not walked again by
        # the collections the interpreter makes on its way out (~40 ms of CPU after linting
        # 1,000 files, whose parse trees stay cached). Files and connections are closed by
        # their `with` blocks by now; none waits for a collection to be closed.
        gc.freeze()


def run() -> NoReturn:
    """The `sqlstage` command (the console script, `python -m sqlstage`): `main`, then the
    process ends without the interpreter's teardown.

    By the time `main` is done every file, connection and lock of the run is closed (each is
    a `with`); what teardown would still do is free the ~400 modules and every object one by
    one: 5 % of a no-op apply, of `status` over 10,000 files (callgrind). Whatever could still
    need the interpreter is left to it: another thread alive, an exit that is not a number,
    an exception, a standard stream that cannot be flushed (a closed pipe). atexit's
    functions run as they would, before the streams are flushed.
    """
    import atexit
    import os
    import threading

    try:
        main()
        code: object = 0
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code
    if not isinstance(code, int) or threading.active_count() > 1:
        raise SystemExit(code)
    atexit._run_exitfuncs()  # in the interpreter's order: atexit, then the streams
    try:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None
    os._exit(code)


__all__ = ["cli", "main", "run"]
