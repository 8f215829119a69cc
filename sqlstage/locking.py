"""One runner at a time: the lock key, the SQLite lock file, and the default wait.

PostgreSQL uses a session-level advisory lock (drivers/postgres.py) keyed on the history
table's name. SQLite has no lock that outlives a transaction, and sqlstage commits each
migration on its own, so an immediate write lock held for the whole run would either have to
wrap every migration in one transaction (breaking "each migration commits on its own") or be
held on a second connection (which would then block our own writes). Instead a run holds an
exclusive `flock` on a file next to the database, `<db>-sqlstage.lock`, and writes its name in
it. The operating system drops the lock when the process dies, `kill -9` included. We never
delete the file: removing it while another run waits on it would let two runs hold "the" lock.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path

from sqlstage.errors import ConfigError

DEFAULT_LOCK_WAIT_SECONDS = 10.0


def lock_wait(seconds: float) -> float:
    """How long a run may wait for another's lock, checked: a number of seconds, 0 or more and
    finite (`nan` compares false with every deadline, so it waited forever).

    >>> lock_wait(2.5)
    2.5
    """
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
        raise ConfigError(
            f"--lock-wait must be a number of seconds, 0 or more (got {seconds!r})",
            "pass --lock-wait 30 to wait up to 30 seconds, or --lock-wait 0 not to wait",
        )
    return float(seconds)


#: advisory_key("sqlstage_history"), the key of every run in the public schema, written out
#: so that such a run does not import hashlib (~2 ms; tests/test_locking.py recomputes it)
PUBLIC_KEY = 2617500814218425426


def advisory_key(table: str) -> int:
    """A stable positive 63-bit key for `pg_advisory_lock`, from the history table's name."""
    if table == "sqlstage_history":
        return PUBLIC_KEY
    import hashlib

    digest = hashlib.sha256(f"sqlstage:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def holder_text(application_name: str, pid: int, since: datetime | None) -> str:
    """`sqlstage dev alice@laptop (pid 4242, since 10:22:31)`"""
    when = f", since {since.strftime('%H:%M:%S')}" if since else ""
    return f"{application_name or 'an unnamed session'} (pid {pid}{when})"


class FileLock:
    """An exclusive, non-blocking `flock` on a file, with the holder's name written in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self, holder: str) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, holder.encode("utf-8"))
        self._fd = fd
        return True

    def holder(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None
        return text or None

    def release(self) -> None:
        import fcntl

        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
