"""`sqlstage apply` end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Database, ProjectDir


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"name": "Development", "url": database.url})
    return four


def test_applies_every_pending_migration_in_order(dev: ProjectDir, database: Database) -> None:
    result = dev.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert "Connected: " in result.output
    assert "Plan for dev (Development): 4 migrations" in result.output
    assert "Applied 4 migrations to dev" in result.output
    assert database.history() == [
        "001_create_users",
        "002_create_posts",
        "003_add_user_profile",
        "004_add_status_column",
    ]
    assert {"users", "posts"} <= database.tables()
    rows = database.query(
        "SELECT checksum, applied_by, duration_ms, tool_version, status FROM sqlstage_history"
    )
    assert all(
        len(r[0]) == 64 and "@" in r[1] and r[2] >= 0 and r[3] and r[4] == "applied" for r in rows
    )


def test_rerun_is_a_no_op(dev: ProjectDir, database: Database) -> None:
    dev.run("apply", "dev", "--yes")
    before = dev.status_file.read_text()

    result = dev.run("apply", "dev", "--yes")

    assert result.exit_code == 0
    assert "dev is up to date" in result.output
    assert dev.status_file.read_text() == before  # not even lastUpdated moves
    assert len(database.history()) == 4
    first, second = dev.logs()  # every run leaves a log, a no-op one too
    assert "nothing to apply: dev is up to date" in second.read_text()
    assert "nothing to apply" not in first.read_text()


def test_named_migration_must_be_the_next_pending_one(dev: ProjectDir, database: Database) -> None:
    refused = dev.run("apply", "dev", "003_add_user_profile.sql", "--yes")
    assert refused.exit_code == 3
    assert "001_create_users, 002_create_posts must come first" in refused.output
    assert database.history() == []

    assert dev.run("apply", "dev", "001", "--yes").exit_code == 0
    assert dev.run("apply", "dev", "002_create_posts", "--yes").exit_code == 0
    assert database.history() == ["001_create_users", "002_create_posts"]

    again = dev.run("apply", "dev", "002_create_posts.sql", "--yes")
    assert again.exit_code == 0
    assert "002_create_posts is already applied to dev" in again.output


def test_to_applies_up_to_and_including(dev: ProjectDir, database: Database) -> None:
    result = dev.run("apply", "dev", "--to", "003", "--yes")

    assert result.exit_code == 0, result.output
    assert database.history() == ["001_create_users", "002_create_posts", "003_add_user_profile"]
    assert dev.status_json()["pending"]["dev"] == ["004_add_status_column"]


def test_unknown_migration_is_a_usage_error(dev: ProjectDir) -> None:
    result = dev.run("apply", "dev", "042_nope", "--yes")
    assert result.exit_code == 2
    assert "no migration '042_nope'" in result.output


def test_failure_names_file_and_line_and_leaves_nothing(
    dev: ProjectDir, database: Database
) -> None:
    dev.run("apply", "dev", "--yes")
    bad = dev.write(
        "005_broken.sql",
        """
        -- a comment first
        CREATE TABLE audit (id INTEGER PRIMARY KEY);
        INSERT INTO no_such_table VALUES (1);
        """,
    )

    result = dev.run("apply", "dev", "--yes")

    assert result.exit_code == 1
    assert f"{bad}:3:" in result.stderr
    assert "no_such_table" in result.stderr
    assert "audit" not in database.tables()  # the first statement was rolled back too
    assert "005_broken" not in database.history()
    log = dev.logs()[-1].read_text()
    assert "ERROR" in log and "no_such_table" in log
    assert dev.status_json()["pending"]["dev"] == ["005_broken"]


def test_failure_stops_the_run_but_keeps_earlier_migrations(
    dev: ProjectDir, database: Database
) -> None:
    dev.write("005_broken.sql", "SELECT * FROM missing_table;\n")
    dev.write("006_after.sql", "CREATE TABLE after_broken (id INTEGER);\n")

    result = dev.run("apply", "dev", "--yes")

    assert result.exit_code == 1
    assert database.history()[-1] == "004_add_status_column"
    assert "after_broken" not in database.tables()
    assert dev.status_json()["environments"]["dev"]["lastApplied"] == "004_add_status_column"


def test_server_position_points_at_the_exact_line(four: ProjectDir, pg_database: Database) -> None:
    four.configure(dev={"url": pg_database.url})
    dev = four
    bad = dev.write("005_typo.sql", "SELECT 1;\nSELECT\n  id,\n  nope\nFROM users;\n")

    result = dev.run("apply", "dev", "--yes")

    assert result.exit_code == 1
    assert f'{bad}:4: column "nope" does not exist' in result.stderr


def test_dry_run_prints_plan_and_sql_and_changes_nothing(
    dev: ProjectDir, database: Database
) -> None:
    result = dev.run("apply", "dev", "--dry-run")

    assert result.exit_code == 0
    assert "CREATE INDEX posts_user_id_idx" in result.output
    assert "dry run: nothing was changed" in result.output
    assert database.history() == []
    assert "users" not in database.tables()
    assert dev.logs() == []


def test_declining_the_prompt_changes_nothing(dev: ProjectDir, database: Database) -> None:
    result = dev.run("apply", "dev", input="n\n")

    assert "Apply 4 migrations to dev (Development)? [y/N]" in result.output
    assert result.exit_code == 3
    assert database.history() == []


def test_accepting_the_prompt_applies(dev: ProjectDir, database: Database) -> None:
    result = dev.run("apply", "dev", input="y\n")

    assert result.exit_code == 0, result.output
    assert len(database.history()) == 4


def test_log_records_the_run(dev: ProjectDir) -> None:
    dev.run("apply", "dev", "--yes")

    [log] = dev.logs()
    assert log.name.endswith("_dev.log")
    text = log.read_text()
    for expected in (
        "apply dev by",
        "migration 001_create_users checksum",
        "line 1: ",
        "applied 004_add_status_column",
        "done: 4 migration(s) applied to dev",
    ):
        assert expected in text


@pytest.mark.slow
def test_a_thousand_migrations_apply_in_one_run(project: ProjectDir, database: Database) -> None:
    for n in range(1, 1001):
        project.write(
            f"{n:04d}_table_{n}.sql",
            f"CREATE TABLE t{n} (id INTEGER PRIMARY KEY, v TEXT);\n"
            f"CREATE INDEX t{n}_v ON t{n} (v);\n"
            f"INSERT INTO t{n} (id, v) VALUES (1, 'a'), (2, 'b');\n",
        )
    project.configure(dev={"url": database.url})

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output[-2000:]
    assert len(database.history()) == 1000
    status = project.status_json()
    assert status["environments"]["dev"]["lastApplied"] == "1000_table_1000"
    assert len(status["environments"]["dev"]["applied"]) == 1000


def test_status_json_is_written_after_apply(dev: ProjectDir) -> None:
    dev.run("apply", "dev", "--to", "002", "--yes")

    text = dev.status_file.read_text()
    data = json.loads(text)
    assert text.endswith("}\n")
    assert list(data) == ["lastUpdated", "environments", "pending"]
    assert data["environments"]["dev"]["lastApplied"] == "002_create_posts"
    assert data["environments"]["dev"]["appliedAt"].endswith("Z")
    assert data["pending"] == {"dev": ["003_add_user_profile", "004_add_status_column"]}


def test_migration_given_as_a_path(dev: ProjectDir, database: Database) -> None:
    result = dev.run("apply", "dev", "database/migrations/sql/001_create_users.sql", "--yes")

    assert result.exit_code == 0, result.output
    assert database.history() == ["001_create_users"]


def test_error_at_commit_is_one_line_and_leaves_nothing(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url})
    four.run("apply", "dev", "--yes")
    bad = four.write(
        "005_deferred.sql",
        """
        CREATE TABLE authors (id INTEGER PRIMARY KEY);
        CREATE TABLE books (
            author_id INTEGER REFERENCES authors (id) DEFERRABLE INITIALLY DEFERRED
        );
        INSERT INTO books VALUES (42);
        """,
    )

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 1
    assert f'{bad}: insert or update on table "books"' in result.stderr
    assert "when committing 005_deferred" in result.stderr
    assert "Traceback" not in result.output
    assert "books" not in pg_database.tables()
    assert "005_deferred" not in pg_database.history()
