"""`baseline` adopts an existing database; out-of-order applies are recorded."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Database, ProjectDir


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"name": "Development", "url": database.url}, pro={"url": database.url})
    return four


def test_baseline_records_without_running_then_apply_runs_the_rest(
    dev: ProjectDir, database: Database
) -> None:
    database.query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
    database.query("CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)")

    result = dev.run("baseline", "dev", "002", "--yes")

    assert result.exit_code == 0, result.output
    assert "record 2 migrations as applied, running none of them" in result.output
    assert database.history() == ["001_create_users", "002_create_posts"]
    notes = database.query("SELECT note, duration_ms FROM sqlstage_history")
    assert all(
        n.startswith("baseline by ") and "not run by sqlstage" in n and d == 0 for n, d in notes
    )
    assert dev.status_json()["pending"]["dev"] == ["003_add_user_profile", "004_add_status_column"]
    [log] = dev.logs()
    assert "baseline dev by" in log.read_text()
    assert "recorded as applied, none run: 001_create_users, 002_create_posts" in log.read_text()

    applied = dev.run("apply", "dev", "--yes")
    assert applied.exit_code == 0, applied.output
    assert "Applied 2 migrations" in applied.output


def test_baseline_asks_and_refuses_going_back(dev: ProjectDir, database: Database) -> None:
    said_no = dev.run("baseline", "dev", "002", input="n\n")
    assert said_no.exit_code == 3
    assert database.history() == []

    assert dev.run("apply", "dev", "--yes").exit_code == 0
    back = dev.run("baseline", "dev", "002", "--yes")
    assert back.exit_code == 3
    assert "dev already has 004_add_status_column, after 002_create_posts" in back.output
    same = dev.run("baseline", "dev", "004", "--yes")
    assert same.exit_code == 0
    assert "already records everything up to 004" in same.output
    dev.write("005_x.sql", "SELECT 1;\n")
    assert dev.run("baseline", "dev", "005", "--yes").exit_code == 0
    assert database.history()[-1] == "005_x"


def test_baseline_takes_its_target_from_a_seed_shaped_status_file(
    dev: ProjectDir, database: Database
) -> None:
    dev.status_file.write_text(
        json.dumps(
            {
                "lastUpdated": "2025-11-30",
                "environments": {
                    "dev": {
                        "name": "Development",
                        "lastApplied": "003_add_user_profile.sql",
                        "appliedAt": "2025-11-28",
                    },
                    "pro": {
                        "name": "Production",
                        "lastApplied": "001_create_users.sql",
                        "appliedAt": "2025-11-01",
                    },
                },
            }
        )
    )

    result = dev.run("baseline", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert database.history() == ["001_create_users", "002_create_posts", "003_add_user_profile"]
    written = dev.status_json()
    assert set(written["environments"]["dev"]["applied"]) == set(database.history())
    assert written["environments"]["pro"]["lastApplied"] == "001_create_users"  # kept as it was
    assert written["pending"]["pro"] == [
        "002_create_posts",
        "003_add_user_profile",
        "004_add_status_column",
    ]


def test_out_of_order_apply_is_recorded_and_shown(dev: ProjectDir, database: Database) -> None:
    (dev.migrations / "003_add_user_profile.sql").rename(dev.root / "held_back.sql")
    assert dev.run("apply", "dev", "--yes").exit_code == 0
    (dev.root / "held_back.sql").rename(dev.migrations / "003_add_user_profile.sql")

    refused = dev.run("apply", "dev", "--yes")
    assert refused.exit_code == 3
    assert "003_add_user_profile is numbered below 004_add_status_column" in refused.output

    result = dev.run("apply", "dev", "--yes", "--allow-out-of-order")
    assert result.exit_code == 0, result.output
    row = database.query(
        "SELECT out_of_order, note FROM sqlstage_history WHERE migration = '003_add_user_profile'"
    )[0]
    assert row == (1, None)  # a column, not a phrase in the note
    entries = dev.status_json()["environments"]["dev"]["applied"]
    assert entries["003_add_user_profile"]["outOfOrder"] is True
    assert "outOfOrder" not in entries["004_add_status_column"]


def test_baseline_never_adopts_an_unmarked_database_on_yes_alone(
    dev: ProjectDir, database: Database
) -> None:
    dev.run("apply", "dev", "--to", "002", "--yes")
    database.query("DROP TABLE sqlstage_environment")

    refused = dev.run("baseline", "dev", "004", "--yes")
    assert refused.exit_code == 3
    assert "no sqlstage environment marker" in refused.stderr
    assert "sqlstage_environment" not in database.tables()
    assert len(database.history()) == 2

    check = dev.run("check", "dev")
    assert "needs --adopt" in check.output

    adopted = dev.run("baseline", "dev", "004", "--adopt", "--yes")
    assert adopted.exit_code == 0, adopted.output
    assert database.query("SELECT environment FROM sqlstage_environment") == [("dev",)]
    assert len(database.history()) == 4
