# ruff: noqa: E501  (migration texts read best on one line)
"""`verify` verdicts that stand on their own: each migration judged from the state just before
it, whatever the other rollbacks do; declared no-op and irreversible rollbacks; migrations
that cannot run in a transaction; readable differences. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Database, ProjectDir


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"url": database.url})
    return four


def run_json(project: ProjectDir, *args: str) -> tuple[int, dict[str, Any]]:
    result = project.run("verify", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def results(report: dict[str, Any]) -> dict[str, str]:
    return {row["migration"]: row["result"] for row in report["migrations"]}


def row(report: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [r for r in report["migrations"] if r["migration"] == name]
    return found


def test_a_later_rollbacks_leftovers_do_not_decide_an_earlier_verdict(dev: ProjectDir) -> None:
    """006 leaves its view behind; 005 alone is fine. Walking down one database, 005's
    DROP TABLE then failed on the view and hid 001-004 as not checked."""
    dev.write(
        "005_audit.sql",
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);\n\n-- rollback\n"
        "-- DROP TABLE audit;\n",
    )
    dev.write(
        "006_audit_view.sql",
        "CREATE VIEW recent_audit AS SELECT id, what FROM audit;\n\n-- rollback\n-- SELECT 1;\n",
    )

    code, report = run_json(dev)

    assert code == 1
    assert results(report) == {
        "001_create_users": "ok",
        "002_create_posts": "ok",
        "003_add_user_profile": "ok",
        "004_add_status_column": "ok",
        "005_audit": "ok",
        "006_audit_view": "rollback leaves differences",
    }
    [difference] = row(report, "006_audit_view")["differences"]
    assert difference["change"] == "extra" and difference["kind"] == "view"
    assert difference["name"] == "recent_audit" and difference["expected"] is None
    assert "audit" in difference["live"]


def test_two_broken_rollbacks_are_each_named_with_their_own_difference(dev: ProjectDir) -> None:
    """Both forget the same kind of thing; the older one is not reported ok because the
    newer one's line was the same."""
    for number, column in ((5, "slug"), (6, "summary")):
        dev.write(
            f"00{number}_add_{column}.sql",
            f"ALTER TABLE posts ADD COLUMN {column} TEXT;\n"
            f"CREATE INDEX posts_{column}_idx ON posts ({column});\n\n-- rollback\n"
            f"-- DROP INDEX posts_{column}_idx;\n",
        )

    code, report = run_json(dev)

    assert code == 1
    for name, column in (("005_add_slug", "slug"), ("006_add_summary", "summary")):
        assert results(report)[name] == "rollback leaves differences"
        names = {d["name"] for d in row(report, name)["differences"]}
        # on SQLite the table's CREATE text changed too
        assert f"posts.{column}" in names and names <= {f"posts.{column}", "posts"}


def test_a_rollback_that_rebuilds_an_index_identically_is_ok(dev: ProjectDir) -> None:
    """The catalogs differ (a new object id), the schema does not."""
    dev.write(
        "005_drop_index.sql",
        "DROP INDEX posts_user_id_idx;\n\n-- rollback\n"
        "-- CREATE INDEX posts_user_id_idx ON posts (user_id);\n",
    )
    dev.write(
        "006_drop_index_again.sql",
        "CREATE INDEX posts_title_idx ON posts (title);\n\n-- rollback\n"
        "-- DROP INDEX posts_title_idx;\n-- CREATE INDEX posts_title_idx ON posts (user_id);\n",
    )

    code, report = run_json(dev)

    assert results(report)["005_drop_index"] == "ok"
    assert results(report)["006_drop_index_again"] == "rollback leaves differences"
    [difference] = row(report, "006_drop_index_again")["differences"]
    assert difference["change"] == "extra" and difference["name"] == "posts_title_idx"
    assert code == 1


def test_nothing_to_undo_is_declared_and_checked(dev: ProjectDir, database: Database) -> None:
    dev.write(
        "005_fix_emails.sql",
        "UPDATE users SET email = lower(email);\n\n-- rollback\n-- sqlstage:nothing-to-undo\n",
    )

    result = dev.run("verify")

    assert result.exit_code == 0, result.output
    assert "005_fix_emails" in result.output and "ok (nothing to undo)" in result.output
    code, report = run_json(dev)
    assert code == 0 and row(report, "005_fix_emails")["rollback"] == "nothing to undo"

    # rolling it back runs nothing and forgets it
    assert dev.run("apply", "dev", "--yes").exit_code == 0
    rolled = dev.run("rollback", "dev", "--yes")
    assert rolled.exit_code == 0, rolled.output
    assert "005_fix_emails" not in database.history()


def test_nothing_to_undo_that_changes_the_schema_is_caught(dev: ProjectDir) -> None:
    dev.write(
        "005_tags.sql",
        "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n\n-- rollback\n-- sqlstage:nothing-to-undo\n",
    )

    code, report = run_json(dev)

    assert code == 1
    assert results(report)["005_tags"] == "rollback leaves differences"
    assert row(report, "005_tags")["details"][0].startswith("extra table tags")


def test_irreversible_is_its_own_verdict_and_rollback_refuses_it(
    dev: ProjectDir, database: Database
) -> None:
    dev.write(
        "005_drop_legacy.sql",
        "ALTER TABLE users DROP COLUMN display_name;\n\n-- rollback\n"
        "-- sqlstage:irreversible the names are gone for good\n",
    )

    result = dev.run("verify")

    assert result.exit_code == 0, result.output
    assert "irreversible (the names are gone for good)" in result.output
    assert "4 of 5 migrations round-trip, 1 declared irreversible" in result.output
    code, report = run_json(dev, "--strict")
    assert code == 1 and results(report)["005_drop_legacy"] == "irreversible"

    assert dev.run("apply", "dev", "--yes").exit_code == 0
    refused = dev.run("rollback", "dev", "--yes")
    assert refused.exit_code == 3
    assert "005_drop_legacy.sql is declared irreversible (the names are gone for good)" in (
        refused.stderr
    )
    assert "005_drop_legacy" in database.history()


def test_a_declaration_with_rollback_sql_after_it_is_a_file_error(dev: ProjectDir) -> None:
    path = dev.write(
        "005_both.sql",
        "CREATE TABLE x (id INTEGER);\n\n-- rollback\n-- sqlstage:irreversible\n-- DROP TABLE x;\n",
    )

    result = dev.run("verify")

    assert result.exit_code == 2
    assert f"{path}:4:" in result.stderr and "also holds rollback SQL" in result.stderr


def test_a_migration_outside_a_transaction_is_judged_on_a_copy(
    dev: ProjectDir, database: Database
) -> None:
    if database.dialect == "postgresql":
        good = "CREATE INDEX CONCURRENTLY posts_title_idx ON posts (title);\n\n-- rollback\n-- DROP INDEX CONCURRENTLY posts_title_idx;\n"
        bad = "CREATE INDEX CONCURRENTLY posts_status_idx ON posts (status);\n\n-- rollback\n-- SELECT 1;\n"
    else:
        good = "VACUUM;\n\n-- rollback\n-- sqlstage:nothing-to-undo\n"
        bad = "-- sqlstage:no-transaction\nCREATE INDEX posts_status_idx ON posts (status);\n\n-- rollback\n-- SELECT 1;\n"
    dev.write("005_outside.sql", good)
    dev.write("006_outside_broken.sql", bad)
    dev.write(
        "007_tags.sql", "CREATE TABLE tags (id INTEGER);\n\n-- rollback\n-- DROP TABLE tags;\n"
    )

    code, report = run_json(dev)

    assert results(report) == {
        "001_create_users": "ok",
        "002_create_posts": "ok",
        "003_add_user_profile": "ok",
        "004_add_status_column": "ok",
        "005_outside": "ok",
        "006_outside_broken": "rollback leaves differences",
        "007_tags": "ok",
    }
    assert [d["name"] for d in row(report, "006_outside_broken")["differences"]] == [
        "posts_status_idx"
    ]
    assert code == 1


def test_a_long_view_shows_the_part_that_changed(dev: ProjectDir) -> None:
    columns = ", ".join(f"title AS title_{n}" for n in range(12))
    dev.write(
        "005_report.sql",
        f"CREATE VIEW report AS SELECT id, {columns} FROM posts WHERE user_id > 0;\n\n"
        "-- rollback\n-- DROP VIEW report;\n",
    )
    dev.write(
        "006_report_filter.sql",
        "DROP VIEW report;\n"
        f"CREATE VIEW report AS SELECT id, {columns} FROM posts WHERE user_id > 5;\n\n"
        "-- rollback\n-- SELECT 1;\n",
    )

    code, report = run_json(dev)

    assert code == 1
    [text] = row(report, "006_report_filter")["details"]
    assert text.startswith("changed view report:")
    changed = [line.strip() for line in text.splitlines()[1:] if line.strip()[:1] in "+-"]
    assert len(changed) == 2, text
    assert "0" in changed[0] and "5" in changed[1]
    assert "title_3" not in text  # the unchanged columns are not printed twice
