"""Runs that give the same result however they are split: session state, renamed files,
sqlstage's own statements under lock_timeout, and a role that may not create tables."""

from __future__ import annotations

import psycopg
import pytest

from tests.conftest import Database, ProjectDir

SEARCH_PATH = {
    "001_app_schema.sql": "CREATE SCHEMA app;\nSET search_path = app, public;\n"
    "CREATE TABLE a (x int);\n",
    "002_b.sql": "CREATE TABLE b (x int);\n",
}


def _schemas_of(database: Database, *tables: str) -> dict[str, str]:
    rows = database.query(
        "SELECT table_name, table_schema FROM information_schema.tables "
        f"WHERE table_name IN ({', '.join(repr(t) for t in tables)})"
    )
    return {name: schema for name, schema in rows}


@pytest.mark.parametrize("one_by_one", [False, True])
def test_a_session_set_does_not_leak_into_the_next_migration(
    project: ProjectDir, pg_database: Database, one_by_one: bool
) -> None:
    project.configure(dev={"url": pg_database.url})
    for name, sql in SEARCH_PATH.items():
        project.write(name, sql)

    if one_by_one:
        assert project.run("apply", "dev", "001", "--yes").exit_code == 0
        assert project.run("apply", "dev", "002", "--yes").exit_code == 0
    else:
        assert project.run("apply", "dev", "--yes").exit_code == 0

    assert _schemas_of(pg_database, "a", "b") == {"a": "app", "b": "public"}


def test_a_search_path_without_public_does_not_hide_sqlstage_history(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write(
        "001_reporting.sql",
        "CREATE SCHEMA reporting;\nSET search_path TO reporting;\nCREATE TABLE r (x int);\n",
    )
    project.write("002_after.sql", "CREATE TABLE after (x int);\n")

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert pg_database.history() == ["001_reporting", "002_after"]
    assert _schemas_of(pg_database, "r", "after") == {"r": "reporting", "after": "public"}


def test_a_sqlite_pragma_of_one_migration_is_gone_in_the_next(
    project: ProjectDir, tmp_path: object
) -> None:
    project.configure(dev={"url": "sqlite:///dev.db"})
    project.write("001_temp.sql", "CREATE TEMP TABLE scratch (x int);\n")
    project.write("002_uses_it.sql", "CREATE TABLE keep AS SELECT * FROM scratch;\n")

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 1  # as when applied one per run: scratch is gone
    assert "no such table: scratch" in result.stderr


def test_a_renamed_file_is_recognised_and_never_runs_again(
    project: ProjectDir, database: Database
) -> None:
    project.configure(dev={"url": database.url})
    project.write("001_counter.sql", "CREATE TABLE t (n int);\nINSERT INTO t VALUES (0);\n")
    project.write("002_bump.sql", "UPDATE t SET n = n + 1;\n")
    assert project.run("apply", "dev", "--yes").exit_code == 0
    (project.migrations / "002_bump.sql").rename(project.migrations / "002_bump_counter.sql")

    status = project.run("status")
    result = project.run("apply", "dev", "--yes")

    assert "002_bump_counter" in status.output
    assert result.exit_code == 0, result.output
    assert "002_bump was renamed to 002_bump_counter.sql" in result.stderr
    assert "renamed from 002_bump: nothing runs" in result.output
    assert database.query("SELECT n FROM t") == [(1,)]
    assert database.history() == ["001_counter", "002_bump_counter"]
    applied = project.status_json()["environments"]["dev"]["applied"]
    assert "002_bump_counter" in applied and "002_bump" not in applied
    assert project.status_json()["pending"]["dev"] == []
    again = project.run("apply", "dev", "--yes")
    assert "dev is up to date" in again.output


def test_repair_rename_records_a_rename_without_running_anything(
    project: ProjectDir, database: Database
) -> None:
    project.configure(dev={"url": database.url})
    project.write("001_counter.sql", "CREATE TABLE t (n int);\n")
    assert project.run("apply", "dev", "--yes").exit_code == 0
    (project.migrations / "001_counter.sql").rename(project.migrations / "001_create_t.sql")

    result = project.run("repair", "dev", "001", "--rename", "--yes")

    assert result.exit_code == 0, result.output
    assert "renamed 001_counter to 001_create_t" in result.output
    assert database.history() == ["001_create_t"]


def test_a_number_applied_under_another_name_with_other_sql_is_refused(
    project: ProjectDir, database: Database
) -> None:
    project.configure(dev={"url": database.url})
    project.write("001_counter.sql", "CREATE TABLE t (n int);\n")
    assert project.run("apply", "dev", "--yes").exit_code == 0
    (project.migrations / "001_counter.sql").unlink()
    project.write("001_other.sql", "CREATE TABLE other (n int);\n")

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert "number 1 is already applied to dev as 001_counter, with other SQL" in result.stderr
    assert "other" not in database.tables()


def test_sqlstage_history_locked_by_another_session_times_out(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url, "lock_timeout": "300ms"})
    assert four.run("apply", "dev", "--to", "002", "--yes").exit_code == 0
    with psycopg.connect(pg_database.url) as other:
        other.execute("LOCK TABLE sqlstage_history IN ACCESS EXCLUSIVE MODE")

        result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 3, result.output
    assert "sqlstage's own tables are locked by another session" in result.stderr
    assert "lock_timeout 300ms ran out" in result.stderr
    assert len(pg_database.history()) == 2


def test_a_role_that_may_not_create_tables_gets_one_line(
    four: ProjectDir, pg_database: Database
) -> None:
    role = f"nocreate_{pg_database.url.rsplit('_', 1)[-1]}"
    pg_database.query(f"CREATE ROLE {role} LOGIN")
    pg_database.query(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
    try:
        url = pg_database.url.replace("postgres@", f"{role}@")
        four.configure(dev={"url": url})

        result = four.run("apply", "dev", "--yes")

        assert result.exit_code == 4, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        line = result.stderr.strip()
        assert "\n" not in line
        assert "the database refused sqlstage's bookkeeping: permission denied" in line
        assert "GRANT CREATE ON SCHEMA" in line
        assert pg_database.history() == []
    finally:
        pg_database.query(f"DROP OWNED BY {role}")
        pg_database.query(f"DROP ROLE {role}")
