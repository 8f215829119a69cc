"""Is there a connection pooler between us and PostgreSQL, and does it keep our session?

A *transaction* pooler (Supabase's :6543, Neon's `-pooler` host, PgBouncer with
`pool_mode = transaction`) hands each transaction to whichever server connection is free.
Everything sqlstage keeps in a session then lands on connections other clients use: the
advisory run lock excludes nobody, a `SET` leaks, psycopg's prepared statements collide.
`detect` finds out before anything changes, so `connect` can refuse (exit 4) unless the
environment says `pooler = "transaction"`.

Three signals, cheapest first:
1. the server connection (`pg_backend_pid()`) changes between two transactions, or a session
   setting (`sqlstage.probe`, a custom one nobody else reads) does not survive a transaction:
   a transaction pooler, certainly;
2. the cancel key the server sent at login names our own backend: no pooler at all;
3. otherwise a pooler is in between (PgBouncer makes up the cancel key). In session mode our
   server connection is ours until we disconnect; in transaction mode it goes back to the pool
   as soon as our transaction ends, so a second client connection opened now is handed the
   *same* server connection (PgBouncer reuses the last one freed: the same backend pid). That
   decides it even for a pool of one server connection, where (1) cannot tell. Other clients
   of a busy pool can take our server connection just then, so (1) and (3) are repeated a few
   times; any sign of a transaction pooler decides.

All probes are single-statement transactions in autocommit and prepare nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from sqlstage.errors import ConfigError, ConnectionFailed

if TYPE_CHECKING:
    import psycopg

PROBE_SETTING = "sqlstage.probe"
#: the values of `pooler` in an environment of sqlstage.toml
POOLER_SETTINGS = ("detect", "transaction")
#: how long the second client of signal 3 may wait for a server connection
SECOND_CLIENT_WAIT_SECONDS = 3.0
#: rounds of signals 1 and 3 through a pooler (see `_rounds`)
POOLED_ROUNDS = 8


class PoolerKind(Enum):
    DIRECT = "direct"
    SESSION = "session"
    TRANSACTION = "transaction"


@dataclass(frozen=True)
class PoolerCheck:
    """What `detect` found, and the evidence in words for the one-line message."""

    kind: PoolerKind
    evidence: str

    @property
    def keeps_session(self) -> bool:
        """True when session state (a lock, a SET, a prepared statement) stays ours."""
        return self.kind is not PoolerKind.TRANSACTION


def detect(
    conn: psycopg.Connection[tuple[object, ...]],
    second_connection: Callable[[], psycopg.Connection[tuple[object, ...]]] | None = None,
) -> PoolerCheck:
    """Probe an open autocommit connection; `second_connection` opens another one to the
    same URL (for signal 3) and is closed here. Without it, a pooler whose mode cannot be
    seen from one connection is reported as a transaction pooler (the safe answer)."""
    token = os.urandom(8).hex()  # secrets.token_hex(8), without importing hmac and random
    pid, _ = _probe(
        conn, f"SELECT pg_backend_pid(), set_config('{PROBE_SETTING}', %s, false)", token
    )
    if conn.info.backend_pid == pid:  # the server's own cancel key: confirm, and clean up
        lost = _session_lost(conn, pid, token, reset=True)
        return lost or PoolerCheck(PoolerKind.DIRECT, "connected to the server itself")
    if second_connection is None:
        lost = _session_lost(conn, pid, token, reset=True)
        return lost or PoolerCheck(
            PoolerKind.TRANSACTION,
            "a pooler sits in front of the server and its mode could not be checked",
        )
    other = second_connection()
    try:
        found = _rounds(conn, other, pid, token)
    finally:
        other.close()  # not `with`: its exit would send COMMIT behind a query still queued
    _session_lost(conn, pid, token, reset=True)
    return found


def _rounds(
    conn: psycopg.Connection[tuple[object, ...]],
    other: psycopg.Connection[tuple[object, ...]],
    pid: int,
    token: str,
) -> PoolerCheck:
    """Signals 1 and 3, `POOLED_ROUNDS` times: with other clients busy in a transaction
    pool, any one round can miss (our server connection was taken just then), all of them
    hardly ever. A session pool answers the same way every time."""
    for _ in range(POOLED_ROUNDS):
        lost = _session_lost(conn, pid, token)
        if lost is not None:
            return lost
        answer = _probe_within(other, SECOND_CLIENT_WAIT_SECONDS)
        if answer is None:  # no free server connection; in transaction mode ours was free
            return PoolerCheck(
                PoolerKind.TRANSACTION,
                "a pooler sits in front of the server and a second connection waited "
                f"{SECOND_CLIENT_WAIT_SECONDS:g} s for a server connection, so its mode "
                "could not be checked",
            )
        if answer == pid:
            return PoolerCheck(
                PoolerKind.TRANSACTION,
                "another client connection was handed this connection's server session "
                f"(pid {pid}) as soon as its transaction ended",
            )
    return PoolerCheck(
        PoolerKind.SESSION, "a session pooler keeps one server connection per client"
    )


def _session_lost(
    conn: psycopg.Connection[tuple[object, ...]], pid: int, token: str, reset: bool = False
) -> PoolerCheck | None:
    """Signal 1 in one transaction: a TRANSACTION check when the server connection or the
    probe setting changed since it was set, else None. `reset` puts the setting back as a
    fresh session has it in the same statement (OFFSET 0 keeps the read in a subquery that
    runs first)."""
    value = "''" if reset else "seen"
    now, seen = _probe(
        conn,
        f"SELECT pg_backend_pid(), seen, set_config('{PROBE_SETTING}', {value}, false) FROM "
        f"(SELECT current_setting('{PROBE_SETTING}', true) AS seen OFFSET 0) AS probe",
    )
    if now != pid:
        return PoolerCheck(
            PoolerKind.TRANSACTION,
            f"the server connection changed between two transactions (pid {pid}, then {now})",
        )
    if seen != token:
        return PoolerCheck(
            PoolerKind.TRANSACTION, "a session setting did not survive the end of a transaction"
        )
    return None


def _probe_within(conn: psycopg.Connection[tuple[object, ...]], seconds: float) -> int | None:
    """The second client's server pid, or None when the pooler kept it waiting (a session
    pool with every server connection taken queues it, up to minutes)."""
    import select
    import time

    from psycopg import pq

    pgconn = conn.pgconn
    pgconn.send_query(b"SELECT pg_backend_pid()")
    deadline = time.monotonic() + seconds
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pgconn.socket], [], [], remaining)[0]:
            return None  # closing the connection abandons the queued query
    result = pgconn.get_result()
    while pgconn.get_result() is not None:  # drain to the end of the query
        pass
    if result is None or result.status != pq.ExecStatus.TUPLES_OK:
        return None
    return int(result.get_value(0, 0) or b"0")


def _probe(
    conn: psycopg.Connection[tuple[object, ...]], sql: str, *params: str
) -> tuple[int, str | None]:
    row = conn.execute(sql, params or None, prepare=False).fetchone()
    assert row is not None  # a SELECT without FROM (or of one row) returns one row
    return int(str(row[0])), None if row[1] is None else str(row[1])


def check_setting(value: object, environment: str) -> str:
    """Validate `pooler = ...` of `[environments.<environment>]`; returns it."""
    if value not in POOLER_SETTINGS:
        raise ConfigError(
            f"pooler = {value!r} in [environments.{environment}] of sqlstage.toml is not one "
            f"of {', '.join(repr(s) for s in POOLER_SETTINGS)}",
            'leave it out (sqlstage detects a pooler) or write pooler = "transaction" to run '
            "through a transaction pooler on purpose",
        )
    return str(value)


def refusal(environment: str, masked_url: str, check: PoolerCheck) -> ConnectionFailed:
    """The one-line error (exit 4) for a transaction pooler the environment did not allow."""
    return ConnectionFailed(
        f"{environment}: {masked_url} goes through a transaction-mode connection pooler "
        f"({check.evidence}); nothing was changed",
        "migrations need their own session: use the direct URL (Supabase: "
        "db.<project-ref>.supabase.co:5432, not the pooler's port 6543; Neon: the host "
        "without -pooler; PgBouncer: pool_mode = session), or set "
        f'pooler = "transaction" in [environments.{environment}] of sqlstage.toml to go on '
        "knowingly",
    )
