"""The MySQL/MariaDB driver on the real server: connecting, errors, running a file, the run
lock, lock_timeout, history, the identity marker and backups."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver, StatementError
from sqlstage.errors import ConfigError, ConnectionFailed, Locked, Refused
from sqlstage.history import AppliedMigration, History, Status, read_marker, write_marker
from sqlstage.urls import parse_url
from tests.conftest import Database
from tests.test_mysql_statements import HARD_CASES


def open_driver(url: str, tmp_path: Path, name: str = "sqlstage dev") -> Driver:
    return connect(parse_url(url, tmp_path, "dev"), name)


@pytest.fixture
def driver(mysql_database: Database, tmp_path: Path) -> Iterator[Driver]:
    with open_driver(mysql_database.url, tmp_path) as opened:
        yield opened


@pytest.fixture
def app_user(mysql_database: Database) -> Iterator[tuple[str, str]]:
    """A user with a password, allowed into the test database only."""
    name, password = f"sqlstage_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    database = mysql_database.url.rsplit("/", 1)[1]
    mysql_database.query(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
    mysql_database.query(f"GRANT ALL ON `{database}`.* TO '{name}'@'%'")
    try:
        yield name, password
    finally:
        mysql_database.query(f"DROP USER '{name}'@'%'")


def with_user(url: str, user: str, password: str) -> str:
    return url.replace("root@", f"{user}:{password}@", 1)


def test_the_connection_line_names_product_version_database_host_and_user(
    driver: Driver, mysql_database: Database
) -> None:
    version = str(mysql_database.query("SELECT VERSION()")[0][0])
    database = mysql_database.url.rsplit("/", 1)[1]
    expected_version = version.split("-")[0]
    product = "MariaDB" if "MariaDB" in version else "MySQL"
    assert driver.info().describe() == (
        f"{product} {expected_version} · database {database} on 127.0.0.1:3306 as root"
    )


def test_mariadb_scheme_and_a_unix_socket_connect_too(
    mysql_database: Database, tmp_path: Path
) -> None:
    socket = str(mysql_database.query("SELECT @@socket")[0][0])
    assert Path(socket).exists(), f"the server's socket {socket} is missing"
    database = mysql_database.url.rsplit("/", 1)[1]
    url = mysql_database.url.replace("mysql://", "mariadb://", 1) + f"?unix_socket={socket}"
    with open_driver(url, tmp_path) as opened:
        assert opened.info().host == socket
        assert opened.query("SELECT DATABASE()")[0][0] == database


def test_a_wrong_password_is_exit_4_and_never_shown(
    mysql_database: Database, app_user: tuple[str, str], tmp_path: Path
) -> None:
    user, password = app_user
    wrong = f"{password}-wrong"
    with pytest.raises(ConnectionFailed) as caught:
        open_driver(with_user(mysql_database.url, user, wrong), tmp_path)
    assert caught.value.exit_code == 4
    assert "Access denied" in str(caught.value) and ":***@" in str(caught.value)
    assert wrong not in str(caught.value) and password not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda url: url.rsplit("/", 1)[0] + "/sqlstage_no_such_db", "Unknown database"),
        (lambda url: url.replace(":3306", ":1"), "Can't connect"),
    ],
)
def test_a_missing_database_or_server_is_exit_4(
    mysql_database: Database, tmp_path: Path, change: Any, words: str
) -> None:
    with pytest.raises(ConnectionFailed, match=words) as caught:
        open_driver(change(mysql_database.url), tmp_path)
    assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    ("suffix", "words"),
    [("?sslmode=sometimes", "unknown ssl-mode"), ("?colour=blue", "unknown URL parameter")],
)
def test_a_bad_url_parameter_is_a_config_error(
    mysql_database: Database, tmp_path: Path, suffix: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words) as caught:
        open_driver(mysql_database.url + suffix, tmp_path)
    assert caught.value.exit_code == 2


def test_a_url_without_a_database_is_a_config_error(
    mysql_database: Database, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="names no database") as caught:
        open_driver(mysql_database.url.rsplit("/", 1)[0] + "/", tmp_path)
    assert caught.value.exit_code == 2


def test_a_file_split_and_executed_leaves_its_tables_and_routines(
    driver: Driver, mysql_database: Database
) -> None:
    for case in ("trigger with inner semicolons", "procedure followed by an ALTER"):
        for statement in driver.statements(HARD_CASES[case]):
            driver.execute(statement.sql)
    assert mysql_database.tables() == {"accounts", "users"}
    mysql_database.query("UPDATE accounts SET balance = 5")
    assert mysql_database.query("SELECT touched FROM accounts") == [(1,)]
    assert mysql_database.query("SELECT email FROM users") == [("a@example.com",)]


SYNTAX_ERROR = "CREATE TABLE t (\n  id INT,\n  name VARCHAR(10) NOT NULL DEFALT 'x'\n)"


def test_a_failing_statement_carries_the_server_code_message_and_position(
    driver: Driver,
) -> None:
    with pytest.raises(StatementError) as caught:
        driver.execute(SYNTAX_ERROR)
    error = caught.value
    assert error.code == "1064" and "syntax" in error.message
    assert error.position is not None
    assert f"near '{SYNTAX_ERROR[error.position - 1 :]}' at line 3" in error.message


def test_dml_in_a_transaction_rolls_back_together(driver: Driver, mysql_database: Database) -> None:
    driver.execute("CREATE TABLE t (x INT PRIMARY KEY)")
    with pytest.raises(StatementError), driver.transaction():
        driver.execute("INSERT INTO t VALUES (1)")
        driver.execute("INSERT INTO t VALUES (1)")
    assert mysql_database.query("SELECT COUNT(*) FROM t") == [(0,)]
    assert driver.facts.transactional_ddl is False


def test_the_run_lock_excludes_a_second_run_and_names_the_holder(
    mysql_database: Database, tmp_path: Path
) -> None:
    with open_driver(mysql_database.url, tmp_path, "sqlstage dev alice@laptop") as first:
        first.lock(0)
        holder_id = first.query("SELECT CONNECTION_ID()")[0][0]
        with open_driver(mysql_database.url, tmp_path) as second:
            told: list[str] = []
            started = time.monotonic()
            with pytest.raises(Locked) as caught:
                second.lock(0.6, told.append)
            assert 0.5 < time.monotonic() - started < 3
            assert caught.value.exit_code == 3
            assert f"connection {holder_id}" in str(caught.value)
            assert told and f"KILL {holder_id}" in told[0]
            first.unlock()
            second.lock(0)  # free again
            second.unlock()


def test_the_run_lock_is_per_database_and_dies_with_its_session(
    mysql_database: Database, mysql_database2: Database, tmp_path: Path
) -> None:
    first = open_driver(mysql_database.url, tmp_path)
    first.lock(0)
    with open_driver(mysql_database2.url, tmp_path) as elsewhere:
        elsewhere.lock(0)  # another database: not blocked
        elsewhere.unlock()
    first.close()  # the session ends (as on kill -9): the server frees the lock
    with open_driver(mysql_database.url, tmp_path) as after:
        after.lock(2)
        after.unlock()


def test_lock_timeout_stops_ddl_waiting_behind_a_transaction(
    driver: Driver, mysql_database: Database, tmp_path: Path
) -> None:
    driver.execute("CREATE TABLE busy (x INT)")
    with open_driver(mysql_database.url, tmp_path) as other, other.transaction():
        other.execute("SELECT * FROM busy")  # holds a metadata lock until it ends
        driver.set_lock_timeout("1s")
        started = time.monotonic()
        with pytest.raises(StatementError) as caught:
            driver.execute("ALTER TABLE busy ADD COLUMN y INT")
        waited = time.monotonic() - started
    assert caught.value.code in driver.facts.lock_timeout_codes
    assert 0.9 < waited < 5
    assert driver.query("SELECT @@SESSION.innodb_lock_wait_timeout")[0][0] == 1
    driver.set_lock_timeout(None)
    [(session, default, row, row_default)] = driver.query(
        "SELECT @@SESSION.lock_wait_timeout, @@GLOBAL.lock_wait_timeout, "
        "@@SESSION.innodb_lock_wait_timeout, @@GLOBAL.innodb_lock_wait_timeout"
    )
    assert (session, row) == (default, row_default)


def test_lock_timeout_stops_dml_waiting_for_a_row_lock_and_reset_restores_the_default(
    driver: Driver, mysql_database: Database, tmp_path: Path
) -> None:
    driver.execute("CREATE TABLE rows_ (id INT PRIMARY KEY, n INT)")
    driver.execute("INSERT INTO rows_ VALUES (1, 0)")
    with open_driver(mysql_database.url, tmp_path) as other, other.transaction():
        other.execute("UPDATE rows_ SET n = 1 WHERE id = 1")  # holds the row lock
        driver.set_lock_timeout("1s")
        with pytest.raises(StatementError) as caught, driver.transaction():
            driver.execute("UPDATE rows_ SET n = 2 WHERE id = 1")
    assert caught.value.code in driver.facts.lock_timeout_codes
    driver.set_lock_timeout(None)
    [(session, default)] = driver.query(
        "SELECT @@SESSION.innodb_lock_wait_timeout, @@GLOBAL.innodb_lock_wait_timeout"
    )
    assert session == default


def test_history_rows_round_trip(driver: Driver) -> None:
    history = History(driver)
    history.ensure()
    history.ensure()  # idempotent
    row = AppliedMigration(
        "001_create_users",
        "sha256:" + "a" * 64,
        datetime(2026, 12, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "alice@laptop",
        42,
        "0.1.0",
        note="first " + "x" * 70_000,  # longer than TEXT
    )
    big = "CREATE TABLE users (id INT);" + " " * 70_000
    with driver.transaction():
        history.record(row, big)
    assert history.read() == [row]
    assert history.applied_sql("001_create_users") == big
    history.update(replace(row, status=Status.FAILED, statements_done=2))
    assert history.read()[0].status == Status.FAILED
    history.forget("001_create_users")
    assert history.read() == []


def test_the_identity_marker_is_written_and_read(driver: Driver) -> None:
    assert not read_marker(driver).present
    write_marker(driver, "pro", True, "alice@laptop")
    write_marker(driver, "pro", True, "alice@laptop")
    marker = read_marker(driver)
    assert (marker.environment, marker.protected) == ("pro", True)


def test_a_backup_holds_the_schema_and_the_password_never_reaches_argv(
    mysql_database: Database,
    app_user: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, password = app_user
    commands: list[list[str]] = []
    real_run = subprocess.run

    def recording_run(command: list[str], *args: Any, **kwargs: Any) -> Any:
        commands.append(command)
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", recording_run)
    target = tmp_path / "pro.sql"
    with open_driver(with_user(mysql_database.url, user, password), tmp_path) as opened:
        opened.execute("CREATE TABLE kept (id INT PRIMARY KEY)")
        opened.execute("INSERT INTO kept VALUES (7)")
        opened.check_backup()
        opened.backup(target)
    text = target.read_text(encoding="utf-8")
    assert "CREATE TABLE `kept`" in text and "INSERT INTO `kept` VALUES" in text
    assert commands and all(password not in " ".join(c) for c in commands)
    assert "--single-transaction" in commands[-1]
    assert not list(tmp_path.glob("**/client.cnf"))  # the 0600 file is gone


def test_a_failed_backup_is_refused_and_leaves_no_file(
    driver: Driver, mysql_database: Database, tmp_path: Path
) -> None:
    database = mysql_database.url.rsplit("/", 1)[1]
    driver.execute(f"DROP DATABASE `{database}`")
    target = tmp_path / "gone.sql"
    with pytest.raises(Refused, match="nothing was applied") as caught:
        driver.backup(target)
    assert caught.value.exit_code == 3 and not target.exists()


def test_two_runs_racing_for_the_lock_take_turns(mysql_database: Database, tmp_path: Path) -> None:
    order: list[str] = []

    def run(name: str) -> None:
        with open_driver(mysql_database.url, tmp_path, name) as opened:
            opened.lock(10)
            order.append(f"{name} in")
            time.sleep(0.3)
            order.append(f"{name} out")
            opened.unlock()

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert order[0].endswith("in") and order[1] == order[0].replace("in", "out")


def test_reset_session_restores_settings_and_keeps_the_run_lock(
    driver: Driver, mysql_database: Database, tmp_path: Path
) -> None:
    driver.lock(1)
    driver.set_lock_timeout("3s")
    driver.execute("SET SESSION sql_mode = '', time_zone = '+05:00', foreign_key_checks = 0")
    driver.reset_session()
    [(mode, default_mode, zone, checks, wait)] = driver.query(
        "SELECT @@SESSION.sql_mode, @@GLOBAL.sql_mode, @@SESSION.time_zone, "
        "@@SESSION.foreign_key_checks, @@SESSION.lock_wait_timeout"
    )
    assert (mode, checks, wait) == (default_mode, 1, 3) and zone != "+05:00"
    with open_driver(mysql_database.url, tmp_path) as other, pytest.raises(Locked):
        other.lock(0)
    driver.unlock()
