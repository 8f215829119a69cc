"""Only SQL that ran counts as a rehearsal, and a database's marker says what it is, including
whether it is protected, whatever the config says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import Database, ProjectDir


@pytest.fixture
def staged(four: ProjectDir, pg_database: Database, pg_database2: Database) -> ProjectDir:
    four.configure(
        dev={"url": pg_database.url},
        pro={
            "url": pg_database2.url,
            "protected": True,
            "allow_non_interactive": True,
            "requires": "dev",
        },
    )
    return four


@pytest.mark.parametrize(
    ("record", "origin"),
    [
        (("repair", "dev", "004", "--mark-applied", "--yes"), "marked"),
        (("baseline", "dev", "004", "--yes"), "baseline"),
    ],
)
def test_records_made_without_running_are_no_rehearsal(
    staged: ProjectDir, pg_database2: Database, record: tuple[str, ...], origin: str
) -> None:
    assert staged.run("apply", "dev", "--to", "003", "--yes").exit_code == 0
    assert staged.run(*record).exit_code == 0
    entry = staged.status_json()["environments"]["dev"]["applied"]["004_add_status_column"]
    assert entry["origin"] == origin

    refused = staged.run("apply", "pro", "--yes")

    assert refused.exit_code == 3
    assert "not rehearsed in 'dev': 004_add_status_column" in refused.stderr
    assert "its SQL never ran there" in refused.stderr
    assert "--skip-rehearsal" in refused.stderr
    assert pg_database2.history() == []

    skipped = staged.run(
        "apply", "pro", "--yes", "--skip-rehearsal", "--reason", "dev was built by hand"
    )
    assert skipped.exit_code == 0, skipped.output
    note = pg_database2.query(
        "SELECT note FROM sqlstage_history WHERE migration = '004_add_status_column'"
    )
    assert note == [("rehearsal check skipped: dev was built by hand",)]


def test_an_accepted_edit_is_no_rehearsal_of_the_new_text(
    staged: ProjectDir, pg_database2: Database
) -> None:
    assert staged.run("apply", "dev", "--yes").exit_code == 0
    edited = staged.migrations / "004_add_status_column.sql"
    edited.write_text(edited.read_text().replace("'draft'", "'new'"))
    assert staged.run("repair", "dev", "004", "--accept", "--yes").exit_code == 0

    refused = staged.run("apply", "pro", "--yes")

    assert refused.exit_code == 3
    assert "004_add_status_column (recorded by `repair --accept`" in refused.stderr
    assert pg_database2.history() == []


def test_a_hand_edited_origin_is_no_rehearsal(staged: ProjectDir, pg_database2: Database) -> None:
    assert staged.run("apply", "dev", "--yes").exit_code == 0
    text = staged.status_file.read_text()
    staged.status_file.write_text(text.replace('"checksum"', '"origin": "trust me", "checksum"', 1))
    refused = staged.run("apply", "pro", "--yes")
    assert refused.exit_code == 3
    assert "not rehearsed in 'dev': 001_create_users" in refused.stderr


def test_a_database_marked_protected_is_refused_by_a_config_that_says_otherwise(
    staged: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    assert staged.run("apply", "dev", "--yes").exit_code == 0
    assert staged.run("apply", "pro", "--yes").exit_code == 0
    assert pg_database2.query("SELECT environment, protected FROM sqlstage_environment") == [
        ("pro", 1)
    ]
    staged.write("005_more.sql", "CREATE TABLE more (x int);\n")
    staged.configure(dev={"url": pg_database.url}, pro={"url": pg_database2.url})

    result = subprocess.run(
        [sys.executable, "-m", "sqlstage", "-C", str(staged.root), "apply", "pro", "--yes"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 3
    assert "this database is marked as protected environment 'pro'" in result.stderr
    assert "set protected = true in [environments.pro]" in result.stderr
    assert "more" not in pg_database2.tables()


def test_a_marker_table_with_two_rows_is_refused(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    assert four.run("apply", "dev", "--to", "002", "--yes").exit_code == 0
    database.query(
        "INSERT INTO sqlstage_environment (environment, marked_at, marked_by) "
        "VALUES ('pro', 'now', 'someone')"
    )

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 3
    assert "sqlstage_environment table holds 2 rows, not one" in result.stderr
    assert len(database.history()) == 2
    check = four.run("check", "dev")
    assert check.exit_code == 3


def test_a_marker_from_an_older_version_is_upgraded(four: ProjectDir, database: Database) -> None:
    """A marker table without the protected column (sqlstage before this change) still reads,
    and the next marking adds the column."""
    four.configure(dev={"url": database.url})
    database.query(
        "CREATE TABLE sqlstage_environment (environment TEXT NOT NULL, marked_at TEXT NOT NULL,"
        " marked_by TEXT NOT NULL)"
    )
    database.query("INSERT INTO sqlstage_environment VALUES ('dev', 'then', 'me')")

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert len(database.history()) == 4


def test_a_history_table_from_an_older_version_is_upgraded(
    four: ProjectDir, database: Database
) -> None:
    four.configure(dev={"url": database.url})
    time_type = "timestamptz" if database.dialect == "postgresql" else "TEXT"
    database.query(
        f"""CREATE TABLE sqlstage_history (migration TEXT PRIMARY KEY, checksum TEXT NOT NULL,
        applied_at {time_type} NOT NULL, applied_by TEXT NOT NULL, duration_ms INTEGER NOT NULL,
        tool_version TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'applied', note TEXT,
        applied_sql TEXT)"""
    )
    database.query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    assert four.run("baseline", "dev", "001", "--yes", "--adopt").exit_code == 0
    database.query(
        "UPDATE sqlstage_history SET note = 'baseline by me@here at then: not run by sqlstage'"
    )
    database.query("ALTER TABLE sqlstage_history DROP COLUMN origin")

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert database.query(
        "SELECT migration, origin FROM sqlstage_history ORDER BY migration LIMIT 2"
    ) == [("001_create_users", "baseline"), ("002_create_posts", "ran")]
