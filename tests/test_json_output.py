"""`--json` on every command: stdout holds exactly one JSON document (docs/json.md), on
success and on failure; every line for people goes to stderr. `pending --exit-code` and
`status --check` exit 5 while anything is pending, failed or edited."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import FOUR_MIGRATIONS, Database, ProjectDir, unavailable

NAMES = [name.removesuffix(".sql") for name in FOUR_MIGRATIONS]
UNREACHABLE = "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere"  # nothing listens on port 1


def document(result: Result, command: str) -> dict[str, Any]:
    """The one document on stdout, with the envelope every command shares."""
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    assert (data["schemaVersion"], data["command"]) == (1, command)
    assert data["ok"] is (result.exit_code == 0)
    assert (data["error"] is None) is (result.exit_code == 0)
    if data["error"] is not None:
        assert data["error"]["exitCode"] == result.exit_code
        assert data["error"]["message"]
    return data


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(
        dev={"name": "Development", "url": database.url},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    return four


@pytest.fixture
def applied(dev: ProjectDir) -> ProjectDir:
    result = dev.run("apply", "dev", "--to", "003", "--yes")
    assert result.exit_code == 0, result.output
    return dev


# -- commands that change a database --------------------------------------------------------
def test_apply_json(dev: ProjectDir) -> None:
    result = dev.run("apply", "dev", "--to", "002", "--yes", "--json")

    assert result.exit_code == 0, result.output
    data = document(result, "apply")
    assert (data["environment"], data["direction"]) == ("dev", "apply")
    assert [step["migration"] for step in data["plan"]] == NAMES[:2]
    assert data["plan"][0]["statements"] == 1 and data["plan"][1]["statements"] == 2
    assert data["done"] == NAMES[:2]
    assert data["statusWritten"] is True and Path(data["log"]).is_file()
    # the human lines went to stderr
    assert "Connected: " in result.stderr and "Applied 2 migrations to dev" in result.stderr


def test_apply_dry_run_json_names_the_plan_and_changes_nothing(dev: ProjectDir) -> None:
    result = dev.run("apply", "dev", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    data = document(result, "apply")
    assert [step["migration"] for step in data["plan"]] == NAMES
    assert data["done"] == [] and data["refusals"] == []
    assert not dev.status_file.exists() or dev.status_json()["environments"]["dev"]["applied"] == {}


def test_a_failed_migration_is_an_error_document(dev: ProjectDir) -> None:
    dev.write("005_broken.sql", "CREATE TABLE t (x int);\nSELECT * FROM nowhere;\n")

    result = dev.run("apply", "dev", "--yes", "--json")

    assert result.exit_code == 1
    data = document(result, "apply")
    assert data["error"]["code"] == "migration-failed"
    assert "005_broken.sql:2" in data["error"]["message"]
    assert data["done"] == NAMES  # what committed before it
    assert "error: " in result.stderr  # the one line for people, as without --json


def test_rollback_json(applied: ProjectDir) -> None:
    result = applied.run("rollback", "dev", "--yes", "--json")

    assert result.exit_code == 0, result.output
    data = document(result, "rollback")
    assert (data["direction"], data["done"]) == ("rollback", ["003_add_user_profile"])


def test_baseline_and_repair_json(dev: ProjectDir, database: Database) -> None:
    baseline = dev.run("baseline", "dev", "002", "--yes", "--json")
    assert baseline.exit_code == 0, baseline.output
    assert document(baseline, "baseline")["recorded"] == NAMES[:2]

    repair = dev.run("repair", "dev", "002", "--forget", "--yes", "--json")
    assert repair.exit_code == 0, repair.output
    data = document(repair, "repair")
    assert "002_create_posts" in data["done"] and data["statusWritten"] is True
    assert database.history() == ["001_create_users"]


# -- commands that read a database ----------------------------------------------------------
def test_check_json(applied: ProjectDir, database: Database) -> None:
    result = applied.run("check", "dev", "--json")

    assert result.exit_code == 0, result.output
    data = document(result, "check")
    assert data["environment"] == "dev"
    assert data["server"]["product"] == ("SQLite" if database.dialect == "sqlite" else "PostgreSQL")
    assert data["marker"] == {
        "present": True,
        "environment": "dev",
        "protected": False,
        "matches": True,
    }
    assert data["appliedCount"] == 3
    assert data["lastApplied"]["migration"] == "003_add_user_profile"


def test_live_status_json_parses_with_jq(applied: ProjectDir) -> None:
    """issue 14's own words: `status --live dev --json | jq .` parses."""
    jq = shutil.which("jq")
    if jq is None:
        unavailable("jq is not installed (.ci/run installs it)")
    live = subprocess.run(
        [sys.executable, "-m", "sqlstage", "status", "--live", "dev", "--json"],
        cwd=applied.root,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert live.returncode == 0, live.stderr
    assert live.stderr.startswith("Connected: ")
    parsed = subprocess.run(
        [jq, "-c", ".pending, .upToDate"], input=live.stdout, capture_output=True, text=True
    )
    assert parsed.returncode == 0, parsed.stderr
    assert parsed.stdout.splitlines() == [json.dumps(NAMES[3:], separators=(",", ":")), "false"]


def test_live_differences_are_objects(applied: ProjectDir) -> None:
    status = applied.status_json()
    del status["environments"]["dev"]["applied"]["002_create_posts"]
    applied.status_file.write_text(json.dumps(status))

    result = applied.run("status", "--live", "dev", "--json")

    assert result.exit_code == 0, result.output
    (difference,) = document(result, "status")["differences"]
    assert difference == {
        "kind": "not-in-status-file",
        "name": "002_create_posts",
        "expected": None,
        "live": "applied",
        "message": "002_create_posts: applied in the database, not in status.json",
    }


def test_live_check_exits_5_on_pending_or_differences(applied: ProjectDir) -> None:
    pending = applied.run("status", "--live", "dev", "--check")
    assert pending.exit_code == 5
    assert "not up to date: dev has 1 pending (004_add_status_column)" in pending.stderr

    assert applied.run("apply", "dev", "--yes").exit_code == 0
    assert applied.run("status", "--live", "dev", "--check").exit_code == 0

    status = applied.status_json()
    del status["environments"]["dev"]["applied"]["004_add_status_column"]
    applied.status_file.write_text(json.dumps(status))
    drifted = applied.run("status", "--live", "dev", "--check", "--json")
    assert drifted.exit_code == 5
    data = document(drifted, "status")
    assert data["error"]["code"] == "not-up-to-date"
    assert [d["name"] for d in data["differences"]] == ["004_add_status_column"]


def test_schema_json(applied: ProjectDir, database: Database) -> None:
    result = applied.run("schema", "dev", "--json")

    assert result.exit_code == 0, result.output
    data = document(result, "schema")
    assert data["dialect"] == database.dialect
    assert {"users", "posts"} <= set(data["objects"]["table"])


def test_a_connection_failure_is_an_error_document_without_the_password(
    four: ProjectDir,
) -> None:
    four.configure(dev={"url": UNREACHABLE})

    result = four.run("check", "dev", "--json")

    assert result.exit_code == 4
    data = document(result, "check")
    assert data["error"]["code"] == "connection-failed"
    assert "s3cret-pw" not in result.stdout + result.stderr


# -- offline ------------------------------------------------------------------------------
def _fail(project: ProjectDir, name: str) -> None:
    """status.json says `name` stopped midway on dev (as a no-transaction failure leaves it)."""
    status = project.status_json()
    status["environments"]["dev"]["failed"] = [name]
    project.status_file.write_text(json.dumps(status))


def test_status_json_says_failed_not_pending(applied: ProjectDir) -> None:
    _fail(applied, "004_add_status_column")

    result = applied.run("status", "--json")

    assert result.exit_code == 0, result.output
    dev = document(result, "status")["environments"]["dev"]
    assert dev["failed"] == ["004_add_status_column"]
    assert dev["pending"] == [] and dev["upToDate"] is False


def test_pending_exit_code(applied: ProjectDir) -> None:
    behind = applied.run("pending", "dev", "--exit-code")
    assert behind.exit_code == 5
    assert behind.stdout == "004_add_status_column\n"
    assert "not up to date: dev has 1 pending (004_add_status_column)" in behind.stderr
    assert applied.run("pending", "dev").exit_code == 0  # without the flag: a list, exit 0

    assert applied.run("apply", "dev", "--yes").exit_code == 0
    up_to_date = applied.run("pending", "dev", "--exit-code", "--json")
    assert up_to_date.exit_code == 0, up_to_date.output
    assert document(up_to_date, "pending")["pending"] == []

    _fail(applied, "004_add_status_column")
    failed = applied.run("pending", "dev", "--exit-code", "--json")
    assert failed.exit_code == 5
    data = document(failed, "pending")
    assert (data["pending"], data["failed"]) == ([], ["004_add_status_column"])
    assert "1 failed (004_add_status_column)" in data["error"]["message"]


def test_status_check(applied: ProjectDir) -> None:
    result = applied.run("status", "--check")

    assert result.exit_code == 5
    assert "dev has 1 pending (004_add_status_column); pro has 4 pending" in result.stderr
    assert "migration" in result.stdout.splitlines()[0]  # the table first, as without --check


def test_an_edited_applied_file_is_a_field_and_fails_the_check(applied: ProjectDir) -> None:
    path = applied.migrations / "002_create_posts.sql"
    path.write_text(path.read_text().replace("title TEXT", "title VARCHAR(200)"))

    result = applied.run("pending", "dev", "--exit-code", "--json")

    assert result.exit_code == 5
    assert document(result, "pending")["edited"] == ["002_create_posts"]
    status = applied.run("status", "--json")
    assert status.exit_code == 2
    data = document(status, "status")
    assert data["error"]["code"] == "checksum-changed"
    assert data["environments"]["dev"]["edited"] == ["002_create_posts"]


def test_out_of_order_is_a_field(applied: ProjectDir) -> None:
    applied.write("000_early.sql", "CREATE TABLE early (x int);\n")

    result = applied.run("pending", "dev", "--json")

    assert document(result, "pending")["outOfOrder"] == ["000_early"]


def test_lint_verify_init_new_agents_json(project: ProjectDir, tmp_path: Path) -> None:
    init = project.run("init", "--example", "--json")
    assert init.exit_code == 0, init.output
    assert any(p.endswith("sqlstage.toml") for p in document(init, "init")["created"])

    new = project.run("new", "add_things", "--json")
    assert new.exit_code == 0, new.output
    written = Path(document(new, "new")["path"])
    assert written.name.endswith("_add_things.sql")
    written.write_text("CREATE TABLE things (id INTEGER PRIMARY KEY);\n")

    lint = project.run("lint", "--json")
    assert lint.exit_code == 0, lint.output
    assert document(lint, "lint")["summary"]["errors"] == 0

    verify = project.run("verify", "--json")
    assert verify.exit_code in (0, 1), verify.output
    assert document(verify, "verify")["migrations"]

    agents = project.run("agents", "--json")
    assert agents.exit_code == 0
    assert "sqlstage" in document(agents, "agents")["rules"]


def test_usage_and_config_errors_are_documents(applied: ProjectDir) -> None:
    unknown = applied.run("pending", "nosuch", "--json")
    assert unknown.exit_code == 2
    assert document(unknown, "pending")["error"]["code"] == "config-error"

    usage = applied.run("apply", "dev", "--no-such-flag", "--json")
    assert usage.exit_code == 2
    assert document(usage, "apply")["error"]["code"] == "usage"


def test_plan_offline(applied: ProjectDir) -> None:
    applied.write("005_index.sql", "CREATE INDEX posts_title_idx ON posts (title);\n")
    applied.configure(  # dev's database is never reached: the plan is offline
        dev={"name": "Development", "url": UNREACHABLE},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )

    text = applied.run("plan")
    as_json = applied.run("plan", "--json")

    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == "dev (Development): 2 migrations to apply"
    assert lines[1].startswith("  004_add_status_column")  # its warnings are lint's business
    assert lines[2].startswith("  005_index  (lint: 1 error, ")
    assert lines[3].startswith("pro (Production): 5 migrations to apply")
    assert as_json.exit_code == 0, as_json.output
    data = document(as_json, "plan")
    dev, pro = data["environments"]["dev"], data["environments"]["pro"]
    assert [m["migration"] for m in dev["pending"]] == ["004_add_status_column", "005_index"]
    rules = {finding["rule"] for finding in dev["pending"][1]["findings"]}
    assert "create-index-without-concurrently" in rules
    assert dev["blockingFindings"] == 1 and dev["upToDate"] is False
    assert len(pro["pending"]) == 5 and pro["protected"] is True


def test_check_edits_json(applied: ProjectDir) -> None:
    assert document(applied.run("check-edits", "--json"), "check-edits")["edits"] == []
    path = applied.migrations / "001_create_users.sql"
    path.write_text(path.read_text().replace("email TEXT", "email VARCHAR(320)"))

    result = applied.run("check-edits", "--json")

    assert result.exit_code == 2
    data = document(result, "check-edits")
    (edit,) = data["edits"]
    recorded = applied.status_json()["environments"]["dev"]["applied"]["001_create_users"]
    assert edit == {
        "environment": "dev",
        "migration": "001_create_users",
        "file": str(path),
        "recordedChecksum": recorded["checksum"],
        "fileChecksum": edit["fileChecksum"],
        "kind": "edited",
    }
    assert edit["fileChecksum"] != recorded["checksum"]
    assert data["error"]["code"] == "checksum-changed"


def test_status_repair_json(applied: ProjectDir) -> None:
    result = applied.run("status", "--repair", "--json")

    assert result.exit_code == 0, result.output
    assert document(result, "status")["repaired"] is False
    assert "needed no repair" in result.stderr


def test_a_password_json_would_escape_is_masked_too(four: ProjectDir) -> None:
    four.configure(dev={"url": "env:SQLSTAGE_JSON_TEST_URL"})
    url = 'postgresql://postgres:pa"ss\\word@127.0.0.1:1/nowhere'

    result = four.run("check", "dev", "--json", env={"SQLSTAGE_JSON_TEST_URL": url})

    assert result.exit_code == 4
    assert "postgres:***@127.0.0.1:1" in document(result, "check")["error"]["message"]
    for spelling in ('pa"ss\\word', json.dumps('pa"ss\\word')[1:-1], "ss\\\\word", "pa\\"):
        assert spelling not in result.stdout
