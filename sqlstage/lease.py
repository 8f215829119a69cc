"""A run lock that holds across transactions: a lease row in sqlstage's own table.

A session advisory lock belongs to a server connection; behind a transaction pooler each
transaction may get another one, so the lock excludes nobody. A lease is a row instead,
taken, renewed and released in single-statement transactions, so it means the same through
any pooler:

    sqlstage_lock(name PRIMARY KEY, holder, token, pid, host,
                  acquired_at, heartbeat_at, expires_at)

- *take*: one `INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE expires_at <= now()`. The
  row's lock serialises two runs: the second re-checks the condition against the first's new
  row and gets nothing back. An expired row (its holder was killed) is taken over the same way.
- *renew*: `UPDATE ... SET expires_at = now() + ttl WHERE token = ours`, from a heartbeat
  thread on its own connection every `ttl / 3` seconds. A thread, not renewals between
  migrations: one migration (a big CREATE INDEX) can run far longer than any lease worth
  waiting for after a crash, and the run's own connection is busy while it does; a lease
  renewed only between migrations would need a ttl longer than the longest migration, so a
  `kill -9` would block the next run that long.
- *release*: `DELETE ... WHERE token = ours`.
- *verify*: the check the runner makes before each migration: still ours and unexpired, or
  Locked.
- *fence*: a statement to send inside each migration's transaction, just before COMMIT. It
  locks the lease row (`FOR NO KEY UPDATE`) and aborts the transaction (SQLSTATE `SQLL1`)
  unless the lease is still ours, so a run that stalled past its expiry and lost the lease
  cannot commit a migration: a takeover waits for that row lock until the COMMIT, and then
  plans from a history that already holds the migration.

Times are the server's `now()`, so clocks of the machines running sqlstage do not matter.
Nothing here uses session state: no advisory lock, no SET, no prepared statement
(`prepare=False` on every statement).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlstage.errors import Locked

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[tuple[Any, ...]]

LEASE_TABLE = "sqlstage_lock"
#: the lock's name: one run lock per history table, as the advisory lock's key was
DEFAULT_LEASE_NAME = "sqlstage_history"
#: how long a lease lasts without a heartbeat: the wait after a `kill -9` of its holder
DEFAULT_TTL_SECONDS = 15.0

LEASE_DDL = f"""CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
)"""
_TAKE = f"""INSERT INTO {LEASE_TABLE} AS lease
    (name, holder, token, pid, host, acquired_at, heartbeat_at, expires_at)
VALUES (%s, %s, %s, %s, %s, now(), now(), now() + %s * interval '1 second')
ON CONFLICT (name) DO UPDATE SET
    holder = excluded.holder, token = excluded.token, pid = excluded.pid,
    host = excluded.host, acquired_at = excluded.acquired_at,
    heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
WHERE lease.expires_at <= now()
RETURNING token"""
_RENEW = f"""UPDATE {LEASE_TABLE}
SET heartbeat_at = now(), expires_at = now() + %s * interval '1 second'
WHERE name = %s AND token = %s
RETURNING token"""
#: the SQLSTATE the fence raises (class SQ, sqlstage's own; not a PostgreSQL code)
FENCE_SQLSTATE = "SQLL1"
_RELEASE = f"DELETE FROM {LEASE_TABLE} WHERE name = %s AND token = %s"
_HOLDER = f"""SELECT holder, pid, host, acquired_at, heartbeat_at, expires_at,
    expires_at > now(), token
FROM {LEASE_TABLE} WHERE name = %s"""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds (or last held) the lease, as the table says."""

    holder: str
    pid: int
    host: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    live: bool  # False: expired, free to take over

    def describe(self) -> str:
        """`sqlstage dev alice@laptop (pid 4242 on laptop, since 10:22:31)`"""
        return (
            f"{self.holder} (pid {self.pid} on {self.host}, "
            f"since {self.acquired_at.strftime('%H:%M:%S')})"
        )


class Lease:
    """The run lock as a lease row. `conn` is the run's autocommit connection; `connect`
    opens another one for the heartbeat thread (None: the caller renews by hand)."""

    def __init__(
        self,
        conn: Conn,
        holder: str,
        *,
        connect: Callable[[], Conn] | None = None,
        name: str = DEFAULT_LEASE_NAME,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
    ) -> None:
        self.conn = conn
        self.holder_name = holder
        self.name = name
        self.ttl = ttl_seconds
        self.token = secrets.token_hex(16)
        self._connect = connect
        self._held = False
        self._heartbeat: _Heartbeat | None = None
        self._table_ready = False

    @property
    def held(self) -> bool:
        """Taken by this run and not released (it may have expired: `verify` tells)."""
        return self._held

    # -- the four verbs ---------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Take the lease if it is free or expired, without waiting."""
        self._ensure_table()
        row = self._one(
            _TAKE,
            [self.name, self.holder_name, self.token, os.getpid(), _host(), self.ttl],
        )
        self._held = row is not None and row[0] == self.token
        if self._held and self._connect is not None:
            self._heartbeat = _Heartbeat(self, self._connect)
            self._heartbeat.start()
        return self._held

    def renew(self, conn: Conn | None = None) -> bool:
        """Push the expiry `ttl` seconds ahead; False when the lease is no longer ours."""
        row = self._one(_RENEW, [self.ttl, self.name, self.token], conn)
        return row is not None

    def release(self) -> None:
        """Give the lease up (idempotent); the heartbeat stops first, so it cannot renew a
        lease that is gone."""
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self._held and not self.conn.closed:
            self.conn.execute(_RELEASE, [self.name, self.token], prepare=False)
        self._held = False

    def verify(self) -> None:
        """Raise Locked unless the lease is still ours and unexpired: call before each
        migration, so a run whose lease was taken over (it stalled past its expiry) stops."""
        current = self._row()
        ours = current is not None and current[7] == self.token and bool(current[6])
        lost = self._heartbeat is not None and self._heartbeat.lost
        if ours and not lost:
            return
        self._held = False
        by = f" by {_holder(current).describe()}" if current and current[7] != self.token else ""
        raise Locked(
            f"the run lock was taken over{by} after this run's lease expired; stopped "
            "before the next migration",
            "check that the network to the database is steady, then run again",
        )

    def fence_sql(self) -> str:
        """`DO $$ ... $$`: aborts the transaction it runs in unless the lease is ours.

        The token is hex and the name an identifier, so writing them as literals is safe;
        a DO block takes no parameters."""
        if not (self.token.isalnum() and self.name.replace("_", "").isalnum()):
            raise ValueError(f"unsafe lease name {self.name!r}")
        return (
            "DO $sqlstage_fence$ BEGIN "
            f"PERFORM 1 FROM {LEASE_TABLE} WHERE name = '{self.name}' "
            f"AND token = '{self.token}' AND expires_at > now() FOR NO KEY UPDATE; "
            "IF NOT FOUND THEN RAISE EXCEPTION 'sqlstage: this run lost its run lock (its "
            f"lease expired and another run took it over)' USING ERRCODE = '{FENCE_SQLSTATE}'; "
            "END IF; END $sqlstage_fence$"
        )

    # -- who holds it (waiting is the driver's: Driver.lock polls try_acquire) ------------
    def holder(self) -> LeaseHolder | None:
        """The live holder, or None when the lease is free or expired."""
        row = self._row()
        found = _holder(row) if row else None
        return found if found and found.live else None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- SQL ----------------------------------------------------------------------------
    def _ensure_table(self) -> None:
        import psycopg

        if self._table_ready:
            return
        if not self._table_exists():  # CREATE ... IF NOT EXISTS needs CREATE rights
            try:
                self.conn.execute(LEASE_DDL, prepare=False)
            except psycopg.Error:
                # two runs created it at once: PostgreSQL says so as a unique violation in
                # pg_type or as `type "sqlstage_lock" already exists`, whichever it meets
                # first; it is there now, which is all this asks
                if not self._table_exists():
                    raise
        self._table_ready = True

    def _table_exists(self) -> bool:
        exists = self._one("SELECT to_regclass(%s) IS NOT NULL", [LEASE_TABLE])
        return bool(exists and exists[0])

    def _row(self) -> tuple[Any, ...] | None:
        self._ensure_table()
        return self._one(_HOLDER, [self.name])

    def _one(self, sql: str, params: list[Any], conn: Conn | None = None) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = (
            (conn or self.conn).execute(sql, params, prepare=False).fetchone()
        )
        return row


class _Heartbeat(threading.Thread):
    """Renews the lease every ttl/3 on a connection of its own; `lost` once the lease is
    found to be someone else's. A failed renewal (a network blip) is retried next beat."""

    def __init__(self, lease: Lease, connect: Callable[[], Conn]) -> None:
        super().__init__(name=f"sqlstage lease {lease.name}", daemon=True)
        self.lease = lease
        self.connect = connect
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psycopg

        conn: Conn | None = None
        interval = self.lease.ttl / 3
        while not self._stop_event.wait(interval):
            try:
                if conn is None or conn.closed:
                    conn = self.connect()
                if not self.lease.renew(conn):
                    self.lost = True
                    break
            except psycopg.Error:
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=self.lease.ttl)


def _holder(row: tuple[Any, ...]) -> LeaseHolder:
    return LeaseHolder(str(row[0]), int(row[1]), str(row[2]), row[3], row[4], row[5], bool(row[6]))


def _host() -> str:
    return socket.gethostname()
