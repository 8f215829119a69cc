"""The run's bookkeeping: its log, status.json brought in line with the database, the
schema dump, the backup, and what happens on Ctrl-C or SIGTERM.

Whatever a run does and however it ends, the log says so and status.json is synced with what
committed. An error while doing that never replaces the error that ended the run: it goes to
the log and the first error is the one raised.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

from sqlstage import __version__
from sqlstage.errors import FileAccessError, Refused, SqlstageError, Terminated
from sqlstage.history import AppliedMigration
from sqlstage.project import Project
from sqlstage.runlog import RunLog, file_stamp
from sqlstage.session import Session
from sqlstage.status_file import Recorded
from sqlstage.user import current_user

BACKUP_DIR = "backups"


@contextmanager
def run_log(
    project: Project,
    session: Session,
    verb: str,
    before: Sequence[AppliedMigration],
    warn: Callable[[str], None] | None = None,
) -> Iterator[RunLog]:
    """The run's log file, opened with who, what, the tool version and the target; on the
    way out it records how the run ended and syncs status.json with the database.

    `before` is the history as the run found it: what status.json recorded beyond it is
    kept in the file (and `warn` told), never erased by a run that did not ask about it."""
    env = session.environment
    kept = project.only_in_file(env.key, before)
    with signals_as_interrupts(), RunLog(project.config.log_dir, env.key, session.secrets) as log:
        log.write(f"sqlstage {__version__} {verb} {env.key} by {current_user()}")
        log.write(f"target {session.url.masked}: {session.info.describe()}")
        failed = True
        try:
            yield log
            log.flush()  # on disk before status.json's folder lock may keep the run waiting
            failed = False
        except SqlstageError as error:
            log.write(f"ERROR: {error}")
            _flush_quietly(log)
            raise
        except KeyboardInterrupt as interrupt:
            what = "SIGTERM" if isinstance(interrupt, Terminated) else "Ctrl-C"
            log.write(
                f"INTERRUPTED ({what}): the migration in progress was rolled back if it ran in "
                "a transaction; status.json records what committed"
            )
            _flush_quietly(log)
            raise
        finally:
            with deferred_interrupts(deliver=not failed):
                sync_status(project, session, log, quiet=failed, keep=kept, warn=warn)


def _flush_quietly(log: RunLog) -> None:
    """Put the log on disk while an error is on its way out: that error is the one to raise."""
    with suppress(FileAccessError):
        log.flush()


def sync_status(
    project: Project,
    session: Session,
    log: RunLog,
    quiet: bool = False,
    keep: Sequence[Recorded] = (),
    warn: Callable[[str], None] | None = None,
) -> bool:
    """Write the environment's entry of status.json from its database's history (keeping
    `keep`, what only the file recorded before the run); with `quiet` (the run already
    failed) a failure here is logged, not raised."""
    fingerprint, session.fingerprint = session.fingerprint, None  # this run's, written once
    try:
        session.driver.recover()
        history = session.applied()
        written = project.record_status(
            session.environment, history, keep=keep, fingerprint=fingerprint
        )
    except Exception as error:
        log.write(f"status.json not updated: {error}")
        if quiet:
            return False
        raise
    session.status_written = written or session.status_written
    have = {row.migration for row in history if row.is_applied}
    still = [row.migration for row in keep if row.migration not in have]
    if still:
        key = session.environment.key
        text = (
            f"status.json still records {', '.join(still)} for {key}, which its database's "
            f"history does not: `sqlstage baseline {key}` records them there, "
            f"`sqlstage status --live {key} --write` forgets them (it asks first)"
        )
        log.write(f"warning: {text}")
        if warn is not None:
            warn(text)
    return written


def dump_schema(project: Project, session: Session, log: RunLog) -> Path | None:
    """Rewrite the environment's `schema_dump` file if its schema changed; the path if so."""
    from sqlstage.schema.dump import write_dump

    env = session.environment
    if env.schema_dump is None:
        return None
    path = project.config.root / env.schema_dump
    if not write_dump(session.driver, env.key, path):
        return None
    log.write(f"schema written to {path}")
    return path


def record_fingerprint(project: Project, session: Session, log: RunLog) -> None:
    """Take the live schema's fingerprint after a run, for status.json (so offline `status`
    can tell two environments with the same migrations and different schemas): `sync_status`
    writes it with the history, in the same write. A failure here is logged: the run itself
    is done."""
    from sqlstage.drift.check import live_fingerprint

    try:
        session.fingerprint = live_fingerprint(project, session)
    except SqlstageError as error:
        log.write(f"schema fingerprint not recorded: {error}")


def backup(project: Project, session: Session, target: str | None = None) -> Path:
    """Back the database up into backups/<env>/<UTC timestamp><suffix> (a fleet's target:
    <UTC timestamp>_<its name, made safe for a file name><suffix>); returns the file."""
    driver = session.driver
    folder = project.config.root / BACKUP_DIR / session.environment.key
    folder.mkdir(parents=True, exist_ok=True)
    name = "" if target is None else f"_{file_safe(target)}"
    path = folder / f"{file_stamp()}{name}{driver.facts.backup_suffix}"
    while True:  # created empty and private first: a dump holds all the data
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:  # two backups in one millisecond: never overwrite one
            path = path.with_stem(path.stem + "-2")
    driver.backup(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise Refused(f"the backup {path} is missing or empty; nothing was applied")
    return path


def file_safe(name: str) -> str:
    """A target's name as part of a file name: `127.0.0.1:5432/tenant_01` ->
    `127.0.0.1_5432_tenant_01` (letters, digits, `.`, `_`, `-`; at most 100)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:100] or "target"


# -- signals ----------------------------------------------------------------------------------
def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM stops a run the way Ctrl-C does (the transaction rolls back, the log and
    status.json are written) instead of killing it where it stands."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def deferred_interrupts(deliver: bool = True) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while the bookkeeping writes, then deliver them (unless the
    run is already ending with an error of its own: the first one is the one raised)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught and deliver:
            raise Terminated() if caught[0] == signal.SIGTERM else KeyboardInterrupt()
