"""The lease lock: one holder at a time through a direct connection and through PgBouncer in
both modes, expired leases taken over, a `kill -9`ed holder's lease freed after its expiry."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sqlstage.errors import Locked
from sqlstage.lease import Lease
from tests.conftest import Database
from tests.pooler_fixtures import PgBouncer

ROOT = Path(__file__).resolve().parent.parent


def connect(url: str) -> Any:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None, connect_timeout=5)


@pytest.fixture(params=["direct", "session", "transaction"])
def route(
    request: pytest.FixtureRequest, pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> str:
    """The test database's URL, straight or through a pooler (two server connections)."""
    if request.param == "direct":
        return pg_database.url
    return pgbouncer(request.param, pool_size=2 if request.param == "transaction" else 10).url_for(
        pg_database.url
    )


@pytest.fixture
def through_transaction_pooler(pg_database: Database, pgbouncer: Callable[..., PgBouncer]) -> str:
    return pgbouncer("transaction", pool_size=2).url_for(pg_database.url)


def hold(url: str, holder: str, ttl: float, seconds: str, wait: float, *flags: str) -> Any:
    """A process taking the lease; `seconds="stdin"` holds it until `let_go(process)`."""
    args = [url, holder, str(ttl), seconds, str(wait), *flags]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.lease_holder", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def let_go(process: Any) -> None:
    process.stdin.write("\n")
    process.stdin.flush()


def first_line(process: Any, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line: str = process.stdout.readline()
        if line:
            return line.strip()
        if process.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"no output; stderr: {process.stderr.read()}")


def test_four_processes_at_once_exactly_one_holds(route: str) -> None:
    # the lease table first, so this is about the lease (two first runs creating the table at
    # one moment is the history table's race: tests/test_pooler.py)
    hold(route, "sqlstage dev warm-up", 10, "0", 0).communicate(timeout=30)
    runs = [hold(route, f"sqlstage dev run{n}", 10, "stdin", 0) for n in range(4)]
    deadline = time.monotonic() + 60
    while sum(run.poll() is not None for run in runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # the winner holds until told; the other three give up at once
    for run in runs:
        if run.poll() is None:
            let_go(run)
    results = [(run.wait(timeout=60), *run.communicate()) for run in runs]

    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 3, 3, 3], results
    winner = next(n for n, (code, _, _) in enumerate(results) if code == 0)
    for code, out, err in results:
        if code == 3:
            assert out == ""
            assert f"is being changed by sqlstage dev run{winner} (pid " in err, err
            assert "changed nothing" in err and err.count("\n") == 1
            assert "Traceback" not in err


def test_a_waiting_process_gets_the_lease_only_after_the_holder_releases(route: str) -> None:
    first = hold(route, "sqlstage dev first", 10, "stdin", 0)
    assert first_line(first).startswith("acquired ")
    second = hold(route, "sqlstage dev second", 10, "0", 60)
    assert first_line(second).startswith("waiting: sqlstage dev first (pid ")
    let_go(first)
    out1, err1 = first.communicate(timeout=30)
    out2, err2 = second.communicate(timeout=30)

    assert (first.returncode, second.returncode) == (0, 0), (err1, err2)
    released = float(out1.split("released ")[1])
    acquired = float(out2.split("acquired ")[1].split()[0])
    assert acquired >= released


def test_an_expired_lease_is_taken_over_and_its_old_holder_stops(
    through_transaction_pooler: str,
) -> None:
    url = through_transaction_pooler
    with connect(url) as a_conn, connect(url) as b_conn:
        a = Lease(a_conn, "sqlstage dev a", ttl_seconds=2)  # no heartbeat: it will expire
        b = Lease(b_conn, "sqlstage dev b", ttl_seconds=30)
        assert a.try_acquire()
        assert not b.try_acquire()
        seen = b.holder()
        assert seen is not None and seen.holder == "sqlstage dev a"

        time.sleep(2.3)
        assert b.holder() is None  # expired: nobody holds it
        assert b.try_acquire()
        with pytest.raises(Locked, match="taken over by sqlstage dev b") as stopped:
            a.verify()
        assert stopped.value.exit_code == 3
        assert not a.renew()
        a.release()  # releasing a lease that is no longer ours leaves the new holder's row
        seen = b.holder()
        assert seen is not None and seen.holder == "sqlstage dev b"
        b.verify()
        b.release()
        assert b.holder() is None


def test_the_heartbeat_keeps_the_lease_and_a_killed_holder_is_taken_over_after_expiry(
    pg_database: Database, through_transaction_pooler: str
) -> None:
    url, ttl = through_transaction_pooler, 4.0
    lease_row = "SELECT holder, acquired_at, heartbeat_at, expires_at, now() FROM sqlstage_lock"
    holder = hold(url, "sqlstage dev doomed", ttl, "stdin", 0)
    assert first_line(holder).startswith("acquired ")
    time.sleep(ttl * 1.25)  # past the first expiry: only the heartbeat keeps it
    [(_, acquired, beat, expires, now)] = pg_database.query(lease_row)
    assert beat > acquired and expires > now
    try_now = hold(url, "sqlstage dev early", ttl, "0", 0)
    _, early_err = try_now.communicate(timeout=30)
    assert try_now.returncode == 3, early_err
    assert "is being changed by sqlstage dev doomed" in early_err

    holder.kill()  # kill -9: no release, the row stays until it expires
    holder.wait()
    [(_, _, _, expired_at, _)] = pg_database.query(lease_row)
    after = hold(url, "sqlstage dev next", ttl, "stdin", 60)
    lines = [first_line(after)]
    if lines[0].startswith("waiting: "):
        assert lines[0].startswith("waiting: sqlstage dev doomed (pid "), lines
        lines.append(first_line(after, timeout=60))
    assert lines[-1].startswith("acquired "), lines
    [(taker, taken_at, _, _, _)] = pg_database.query(lease_row)
    let_go(after)
    after.communicate(timeout=30)

    assert after.returncode == 0
    assert taker == "sqlstage dev next"
    assert taken_at >= expired_at  # taken over, never before the dead holder's lease ran out


def test_no_session_state_many_renewals_on_one_shared_server_connection(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> None:
    """Two clients on one server connection: prepared statements (psycopg's, after five
    executions) or a session lock would collide or leak here."""
    url = pgbouncer("transaction", pool_size=1).url_for(pg_database.url)
    with connect(url) as one, connect(url) as two:
        mine = Lease(one, "sqlstage dev one")
        other = Lease(two, "sqlstage dev two")
        assert mine.try_acquire()
        for _ in range(12):
            assert mine.renew()
            assert not other.try_acquire()
            assert not other.renew()
            mine.verify()
        mine.release()
        assert other.try_acquire()
        other.release()
    advisory = pg_database.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert advisory == [(0,)]
    assert pg_database.query("SELECT count(*) FROM sqlstage_lock") == [(0,)]


def test_the_fence_lets_the_holder_commit_and_stops_a_run_that_lost_its_lease(
    pg_database: Database, through_transaction_pooler: str
) -> None:
    url = through_transaction_pooler
    pg_database.query("CREATE TABLE applied (n INTEGER)")
    with connect(url) as a_conn, connect(url) as b_conn:
        a = Lease(a_conn, "sqlstage dev a", ttl_seconds=2)
        assert a.try_acquire()
        # a migration as the driver sends it: statements, then the fence with COMMIT
        a_conn.execute("BEGIN; INSERT INTO applied VALUES (1)", prepare=False)
        a_conn.execute(f"{a.fence_sql()}; COMMIT", prepare=False)

        time.sleep(2.3)  # a stalls past its expiry; b takes over
        b = Lease(b_conn, "sqlstage dev b")
        assert b.try_acquire()
        a_conn.execute("BEGIN; INSERT INTO applied VALUES (2)", prepare=False)
        with pytest.raises(psycopg.Error) as lost:
            a_conn.execute(f"{a.fence_sql()}; COMMIT", prepare=False)
        a_conn.execute("ROLLBACK", prepare=False)
        b.release()
    assert lost.value.sqlstate == "SQLL1"
    assert "this run lost its run lock" in str(lost.value)
    assert pg_database.query("SELECT n FROM applied") == [(1,)]
