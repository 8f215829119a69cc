"""A migration as one PostgreSQL message: `build` and `locate` against the real server, the
driver's `run_transaction` over them, and what a user sees of it (file:line, the log, one
round trip)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver, StatementError
from sqlstage.drivers.postgres_message import Place, build, literal, locate
from sqlstage.urls import parse_url
from tests.conftest import Database, ProjectDir


class _Counting(psycopg.Cursor[Any]):
    """How many results the server sent, the failing one included (what the driver reads)."""

    count = 0

    def _check_results(self, results: list[Any]) -> None:
        self.count = len(results)
        super()._check_results(results)


@pytest.fixture
def conn(pg_database: Database) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_database.url, autocommit=True) as opened:
        opened.execute("CREATE TABLE t (id int PRIMARY KEY)")
        yield opened


def _failing(conn: psycopg.Connection[Any], statements: list[str]) -> tuple[Place, str]:
    """Send the statements as a migration's message; where `locate` says it failed."""
    message = build(["SET lock_timeout = '5s'", "BEGIN"], statements, ["COMMIT"])
    cursor = _Counting(conn)
    with pytest.raises(psycopg.Error) as caught:
        cursor.execute(message.text, prepare=False)
    if conn.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    position = caught.value.diag.statement_position
    place = locate(message, cursor.count, int(position) if position else None)
    return place, str(caught.value.sqlstate)


def test_an_error_with_a_position_names_its_statement_and_character(
    conn: psycopg.Connection[Any],
) -> None:
    place, code = _failing(conn, ["INSERT INTO t VALUES (1)", "SELECT 1", "SELECT\n  nope FROM t"])
    assert (place, code) == (Place(3, len("SELECT\n  ") + 1), "42703")  # undefined column


def test_a_syntax_error_stops_the_whole_message_and_is_still_found(
    conn: psycopg.Connection[Any],
) -> None:
    place, code = _failing(conn, ["INSERT INTO t VALUES (1)", "SELEC 2 -- typo"])
    assert (place, code) == (Place(2, 1), "42601")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)  # nothing ran


def test_an_error_without_a_position_is_the_last_result(conn: psycopg.Connection[Any]) -> None:
    place, code = _failing(
        conn,
        ["INSERT INTO t VALUES (1)", "SELECT 1 -- trailing comment", "INSERT INTO t VALUES (1)"],
    )
    assert (place, code) == (Place(3), "23505")  # unique violation: no position


def test_a_deferred_constraint_fails_at_commit_in_none_of_the_statements(
    conn: psycopg.Connection[Any],
) -> None:
    place, code = _failing(
        conn,
        [
            "CREATE TABLE c (t_id int REFERENCES t DEFERRABLE INITIALLY DEFERRED)",
            "INSERT INTO c VALUES (42)",
        ],
    )
    assert (place, code) == (Place(None), "23503")


def test_statements_ending_in_a_semicolon_or_a_comment_give_one_result_each(
    conn: psycopg.Connection[Any],
) -> None:
    statements = ["SELECT 1;", "SELECT 2 -- two", "SELECT 3 /* three */"]
    message = build(["BEGIN"], statements, ["COMMIT"])
    cursor = _Counting(conn)
    cursor.execute(message.text, prepare=False)
    assert cursor.count == message.results + 1  # and COMMIT's


@pytest.mark.parametrize("standard", [True, False])
def test_literals_read_back_as_written(conn: psycopg.Connection[Any], standard: bool) -> None:
    conn.execute(f"SET standard_conforming_strings = {'on' if standard else 'off'}")
    text = "it's a \\back\\slash, ''two'' quotes, $$dollars$$, ünïcode, \\' and a\nnewline"
    when = datetime(2026, 12, 1, 10, 22, 31, 42000, tzinfo=UTC)
    values: list[object] = [text, 7, None, True, when]
    sql = "SELECT " + ", ".join(literal(value, standard) for value in values)
    assert conn.execute(sql, prepare=False).fetchone() == (text, 7, None, 1, when)


def test_a_nul_is_refused_not_cut_short() -> None:
    with pytest.raises(ValueError, match="NUL"):
        literal("a\x00b")


# -- the driver ----------------------------------------------------------------------------
@pytest.fixture
def driver(pg_database: Database, tmp_path: Path) -> Iterator[Driver]:
    with connect(parse_url(pg_database.url, tmp_path, "dev")) as opened:
        opened.query("CREATE TABLE t (id int PRIMARY KEY)")
        yield opened


def _history_row(driver: Driver) -> None:
    driver.defer("INSERT INTO t VALUES (%s)", [99])


def test_run_transaction_names_the_failing_statement_and_rolls_back_whole(
    driver: Driver, pg_database: Database
) -> None:
    driver.reset_session()  # the reset travels in the same message, in front
    with pytest.raises(StatementError) as caught:
        driver.run_transaction(
            ["INSERT INTO t VALUES (1)", "INSERT INTO t\n  VALUES (1)"],
            lambda: _history_row(driver),
        )
    assert (caught.value.index, caught.value.position, caught.value.code) == (2, None, "23505")
    assert pg_database.query("SELECT id FROM t") == []
    driver.run_transaction(["SELECT 1"], lambda: _history_row(driver))  # the connection is fine
    assert pg_database.query("SELECT id FROM t") == [(99,)]


def test_run_transaction_position_is_inside_the_statement(driver: Driver) -> None:
    with pytest.raises(StatementError) as caught:
        driver.run_transaction(["SELECT 1", "SELECT\n  missing FROM t"], lambda: None)
    assert (caught.value.index, caught.value.position) == (2, len("SELECT\n  ") + 1)


def test_run_transaction_at_commit_has_no_index(driver: Driver, pg_database: Database) -> None:
    statements = [
        "CREATE TABLE c (t_id int REFERENCES t DEFERRABLE INITIALLY DEFERRED)",
        "INSERT INTO c VALUES (42)",
    ]
    with pytest.raises(StatementError) as caught:
        driver.run_transaction(statements, lambda: _history_row(driver))
    assert (caught.value.index, caught.value.code) == (None, "23503")
    assert "c" not in pg_database.tables()


def test_run_transaction_keeps_notices(driver: Driver) -> None:
    driver.run_transaction(["DO $$ BEGIN RAISE NOTICE 'hello from 001'; END $$"], lambda: None)
    assert driver.notices() == ["NOTICE: hello from 001"]


# -- what the user sees --------------------------------------------------------------------
def test_apply_is_one_round_trip_per_migration_with_file_line_errors_and_notices(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write("001_a.sql", "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);\n")
    project.write(
        "002_notice.sql",
        "DO $$ BEGIN RAISE NOTICE 'two says hi'; END $$;\nINSERT INTO a VALUES (2);\n",
    )
    project.write(
        "003_dup.sql",
        "INSERT INTO a VALUES (3);\n\n-- the same key again\nINSERT INTO a\n  VALUES (1);\n",
    )

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 1
    assert "003_dup.sql:4: duplicate key value violates unique constraint" in result.stderr
    assert pg_database.history() == ["001_a", "002_notice"]
    assert pg_database.query("SELECT id FROM a ORDER BY id") == [(1,), (2,)]
    durations = pg_database.query("SELECT duration_ms FROM sqlstage_history")
    assert all(isinstance(d, int) and d >= 0 for (d,) in durations)
    [log] = project.logs()
    text = log.read_text()
    assert "NOTICE: two says hi" in text
    assert "  line 1: DO $$ BEGIN RAISE NOTICE" in text
    assert "ERROR at line 4: duplicate key value" in text
    assert "FAILED 003_dup: rolled back whole" in text


def test_run_transaction_sends_one_message(driver: Any, tmp_path: Path) -> None:
    """libpq's own trace of what went to the server: one Query for the session reset, the
    migration, its history row and COMMIT (and no other message)."""
    trace = tmp_path / "trace"
    with trace.open("w") as out:
        driver.conn.pgconn.trace(out.fileno())
        driver.reset_session()
        driver.run_transaction(["CREATE TABLE x (i int)", "SELECT 1"], lambda: _history_row(driver))
        driver.conn.pgconn.untrace()
    sent = [line.split("\t")[3] for line in trace.read_text().splitlines() if "\tF\t" in line]
    assert sent == ["Query"]
