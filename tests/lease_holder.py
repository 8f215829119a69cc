"""A process that takes the lease lock, holds it, and says so: for tests/test_lease.py.

python -m tests.lease_holder URL HOLDER TTL HOLD WAIT_SECONDS [--no-heartbeat]

HOLD is seconds, or `stdin`: hold until a line (or end of input) arrives on stdin.
Prints `acquired <unix time>` and `released <unix time>` on stdout; exits 3 (Locked) with
the one-line message on stderr when the lease stays taken for WAIT_SECONDS.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from sqlstage.errors import Locked
from sqlstage.lease import Lease


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, prepare_threshold=None, connect_timeout=5)


POLL_SECONDS = 0.2


def acquire(lease: Lease, wait_seconds: float, waiting: Callable[[str], None]) -> None:
    """Take the lease, polling up to `wait_seconds` as Driver.lock does; `waiting(holder)`
    is told who holds it each time that changes. Raises Locked (exit 3) on timeout."""
    deadline = time.monotonic() + wait_seconds
    told: str | None = None
    while not lease.try_acquire():
        current = lease.holder()
        text = current.describe() if current else "another sqlstage run"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Locked(
                f"the database is being changed by {text}; waited {wait_seconds:g} s "
                "and changed nothing",
                "let that run finish and try again, or wait longer with --lock-wait SECONDS",
            )
        if text != told:
            waiting(text)
            told = text
        time.sleep(min(POLL_SECONDS, remaining))


def main(argv: list[str]) -> int:
    url, holder, ttl, hold, wait = argv[:5]
    heartbeat = "--no-heartbeat" not in argv
    conn = _connect(url)
    lease = Lease(
        conn, holder, ttl_seconds=float(ttl), connect=(lambda: _connect(url)) if heartbeat else None
    )
    try:
        acquire(lease, float(wait), lambda text: print(f"waiting: {text}", flush=True))
    except Locked as error:
        print(error, file=sys.stderr, flush=True)
        return int(error.exit_code)
    print(f"acquired {time.time()}", flush=True)
    if hold == "stdin":
        sys.stdin.readline()
    else:
        time.sleep(float(hold))
    lease.verify()
    print(f"released {time.time()}", flush=True)  # before: the next holder may print at once
    lease.release()
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
