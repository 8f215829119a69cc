"""`sqlstage rollback` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import Database, ProjectDir

FIRST_TWO = ["001_create_users", "002_create_posts"]


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"name": "Development", "url": database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0
    return four


def columns(database: Database, table: str) -> set[str]:
    if database.dialect == "sqlite":
        return {row[1] for row in database.query(f"PRAGMA table_info({table})")}
    rows = database.query(
        f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"
    )
    return {row[0] for row in rows}


def test_rollback_twice_brings_dev_back_to_002(dev: ProjectDir, database: Database) -> None:
    first = dev.run("rollback", "dev", "--yes")

    assert first.exit_code == 0, first.output
    assert "Rollback plan for dev (Development): 1 migration" in first.output
    assert "rolled back 004_add_status_column" in first.output
    assert "status" not in columns(database, "posts")

    second = dev.run("rollback", "dev", "--yes")

    assert second.exit_code == 0, second.output
    assert "rolled back 003_add_user_profile" in second.output
    assert database.history() == FIRST_TWO
    assert "display_name" not in columns(database, "users")
    status = dev.status_json()["environments"]["dev"]
    assert status["lastApplied"] == "002_create_posts"
    assert list(status["applied"]) == FIRST_TWO
    assert dev.status_json()["pending"]["dev"] == ["003_add_user_profile", "004_add_status_column"]
    assert "rollback dev by" in dev.logs()[-1].read_text()

    again = dev.run("apply", "dev", "--yes")  # the rolled-back ones apply cleanly again
    assert again.exit_code == 0, again.output
    assert len(database.history()) == 4


def test_named_migration_rolls_back_the_later_ones_first(
    dev: ProjectDir, database: Database
) -> None:
    result = dev.run("rollback", "dev", "002", "--yes")

    assert result.exit_code == 0, result.output
    out = result.output
    order = [out.index(f"rolled back {n}") for n in ("004", "003", "002")]
    assert order == sorted(order)
    assert database.history() == ["001_create_users"]
    assert "posts" not in database.tables()
    assert dev.status_json()["environments"]["dev"]["lastApplied"] == "001_create_users"


def test_missing_rollback_section_is_refused_and_nothing_runs(
    dev: ProjectDir, database: Database
) -> None:
    path = dev.write("005_no_way_back.sql", "CREATE TABLE audit (id INTEGER);\n")
    assert dev.run("apply", "dev", "--yes").exit_code == 0

    result = dev.run("rollback", "dev", "004", "--yes")

    assert result.exit_code == 3
    assert f"{path} has no rollback section; nothing was rolled back on dev" in result.stderr
    assert len(database.history()) == 5
    assert "status" in columns(database, "posts")  # 004 was not rolled back either


def test_failing_rollback_names_file_and_line_and_keeps_the_migration(
    dev: ProjectDir, database: Database
) -> None:
    path = dev.write(
        "005_bad_rollback.sql",
        """
        CREATE TABLE audit (id INTEGER);

        -- rollback
        -- DROP TABLE audit;
        -- DROP TABLE no_such_table;
        """,
    )
    assert dev.run("apply", "dev", "--yes").exit_code == 0

    result = dev.run("rollback", "dev", "--yes")

    assert result.exit_code == 1
    assert f"{path}:5:" in result.stderr
    assert "no_such_table" in result.stderr
    assert "audit" in database.tables()  # the first rollback statement was undone too
    assert database.history()[-1] == "005_bad_rollback"
    assert dev.status_json()["environments"]["dev"]["lastApplied"] == "005_bad_rollback"


def test_dry_run_shows_the_rollback_sql_and_changes_nothing(
    dev: ProjectDir, database: Database
) -> None:
    result = dev.run("rollback", "dev", "003", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "ALTER TABLE posts DROP COLUMN status;" in result.output
    assert "ALTER TABLE users DROP COLUMN display_name;" in result.output
    assert "dry run: nothing was changed" in result.output
    assert len(database.history()) == 4


def test_declining_the_prompt_rolls_back_nothing(dev: ProjectDir, database: Database) -> None:
    result = dev.run("rollback", "dev", input="n\n")

    assert "Roll back 1 migration on dev (Development)? [y/N]" in result.output
    assert result.exit_code == 3
    assert len(database.history()) == 4


def test_protected_environment_without_a_terminal_is_refused(
    four: ProjectDir, database: Database
) -> None:
    four.configure(
        dev={"url": database.url},
        pro={"name": "Production", "url": database.url, "protected": True},
    )
    assert four.run("apply", "dev", "--yes").exit_code == 0

    result = four.run("rollback", "pro", "--yes")

    assert result.exit_code == 3
    assert "pro is protected and this run has no terminal" in result.stderr
    assert len(database.history()) == 4


def test_protected_environment_asks_for_its_name_on_a_terminal(
    four: ProjectDir, tmp_path: Path
) -> None:
    import pexpect

    url = f"sqlite:///{tmp_path / 'pro.db'}"
    four.configure(
        pro={"name": "Production", "url": url, "protected": True, "allow_non_interactive": True}
    )
    assert four.run("apply", "pro", "--yes").exit_code == 0
    command = [sys.executable, "-m", "sqlstage", "-C", str(four.root), "rollback", "pro", "003"]

    child = pexpect.spawn(command[0], command[1:], encoding="utf-8", timeout=30)
    child.expect(r"take a backup before rolling back.*Backup taken\? \[y/N\]")
    child.sendline("y")
    child.expect("Type 'pro' to roll back 2 migrations on Production")
    child.sendline("pro")
    child.expect(pexpect.EOF)
    child.close()

    assert child.exitstatus == 0, child.before
    assert "Rolled back 2 migrations on pro" in (child.before or "")
    assert four.status_json()["environments"]["pro"]["lastApplied"] == "002_create_posts"


def test_not_applied_migration_is_nothing_to_do(dev: ProjectDir, database: Database) -> None:
    dev.run("rollback", "dev", "--yes")

    result = dev.run("rollback", "dev", "004", "--yes")

    assert result.exit_code == 0
    assert "004_add_status_column is not applied to dev: nothing to roll back" in result.output
