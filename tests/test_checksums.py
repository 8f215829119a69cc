"""An applied file edited afterwards: apply and status refuse with a diff; repair --accept."""

from __future__ import annotations

import pytest

from tests.conftest import Database, ProjectDir


@pytest.fixture
def applied(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"url": database.url})
    first = four.run("apply", "dev", "--yes")
    assert first.exit_code == 0, first.output  # it failed once under load: say how
    path = four.migrations / "003_add_user_profile.sql"
    path.write_text(path.read_text().replace("display_name TEXT", "display_name VARCHAR(80)"))
    four.write("005_more.sql", "CREATE TABLE more (x INTEGER);\n")
    return four


def test_apply_refuses_with_a_diff_against_the_applied_sql(
    applied: ProjectDir, database: Database
) -> None:
    result = applied.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert "003_add_user_profile.sql: edited after it was applied to dev" in result.output
    assert "-ALTER TABLE users ADD COLUMN display_name TEXT;" in result.output
    assert "+ALTER TABLE users ADD COLUMN display_name VARCHAR(80);" in result.output
    assert "revert the file" in result.output
    assert "sqlstage repair dev --accept 003_add_user_profile" in result.output
    assert "more" not in database.tables()


def test_offline_and_live_status_refuse_too(applied: ProjectDir) -> None:
    offline = applied.run("status")
    assert offline.exit_code == 2
    assert "003_add_user_profile.sql: edited after it was applied to dev" in offline.output
    assert "checksum differs from status.json" in offline.output

    live = applied.run("status", "--live", "dev")
    assert live.exit_code == 2
    assert "+ALTER TABLE users ADD COLUMN display_name VARCHAR(80);" in live.output


def test_repair_accept_records_who_and_lets_apply_go_on(
    applied: ProjectDir, database: Database
) -> None:
    accepted = applied.run("repair", "dev", "--accept", "003_add_user_profile", "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert "accepted the edit of 003_add_user_profile.sql on dev" in accepted.output
    note = database.query(
        "SELECT note FROM sqlstage_history WHERE migration = '003_add_user_profile'"
    )[0][0]
    assert note.startswith("edit accepted by ") and "@" in note and "checksum was" in note

    assert applied.run("status").exit_code == 0
    result = applied.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert "more" in database.tables()


def test_accept_refuses_an_unedited_migration(applied: ProjectDir) -> None:
    result = applied.run("repair", "dev", "--accept", "001", "--yes")
    assert result.exit_code == 3
    assert "nothing to accept" in result.output


def test_repair_needs_an_action_and_a_confirmation(applied: ProjectDir, database: Database) -> None:
    assert applied.run("repair", "dev", "003").exit_code == 2
    said_no = applied.run("repair", "dev", "--accept", "003", input="n\n")
    assert said_no.exit_code == 3
    assert "not confirmed" in said_no.output
    assert applied.run("apply", "dev", "--yes").exit_code == 2  # still refused
