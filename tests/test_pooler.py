"""Connection poolers: PgBouncer from Debian's package in front of the test server.

Detection (sqlstage/pooler.py) through a direct connection and PgBouncer in both modes; the
refusal's one line; `sqlstage` through a session pooler working as on a direct connection,
refusing a transaction pooler unless the environment says `pooler = "transaction"`, and then
running each migration exactly once with a lease row as the run lock and no session state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sqlstage.errors import ConfigError, ExitCode
from sqlstage.pooler import PoolerKind, check_setting, detect, refusal
from tests.conftest import Database, ProjectDir
from tests.pooler_fixtures import PgBouncer
from tests.processes import start


def connect(url: str) -> Any:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None, connect_timeout=5)


def opener(url: str) -> Callable[[], Any]:
    return lambda: connect(url)


def test_the_fixture_runs_pgbouncer_in_the_mode_asked(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> None:
    for mode in ("session", "transaction"):
        pooler = pgbouncer(mode)
        with connect(pooler.url_for(pg_database.url)) as conn:
            row = conn.execute("SELECT current_database(), pg_backend_pid()").fetchone()
            key_pid = conn.info.backend_pid
        assert row is not None and row[0] == pg_database.url.rsplit("/", 1)[1]
        # the cancel key PgBouncer makes up is not the server's pid: we really went through it
        assert key_pid != row[1]
        assert f"pool_mode = {mode}" in (pooler.folder / "pgbouncer.ini").read_text()
        pooler.stop()
        assert pooler.process.poll() is not None and not pooler.folder.exists()


def test_direct_connection_is_direct_and_left_as_it_was(pg_database: Database) -> None:
    with connect(pg_database.url) as conn:
        found = detect(conn, opener(pg_database.url))
        setting = conn.execute("SELECT current_setting('sqlstage.probe', true)").fetchone()
    assert found.kind is PoolerKind.DIRECT and found.keeps_session
    assert setting in {("",), (None,)}
    assert pg_database.tables() == set()


def test_session_pooler_is_found_and_keeps_the_session(
    pg_database: Database, session_pooler: PgBouncer
) -> None:
    url = session_pooler.url_for(pg_database.url)
    with connect(url) as conn:
        found = detect(conn, opener(url))
    assert found.kind is PoolerKind.SESSION and found.keeps_session
    assert pg_database.tables() == set()


@pytest.mark.parametrize("pool_size", [1, 3])
def test_transaction_pooler_is_found_even_with_one_server_connection(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer], pool_size: int
) -> None:
    url = pgbouncer("transaction", pool_size=pool_size).url_for(pg_database.url)
    with connect(url) as conn:
        found = detect(conn, opener(url))
    assert found.kind is PoolerKind.TRANSACTION and not found.keeps_session
    assert "another client connection was handed this connection's server session" in (
        found.evidence
    )
    assert pg_database.tables() == set()


@pytest.fixture
def busy() -> Iterator[Callable[[str, int], None]]:
    """`busy(url, n)`: n other clients running short transactions until the test ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def traffic(url: str) -> None:
        with connect(url) as conn:
            while not stop.is_set():
                conn.execute("SELECT pg_sleep(0.002)")

    def start(url: str, clients: int) -> None:
        for _ in range(clients):
            threads.append(threading.Thread(target=traffic, args=(url,), daemon=True))
            threads[-1].start()

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def test_a_busy_transaction_pool_is_found_every_time(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer], busy: Callable[[str, int], None]
) -> None:
    """Other clients take our server connection between our transactions; one probe round
    missed about one time in five here, so the rounds repeat."""
    url = pgbouncer("transaction", pool_size=2).url_for(pg_database.url)
    busy(url, 3)
    kinds = []
    for _ in range(30):
        with connect(url) as conn:
            kinds.append(detect(conn, opener(url)).kind)
    assert kinds == [PoolerKind.TRANSACTION] * 30


def test_a_busy_session_pool_is_still_a_session_pool(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer], busy: Callable[[str, int], None]
) -> None:
    url = pgbouncer("session", pool_size=10).url_for(pg_database.url)
    busy(url, 3)
    kinds = []
    for _ in range(10):
        with connect(url) as conn:
            kinds.append(detect(conn, opener(url)).kind)
    assert kinds == [PoolerKind.SESSION] * 10


def test_a_setting_lost_between_transactions_is_a_transaction_pooler(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> None:
    """PgBouncer resetting each server connection after every transaction (DISCARD ALL):
    one connection is enough to tell."""
    pooler = pgbouncer("transaction", extra=("server_reset_query_always = 1",))
    with connect(pooler.url_for(pg_database.url)) as conn:
        found = detect(conn)
    assert found.kind is PoolerKind.TRANSACTION
    assert found.evidence == "a session setting did not survive the end of a transaction"


def test_a_pooler_whose_mode_cannot_be_checked_counts_as_a_transaction_pooler(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> None:
    """Without a second connection, or when a full session pool keeps it waiting, the mode
    is unknown, and the safe answer is the one that refuses."""
    pooler = pgbouncer("session", pool_size=1)
    url = pooler.url_for(pg_database.url)
    with connect(url) as conn:
        alone = detect(conn)
        queued = detect(conn, opener(url))
    assert alone.kind is PoolerKind.TRANSACTION and "could not be checked" in alone.evidence
    assert queued.kind is PoolerKind.TRANSACTION and "waited 3 s" in queued.evidence


def test_the_refusal_is_one_line_exit_4_naming_every_fix(
    pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> None:
    url = pgbouncer("transaction").url_for(pg_database.url)
    with connect(url) as conn:
        found = detect(conn, opener(url))
    error = refusal("dev", "postgresql://app:***@db.example.com:6543/postgres", found)
    text = str(error)
    assert error.exit_code == ExitCode.CANNOT_CONNECT == 4
    assert "\n" not in text
    assert text.startswith("dev: postgresql://app:***@db.example.com:6543/postgres goes through")
    assert "transaction-mode connection pooler" in text and "nothing was changed" in text
    for fix in (
        "db.<project-ref>.supabase.co:5432",
        "6543",
        "without -pooler",
        "pool_mode = session",
        'pooler = "transaction" in [environments.dev] of sqlstage.toml',
    ):
        assert fix in text, fix


def test_a_bad_pooler_setting_is_a_config_error_naming_the_values() -> None:
    assert check_setting("transaction", "dev") == "transaction"
    with pytest.raises(ConfigError) as bad:
        check_setting("yes", "pro")
    assert bad.value.exit_code == 2
    assert "pooler = 'yes' in [environments.pro]" in str(bad.value)
    assert "'detect', 'transaction'" in str(bad.value)


# -- the CLI through PgBouncer ------------------------------------------------------------------
COUNTER_MIGRATIONS = 20
#: the counter after all of them: nine UPDATEs in a transaction, one outside any
COUNTED = 10


def write_counter_migrations(project: ProjectDir) -> None:
    """20 migrations, every other one an UPDATE without DDL, the last one outside a
    transaction (no history row of its own commits with its UPDATE): run twice, it would
    show."""
    project.write("001_counter.sql", "CREATE TABLE counter (n INTEGER NOT NULL);\n")
    project.write("002_seed.sql", "INSERT INTO counter VALUES (0);\n")
    for number in range(3, COUNTER_MIGRATIONS):
        body = (
            "UPDATE counter SET n = n + 1;\n"
            if number % 2
            else f"CREATE TABLE t{number} (id INTEGER);\n"
        )
        project.write(f"{number:03d}_step{number}.sql", body)
    project.write(
        f"{COUNTER_MIGRATIONS:03d}_outside.sql",
        "-- sqlstage:no-transaction\nUPDATE counter SET n = n + 1;\n"
        "CREATE INDEX CONCURRENTLY counter_n ON counter (n);\n",
    )


def two_concurrent_applies(project: ProjectDir) -> list[tuple[int, str, str]]:
    runs = [start(project, "apply", "dev", "--yes", "--lock-wait", "60") for _ in range(2)]
    return [(run.wait(timeout=120), *run.communicate()) for run in runs]


def test_apply_through_a_session_pooler_works_as_on_a_direct_connection(
    project: ProjectDir, pg_database: Database, session_pooler: PgBouncer
) -> None:
    write_counter_migrations(project)
    project.configure(dev={"url": session_pooler.url_for(pg_database.url)})

    results = two_concurrent_applies(project)

    assert [code for code, _, _ in results] == [0, 0], results
    outputs = [out for _, out, _ in results]
    assert sum(f"Applied {COUNTER_MIGRATIONS} migrations" in out for out in outputs) == 1, outputs
    assert sum("dev is up to date" in out for out in outputs) == 1, outputs
    assert not any("Traceback" in err for _, _, err in results)
    assert len(pg_database.history()) == COUNTER_MIGRATIONS
    assert pg_database.query("SELECT n FROM counter") == [(COUNTED,)]
    again = project.run("apply", "dev", "--yes")
    assert again.exit_code == 0 and "dev is up to date" in again.output


def test_apply_through_a_transaction_pooler_refuses_and_changes_nothing(
    project: ProjectDir, pg_database: Database, transaction_pooler: PgBouncer
) -> None:
    write_counter_migrations(project)
    url = transaction_pooler.url_for(pg_database.url)
    project.configure(dev={"url": url})

    for command in (["apply", "dev", "--yes"], ["check", "dev"], ["status", "--live", "dev"]):
        result = project.run(*command)

        assert result.exit_code == 4, (command, result.output)
        [line] = result.output.splitlines()
        assert line.startswith(f"error: dev: {url} goes through a transaction-mode connection")
        assert "nothing was changed" in line
        assert 'pooler = "transaction" in [environments.dev]' in line
        assert "Traceback" not in result.output
    assert pg_database.tables() == set()
    assert not project.status_file.exists()
    assert project.logs() == []


def test_a_bad_pooler_value_in_the_config_is_exit_2_before_connecting(
    project: ProjectDir, pg_database: Database
) -> None:
    project.write("001_a.sql", "CREATE TABLE a (id INTEGER);\n")
    project.configure(dev={"url": pg_database.url, "pooler": "session"})

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 2, result.output
    assert "pooler = 'session' in [environments.dev] of sqlstage.toml" in result.output
    assert pg_database.tables() == set()


def test_allowed_transaction_pooler_two_applies_run_each_migration_once(
    project: ProjectDir, pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> None:
    # room for both runs and their lease heartbeats: in a pool of 2 a heartbeat can starve
    # behind the runs under load, its lease expire and the other run take over (see README)
    pooler = pgbouncer("transaction", pool_size=4)
    for trial in range(20):
        name = f"{pg_database.url.rsplit('/', 1)[1]}_{trial}"
        pg_database.query(f'CREATE DATABASE "{name}"')
        direct = Database("postgresql", pg_database.url.rsplit("/", 1)[0] + f"/{name}")
        try:
            project.status_file.unlink(missing_ok=True)
            write_counter_migrations(project)
            (project.root / "sqlstage.toml").write_text(
                f'[environments.dev]\nurl = "{pooler.url_for(direct.url)}"\n'
                'pooler = "transaction"\n',
                encoding="utf-8",
            )
            results = two_concurrent_applies(project)
            codes = sorted(code for code, _, _ in results)
            assert codes in ([0, 0], [0, 3]), (trial, results)
            assert not any("Traceback" in err for _, _, err in results), (trial, results)
            assert len(direct.history()) == COUNTER_MIGRATIONS, trial
            assert direct.query("SELECT n FROM counter") == [(COUNTED,)], trial
            outputs = [out for _, out, _ in results]
            assert sum(f"Applied {COUNTER_MIGRATIONS} migrations" in o for o in outputs) == 1
            assert direct.query("SELECT count(*) FROM sqlstage_lock") == [(0,)], trial
        finally:
            pg_database.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_allowed_transaction_pooler_leaves_no_session_state_behind(
    project: ProjectDir, pg_database: Database, pgbouncer: Callable[..., PgBouncer]
) -> None:
    """One server connection for every client: a session SET, an advisory lock or a
    prepared statement of ours would be seen by the next client. lock_timeout and the
    connection check are SET LOCAL in each migration's transaction; a migration outside a
    transaction runs without them, and the plan says so."""
    url = pgbouncer("transaction", pool_size=1).url_for(pg_database.url)
    project.configure(dev={"url": url, "pooler": "transaction", "lock_timeout": "5s"})
    seen = (
        "SELECT current_setting('lock_timeout'), "
        "current_setting('client_connection_check_interval')"
    )
    project.write("001_seen.sql", "CREATE TABLE seen (lock_timeout TEXT, check_interval TEXT);\n")
    project.write("002_inside.sql", f"INSERT INTO seen {seen};\n")
    project.write("003_outside.sql", f"-- sqlstage:no-transaction\nINSERT INTO seen {seen};\n")

    planned = project.run("apply", "dev", "--dry-run")
    result = project.run("apply", "dev", "--yes")

    assert planned.exit_code == 0, planned.output
    assert "warning: 003_outside runs outside a transaction through a transaction pooler" in (
        planned.output
    )
    assert "without lock_timeout 5s" in planned.output
    assert result.exit_code == 0, result.output
    assert pg_database.query("SELECT * FROM seen") == [("5s", "1s"), ("0", "0")]
    with connect(url) as other:  # the next client of the one server connection
        assert other.execute(seen).fetchone() == ("0", "0")
        assert other.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
        advisory = (  # pg_locks is cluster-wide: this database's only
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert other.execute(advisory).fetchone() == (0,)
    assert pg_database.query("SELECT count(*) FROM sqlstage_lock") == [(0,)]
    assert len(pg_database.history()) == 3


def test_allowed_transaction_pooler_a_second_run_is_told_who_holds_the_lease(
    project: ProjectDir, pg_database: Database, transaction_pooler: PgBouncer
) -> None:
    url = transaction_pooler.url_for(pg_database.url)
    project.configure(dev={"url": url, "pooler": "transaction"})
    project.write("001_slow.sql", "CREATE TABLE slow (id INTEGER);\nSELECT pg_sleep(4);\n")
    first = start(project, "apply", "dev", "--yes")
    deadline = time.monotonic() + 30
    running = (  # the first run is inside its migration, so it holds the lease
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(4)%' "
        "AND pid <> pg_backend_pid() AND datname = current_database()"
    )
    while pg_database.query(running) != [(1,)]:
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)

    second = project.run("apply", "dev", "--yes", "--lock-wait", "0")
    code = first.wait(timeout=60)

    assert second.exit_code == 3, second.output
    [line] = [text for text in second.output.splitlines() if text.startswith("error: ")]
    assert f"{url} is being changed by sqlstage dev " in line
    assert " on " in line and "changed nothing" in line  # the lease row's pid and host
    assert code == 0, first.communicate()
    assert pg_database.history() == ["001_slow"]


def test_allowed_transaction_pooler_a_run_that_lost_its_lease_cannot_commit(
    pg_database: Database, transaction_pooler: PgBouncer
) -> None:
    """The fence travels with each migration's COMMIT: a run that stalled past its lease's
    expiry, taken over meanwhile, has its migration rolled back."""
    from sqlstage.drivers import connect as open_driver
    from sqlstage.drivers.base import StatementError
    from sqlstage.drivers.postgres import PostgresDriver
    from sqlstage.lease import Lease
    from sqlstage.urls import parse_url

    url = transaction_pooler.url_for(pg_database.url)
    driver = open_driver(
        parse_url(url, Path("."), "dev"), "sqlstage dev a", pooler="transaction", environment="dev"
    )
    try:
        assert isinstance(driver, PostgresDriver) and driver.lease is not None
        driver.lease.ttl = 1.0
        driver.lease._connect = None  # no heartbeat: the run stalls past its expiry
        driver.lock(0)
        with driver.transaction():
            driver.execute("CREATE TABLE kept (id INTEGER)")
        time.sleep(1.3)
        with connect(url) as other:
            assert Lease(other, "sqlstage dev b").try_acquire()
            with pytest.raises(StatementError) as lost, driver.transaction():
                driver.execute("CREATE TABLE lost (id INTEGER)")
    finally:
        driver.close()
    assert lost.value.code == "SQLL1" and "lost its run lock" in lost.value.message
    assert pg_database.tables() >= {"kept", "sqlstage_lock"}
    assert "lost" not in pg_database.tables()
