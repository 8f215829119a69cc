"""Migrations that cannot run in a transaction: detected from the parse tree, run statement
by statement, recorded `failed` when they stop midway, and repaired by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlstage.pgparse import postgres_reason
from tests.conftest import Database, ProjectDir


@pytest.fixture
def pg(project: ProjectDir, pg_database: Database) -> ProjectDir:
    project.configure(dev={"url": pg_database.url})
    project.write("001_items.sql", "CREATE TABLE items (id int, name text);\n")
    return project


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (x)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently if not exists i on t (x)", "CREATE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY i", "REINDEX CONCURRENTLY"),
        ("REINDEX (CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY"),
        ("VACUUM (ANALYZE) t", "VACUUM"),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
        ("CREATE DATABASE other", "CREATE DATABASE"),
        ("CREATE INDEX i ON t (x)", None),
        ("ANALYZE t", None),
        ("DROP INDEX i", None),
        ("SELECT 'CREATE INDEX CONCURRENTLY i ON t (x)'", None),
        ("-- VACUUM\nSELECT 1", None),
    ],
)
def test_reasons_come_from_the_parse_tree(sql: str, reason: str | None) -> None:
    assert postgres_reason(sql) == reason


def test_create_index_concurrently_applies_outside_a_transaction(
    pg: ProjectDir, pg_database: Database
) -> None:
    pg.write("002_items_name.sql", "CREATE INDEX CONCURRENTLY items_name ON items (name);\n")

    result = pg.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert "no transaction: each statement commits on its own" in result.output
    assert pg_database.query(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'items_name'::regclass"
    ) == [(True,)]
    assert pg_database.history() == ["001_items", "002_items_name"]


def test_mixing_without_the_directive_is_a_file_error_naming_the_line(
    pg: ProjectDir, pg_database: Database
) -> None:
    pg.write(
        "002_mixed.sql",
        "ALTER TABLE items ADD COLUMN kind text;\n\nCREATE INDEX CONCURRENTLY k ON items (kind);\n",
    )

    result = pg.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert "002_mixed.sql:3: CREATE INDEX CONCURRENTLY cannot run inside a transaction" in (
        result.output
    )
    assert "-- sqlstage:no-transaction" in result.output
    assert pg_database.history() == []  # refused before anything ran, 001 included


def test_directive_lets_a_mixed_migration_run_statement_by_statement(
    pg: ProjectDir, pg_database: Database
) -> None:
    pg.write(
        "002_mixed.sql",
        "-- sqlstage:no-transaction\nALTER TABLE items ADD COLUMN kind text;\n"
        "CREATE INDEX CONCURRENTLY k ON items (kind);\n",
    )
    result = pg.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert pg_database.history() == ["001_items", "002_mixed"]


def test_failure_midway_is_recorded_and_blocks_until_repair(
    pg: ProjectDir, pg_database: Database
) -> None:
    pg.write(
        "002_half.sql",
        "-- sqlstage:no-transaction\nCREATE TABLE kept (x int);\nCREATE INDEX CONCURRENTLY "
        "bad ON nowhere (x);\nCREATE TABLE never (x int);\n",
    )
    pg.write("003_next.sql", "CREATE TABLE later (x int);\n")

    failed = pg.run("apply", "dev", "--yes")
    assert failed.exit_code == 1
    assert '002_half.sql:3: relation "nowhere" does not exist' in failed.output
    assert "1 of 3 statement(s) had committed" in failed.output
    assert "sqlstage repair dev 002_half --resume` to run statements 2-3" in failed.output
    assert "--mark-applied" in failed.output
    row = pg_database.query(
        "SELECT status, note FROM sqlstage_history WHERE migration = '002_half'"
    )
    assert row[0][0] == "failed" and "failed at statement 2 of 3 (line 3)" in row[0][1]
    assert "kept" in pg_database.tables() and "never" not in pg_database.tables()
    assert "002_half" not in pg.status_json()["environments"]["dev"]["applied"]
    assert pg.status_json()["environments"]["dev"]["failed"] == ["002_half"]
    offline = pg.run("status")  # seen without credentials too
    assert "FAILED" in offline.output
    assert "002_half failed midway on dev: it is blocked until" in offline.stderr
    assert "sqlstage repair dev 002_half --resume`" in offline.stderr

    blocked = pg.run("apply", "dev", "--yes")
    assert blocked.exit_code == 3
    assert "002_half stopped midway on dev" in blocked.output
    assert "statements 1-1 of 3 committed, statement 2 (line 3) and after did not" in (
        blocked.output
    )
    assert "later" not in pg_database.tables()

    pg_database.query("CREATE TABLE never (x int)")  # the user finishes it by hand
    repaired = pg.run("repair", "dev", "002_half", "--mark-applied", "--yes")
    assert repaired.exit_code == 0, repaired.output
    assert "marked 002_half applied on dev" in repaired.output
    assert pg.status_json()["environments"]["dev"]["lastApplied"] == "002_half"
    assert "failed" not in pg.status_json()["environments"]["dev"]

    assert pg.run("apply", "dev", "--yes").exit_code == 0
    assert "later" in pg_database.tables()


def test_forget_makes_a_failed_migration_pending_again(
    pg: ProjectDir, pg_database: Database
) -> None:
    pg.write("002_idx.sql", "CREATE INDEX CONCURRENTLY i ON nowhere (x);\n")
    assert pg.run("apply", "dev", "--yes").exit_code == 1

    forgot = pg.run("repair", "dev", "2", "--forget", "--yes")
    assert forgot.exit_code == 0, forgot.output
    assert "forgot 002_idx on dev" in forgot.output

    pg.write("002_idx.sql", "CREATE INDEX CONCURRENTLY i ON items (name);\n")
    result = pg.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert pg_database.history() == ["001_items", "002_idx"]


def test_sqlite_vacuum_runs_outside_a_transaction(project: ProjectDir, database: Database) -> None:
    project.configure(dev={"url": database.url})
    project.write("001_t.sql", "CREATE TABLE t (x INTEGER);\n")
    project.write("002_vacuum.sql", "VACUUM;\n" if database.dialect == "sqlite" else "VACUUM t;\n")

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert database.history() == ["001_t", "002_vacuum"]


CONCURRENT_INDEX = """\
CREATE INDEX CONCURRENTLY items_name ON items (name);

-- rollback
-- DROP INDEX CONCURRENTLY items_name;
"""


def test_concurrent_rollback_runs_outside_a_transaction(
    pg: ProjectDir, pg_database: Database
) -> None:
    pg.write("002_items_name.sql", CONCURRENT_INDEX)
    assert pg.run("apply", "dev", "--yes").exit_code == 0

    result = pg.run("rollback", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert pg_database.query("SELECT to_regclass('items_name') IS NULL") == [(True,)]
    assert pg_database.history() == ["001_items"]


def test_verify_round_trips_a_concurrent_index(pg: ProjectDir) -> None:
    pg.write("002_items_name.sql", CONCURRENT_INDEX)
    pg.write(
        "001_items.sql",
        "CREATE TABLE items (id int, name text);\n\n-- rollback\n-- DROP TABLE items;\n",
    )

    result = pg.run("verify")

    assert result.exit_code == 0, result.output


def test_rollback_refuses_while_a_migration_is_recorded_failed(
    pg: ProjectDir, pg_database: Database
) -> None:
    pg.write("002_items_name.sql", CONCURRENT_INDEX)
    pg.run("apply", "dev", "--yes")
    pg.write(
        "003_half.sql",
        "-- sqlstage:no-transaction\nCREATE INDEX CONCURRENTLY ok ON items (id);\n"
        "CREATE INDEX CONCURRENTLY broken ON no_such_table (id);\n",
    )
    assert pg.run("apply", "dev", "--yes").exit_code == 1

    result = pg.run("rollback", "dev", "--yes")

    assert result.exit_code == 3
    assert "003_half stopped midway on dev" in result.stderr
    assert pg_database.query("SELECT to_regclass('items_name') IS NOT NULL") == [(True,)]


def test_lock_timeout_bounds_a_migration_outside_a_transaction(
    project: ProjectDir, pg_database: Database
) -> None:
    import psycopg

    project.configure(dev={"url": pg_database.url, "lock_timeout": "500ms"})
    project.write("001_items.sql", "CREATE TABLE items (id int, name text);\n")
    project.run("apply", "dev", "--yes")
    project.write("002_items_name.sql", CONCURRENT_INDEX)
    with psycopg.connect(pg_database.url) as other:  # holds a lock CONCURRENTLY must wait for
        other.execute("LOCK TABLE items IN SHARE MODE")

        result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 1
    assert "canceling statement due to lock timeout" in result.stderr


@pytest.mark.parametrize("control", ["COMMIT", "BEGIN", "END"])
def test_transaction_control_in_a_migration_is_refused_before_anything_runs(
    project: ProjectDir, database: Database, control: str
) -> None:
    project.configure(dev={"url": database.url})
    project.write("001_a.sql", "CREATE TABLE a1 (x INTEGER);\n")
    bad = project.write(
        "002_b.sql", f"CREATE TABLE b1 (x INTEGER);\n{control};\nCREATE TABLE b2 (x INTEGER);\n"
    )

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert f"{bad}:2: " in result.stderr and "in a migration" in result.stderr
    assert "-- sqlstage:no-transaction" in result.stderr
    assert database.history() == []
    assert not {"a1", "b1", "b2"} & database.tables()


def test_savepoints_are_fine_inside_a_migration(project: ProjectDir, database: Database) -> None:
    project.configure(dev={"url": database.url})
    project.write(
        "001_a.sql",
        "CREATE TABLE a (x INTEGER);\nSAVEPOINT s;\nINSERT INTO a VALUES (1);\n"
        "ROLLBACK TO SAVEPOINT s;\nRELEASE SAVEPOINT s;\n",
    )

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert database.query("SELECT count(*) FROM a") == [(0,)]


def test_a_lost_connection_is_one_line(project: ProjectDir, pg_database: Database) -> None:
    import threading
    import time

    project.configure(dev={"url": pg_database.url})
    project.write("001_sleep.sql", "CREATE TABLE slept (x int);\nSELECT pg_sleep(30);\n")

    def terminate() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            killed = pg_database.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()"
            )
            if killed:
                return
            time.sleep(0.1)

    killer = threading.Thread(target=terminate)
    killer.start()
    result = project.run("apply", "dev", "--yes")
    killer.join()

    assert result.exit_code == 1
    assert "terminating connection" in result.stderr
    assert "Traceback" not in result.output
    assert "slept" not in pg_database.tables()


def test_sqlite_foreign_keys_pragma_in_a_migration_is_refused(
    project: ProjectDir, tmp_path: Path
) -> None:
    db = Database("sqlite", f"sqlite:///{tmp_path / 'dev.db'}")
    project.configure(dev={"url": db.url})
    bad = project.write(
        "001_fk.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\nPRAGMA foreign_keys = ON;\n"
        "CREATE TABLE b (a_id INTEGER REFERENCES a (id));\nINSERT INTO b VALUES (42);\n",
    )

    refused = project.run("apply", "dev", "--yes")
    assert refused.exit_code == 2
    assert f"{bad}:2: PRAGMA foreign_keys in a migration" in refused.stderr
    assert db.history() == []

    project.write("001_fk.sql", "-- sqlstage:no-transaction\n" + bad.read_text())
    enforced = project.run("apply", "dev", "--yes")
    assert enforced.exit_code == 1  # the foreign key really is enforced now
    assert "FOREIGN KEY constraint failed" in enforced.stderr
