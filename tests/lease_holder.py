"""A process that takes the lease lock, holds it, and says so: for tests/test_lease.py.

python -m tests.lease_holder URL HOLDER TTL HOLD WAIT_SECONDS [--no-heartbeat]

HOLD is seconds, or `stdin`: hold until a line (or end of input) arrives on stdin.
Prints `acquired <unix time>` and `released <unix time>` on stdout; exits 3 (Locked) with
the one-line message on stderr when the lease stays taken for WAIT_SECONDS.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from sqlstage.errors import Locked
from sqlstage.lease import Lease


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, prepare_threshold=None, connect_timeout=5)


def main(argv: list[str]) -> int:
    url, holder, ttl, hold, wait = argv[:5]
    heartbeat = "--no-heartbeat" not in argv
    conn = _connect(url)
    lease = Lease(
        conn, holder, ttl_seconds=float(ttl), connect=(lambda: _connect(url)) if heartbeat else None
    )
    try:
        lease.acquire(float(wait), lambda text: print(f"waiting: {text}", flush=True))
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
