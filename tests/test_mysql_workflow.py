"""The user's workflow on MariaDB/MySQL through the CLI: apply, offline status, rollback, and a
DDL migration that fails midway (its earlier statements stay committed, and say so)."""

from __future__ import annotations

import re

from tests.conftest import Database, ProjectDir

FIVE_STATEMENTS = """\
CREATE TABLE a (x INT);
CREATE TABLE b (x INT);
CREATE TABLE a (x INT);
CREATE TABLE d (x INT);
CREATE TABLE e (x INT);
"""


def test_four_migrations_apply_show_offline_and_roll_back(
    four: ProjectDir, mysql_database: Database
) -> None:
    four.configure(dev={"url": mysql_database.url}, pro={"url": "prompt", "protected": True})
    applied = four.run("apply", "dev", "--yes")
    assert applied.exit_code == 0, applied.output
    database = mysql_database.url.rsplit("/", 1)[1]
    assert f"database {database} on 127.0.0.1:3306 as root" in applied.output
    assert {"users", "posts", "sqlstage_history"} <= mysql_database.tables()
    assert len(mysql_database.history()) == 4
    assert four.status_json()["pending"] == {"dev": [], "pro": sorted(mysql_database.history())}
    offline = four.run("status")
    assert offline.exit_code == 0 and "dev: 4 applied, up to date" in offline.output
    rolled = four.run("rollback", "dev", "--yes")
    assert rolled.exit_code == 0, rolled.output
    columns = mysql_database.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'posts'"
    )
    assert ("status",) not in columns and len(mysql_database.history()) == 3


def test_a_ddl_migration_failing_at_statement_3_of_5_says_what_stayed_committed(
    project: ProjectDir, mysql_database: Database
) -> None:
    project.configure(dev={"url": mysql_database.url})
    project.write("001_five.sql", FIVE_STATEMENTS)
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 1
    assert "001_five.sql:3" in result.output and "Table 'a' already exists" in result.output
    assert mysql_database.tables() - {"sqlstage_history", "sqlstage_environment"} == {"a", "b"}
    [(status, note)] = mysql_database.query("SELECT status, note FROM sqlstage_history")
    assert status == "failed"
    assert "statement 3 of 5 (line 3)" in note and "statements 1-2 had committed" in note
    assert project.status_json()["environments"]["dev"]["failed"] == ["001_five"]
    again = project.run("apply", "dev", "--yes")
    assert again.exit_code == 3 and "repair dev 001_five" in again.output


def test_verify_round_trips_on_a_scratch_database_and_drops_it(
    four: ProjectDir, mysql_database: Database
) -> None:
    four.configure(dev={"url": mysql_database.url})
    result = four.run("verify", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert "4 of 4 migrations round-trip" in result.output
    [scratch] = re.findall(r"database (sqlstage_verify_\w+) on 127.0.0.1", result.output)
    assert mysql_database.query(f"SHOW DATABASES LIKE '{scratch}'") == []


def test_verify_finds_a_rollback_that_does_not_undo_its_migration(
    four: ProjectDir, mysql_database: Database
) -> None:
    four.write(
        "005_add_flag.sql",
        """
        ALTER TABLE users ADD COLUMN flag INT;

        -- rollback
        -- SELECT 1;
        """,
    )
    four.configure(dev={"url": mysql_database.url})
    result = four.run("verify", "--env", "dev")
    assert result.exit_code == 1
    assert "005_add_flag" in result.output and "users.flag" in result.output


def test_schema_reads_information_schema(four: ProjectDir, mysql_database: Database) -> None:
    import json

    four.configure(dev={"url": mysql_database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0
    result = four.run("schema", "dev", "--json")
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.output)
    assert snapshot["dialect"] == "mysql"
    assert snapshot["objects"]["table"]["posts"].endswith("columns (id, user_id, title, status)")
    assert "sqlstage_history" not in snapshot["objects"]["table"]
