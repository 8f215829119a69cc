"""`sqlstage verify`: each migration applied, rolled back and compared on a scratch database,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_ADMIN_URL, Database, ProjectDir


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"name": "Development", "url": database.url})
    return four


def run_json(project: ProjectDir, *args: str) -> tuple[int, dict[str, Any]]:
    result = project.run("verify", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def assert_scratch_gone(report: dict[str, Any]) -> None:
    """The scratch database named in the report no longer exists."""
    assert report["dropped"] is True
    location = report["database"]
    if location.startswith("sqlite"):
        assert not Path(location.removeprefix("sqlite:///")).parent.exists()
    else:
        name = location.rsplit("/", 1)[1]
        assert name.startswith("sqlstage_verify_")
        admin = Database("postgresql", PG_ADMIN_URL)
        assert admin.query(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == []


def results(report: dict[str, Any]) -> dict[str, str]:
    return {row["migration"]: row["result"] for row in report["migrations"]}


def test_four_good_rollbacks_verify(dev: ProjectDir, database: Database) -> None:
    result = dev.run("verify")

    assert result.exit_code == 0, result.output
    assert "each migration applied, rolled back, compared" in result.output
    for name in ("001_create_users", "004_add_status_column"):
        assert f"{name}" in result.output
    assert "4 of 4 migrations round-trip" in result.output
    assert database.history() == []  # dev itself is untouched
    code, report = run_json(dev)
    assert code == 0 and report["ok"] is True
    assert set(results(report).values()) == {"ok"}
    assert_scratch_gone(report)


def test_rollback_that_forgets_an_index_is_named(dev: ProjectDir) -> None:
    dev.write(
        "005_add_slug.sql",
        """
        ALTER TABLE posts ADD COLUMN slug TEXT;
        CREATE INDEX posts_title_idx ON posts (title);

        -- rollback
        -- ALTER TABLE posts DROP COLUMN slug;
        """,
    )

    result = dev.run("verify")

    assert result.exit_code == 1
    assert re.search(r"005_add_slug +rollback leaves differences\n", result.output)
    assert "extra index posts_title_idx: CREATE INDEX" in result.output
    assert "verify: 005_add_slug does not round-trip" in result.stderr
    code, report = run_json(dev)
    assert code == 1
    assert results(report)["005_add_slug"] == "rollback leaves differences"
    [slug] = [row for row in report["migrations"] if row["migration"] == "005_add_slug"]
    assert any("posts_title_idx" in line for line in slug["details"])
    assert results(report)["004_add_status_column"] == "ok"  # earlier ones still checked
    assert_scratch_gone(report)


def test_failing_rollback_is_named_with_the_database_error(dev: ProjectDir) -> None:
    path = dev.write(
        "005_audit.sql",
        """
        CREATE TABLE audit (id INTEGER PRIMARY KEY);

        -- rollback
        -- DROP TABLE audit;
        -- DROP TABLE audit_archive;
        """,
    )

    result = dev.run("verify")

    assert result.exit_code == 1
    assert re.search(r"005_audit +rollback failed\n", result.output)
    assert f"{path}:5:" in result.output and "audit_archive" in result.output
    code, report = run_json(dev)
    assert code == 1
    assert results(report)["005_audit"] == "rollback failed"
    assert results(report)["004_add_status_column"] == "ok"  # a failed rollback hides nothing
    assert_scratch_gone(report)


def test_missing_rollback_section_fails_and_from_skips_it(dev: ProjectDir) -> None:
    dev.write("005_no_way_back.sql", "CREATE TABLE audit (id INTEGER);\n")
    dev.write(
        "006_tags.sql",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n\n-- rollback\n-- DROP TABLE tags;\n",
    )

    code, report = run_json(dev)

    assert code == 1
    assert results(report)["005_no_way_back"] == "no rollback section"
    assert results(report)["006_tags"] == "ok"
    assert results(report)["004_add_status_column"] == "ok"  # judged on its own

    code, report = run_json(dev, "--from", "6")

    assert code == 0, report
    assert report["setup"][-1] == "005_no_way_back"
    assert results(report) == {"006_tags": "ok"}
    assert_scratch_gone(report)


def test_data_file_makes_a_data_migration_meet_real_rows(dev: ProjectDir, tmp_path: Path) -> None:
    dev.write(
        "005_unique_email.sql",
        """
        CREATE UNIQUE INDEX users_email_key ON users (email);

        -- rollback
        -- DROP INDEX users_email_key;
        """,
    )
    data = tmp_path / "003_sample_users.sql"
    data.write_text(
        "INSERT INTO users (id, email) VALUES (1, 'a@example.com');\n"
        "INSERT INTO users (id, email) VALUES (2, 'a@example.com');\n"
    )

    assert dev.run("verify").exit_code == 0  # an empty table hides the problem
    code, report = run_json(dev, "--data", str(data))

    assert code == 1
    assert results(report)["005_unique_email"] == "apply failed"
    [row] = [r for r in report["migrations"] if r["migration"] == "005_unique_email"]
    assert "005_unique_email.sql:1:" in row["details"][0]
    assert_scratch_gone(report)


def test_keep_leaves_the_scratch_database(dev: ProjectDir, database: Database) -> None:
    code, report = run_json(dev, "--keep")

    assert code == 0 and report["dropped"] is False
    location = report["database"]
    if database.dialect == "sqlite":
        kept = Database("sqlite", location)
        assert kept.history() == [
            "001_create_users",
            "002_create_posts",
            "003_add_user_profile",
            "004_add_status_column",
        ]
        kept_file = Path(location.removeprefix("sqlite:///"))
        kept_file.unlink()
        kept_file.parent.rmdir()  # the temporary folder verify made for it
    else:
        name = location.rsplit("/", 1)[1]
        admin = Database("postgresql", PG_ADMIN_URL)
        kept = Database("postgresql", location)
        assert len(kept.history()) == 4
        admin.query(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_verify_url_puts_the_scratch_database_on_another_server(four: ProjectDir) -> None:
    (four.root / "sqlstage.toml").write_text(
        f'verify_url = "{PG_ADMIN_URL}"\n\n[environments.dev]\nurl = "sqlite:///dev.db"\n'
    )

    code, report = run_json(four)

    assert code == 0, report
    assert report["database"].startswith("postgresql://")
    assert_scratch_gone(report)


def test_verify_url_prompt_is_a_config_error(four: ProjectDir) -> None:
    (four.root / "sqlstage.toml").write_text(
        '[environments.dev]\nurl = "sqlite:///dev.db"\nverify_url = "prompt"\n'
    )

    result = four.run("verify")

    assert result.exit_code == 2
    assert "environments.dev.verify_url" in result.stderr


def test_a_generated_corpus_of_300_migrations_verifies_in_one_run(
    project: ProjectDir, database: Database
) -> None:
    kinds = [
        (
            "CREATE TABLE t{n} (id INTEGER PRIMARY KEY, v TEXT NOT NULL DEFAULT 'x');",
            "DROP TABLE t{n};",
        ),
        ("ALTER TABLE t{p} ADD COLUMN c{n} INTEGER;", "ALTER TABLE t{p} DROP COLUMN c{n};"),
        ("CREATE INDEX i{n} ON t{p} (v);", "DROP INDEX i{n};"),
        ("CREATE VIEW v{n} AS SELECT id, v FROM t{p};", "DROP VIEW v{n};"),
        ("INSERT INTO t{p} (id, v) VALUES ({n}, 'row');", "DELETE FROM t{p} WHERE id = {n};"),
    ]
    table = 1
    for n in range(1, 301):
        forward, back = kinds[(n - 1) % len(kinds)]
        if n % len(kinds) == 1:
            table = n
        project.write(
            f"{n:04d}_step_{n}.sql",
            f"{forward.format(n=n, p=table)}\n\n-- rollback\n-- {back.format(n=n, p=table)}\n",
        )
    project.configure(dev={"url": database.url})

    code, report = run_json(project)

    assert code == 0, [r for r in report["migrations"] if r["result"] != "ok"][:3]
    assert len(report["migrations"]) == 300
    assert_scratch_gone(report)


def test_a_terminal_shows_a_progress_bar_for_verify_and_long_applies(project: ProjectDir) -> None:
    import os
    import sys

    import pexpect

    for n in range(1, 31):
        project.write(
            f"{n:03d}_t{n}.sql",
            f"CREATE TABLE t{n} (id INTEGER);\n\n-- rollback\n-- DROP TABLE t{n};\n",
        )
    project.configure(dev={"url": "sqlite:///dev.db"})
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}

    def run(*args: str) -> str:
        command = ["-m", "sqlstage", "-C", str(project.root), *args]
        child = pexpect.spawn(sys.executable, command, encoding="utf-8", timeout=60, env=env)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, child.before
        return child.before or ""

    verify = run("verify")
    assert re.search(r"\d+/30", verify), verify  # one step a migration
    assert "30 of 30 migrations round-trip" in verify

    applied = run("apply", "dev", "--yes")
    assert re.search(r"\d+/30", applied), applied
    assert "Applied 30 migrations to dev" in applied
    assert "  applied 001_t1 (" not in applied  # the bar replaces the per-migration lines


def test_dev_database_that_does_not_exist_yet_still_verifies(four: ProjectDir) -> None:
    from tests.conftest import pg_url_for

    four.configure(dev={"url": pg_url_for("sqlstage_test_never_created")})

    code, report = run_json(four)

    assert code == 0, report
    assert_scratch_gone(report)
