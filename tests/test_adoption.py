"""Adopting a project whose databases were built without sqlstage (issue 14, item 2).

The common hand-made setup: a status.json in the seed's shape (lastApplied only, dates
without times), dev at 004 and pro at 003, each database built with `psql -f` or the
`sqlite3` shell. Nothing may run on such a database, and nothing may erase what only
status.json records, until `sqlstage baseline ENV` records what the database has.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sqlstage import commands
from sqlstage.errors import Refused
from sqlstage.project import Project
from tests.conftest import Database, ProjectDir

SEED = """\
{
  "lastUpdated": "2025-12-04",
  "environments": {
    "dev": {"name": "Development", "lastApplied": "004_add_status_column", "appliedAt": "2025-12-04"},
    "pro": {"name": "Production", "lastApplied": "003_add_user_profile.sql", "appliedAt": "2025-11-30"}
  },
  "pending": {"dev": [], "pro": ["004_add_status_column"]}
}
"""  # noqa: E501 - the seed's own long lines


def build(database: Database, files: list[Path]) -> None:
    """Run each file as the seed's users did: `psql -f`, or the sqlite3 shell."""
    for path in files:
        if database.dialect == "sqlite":
            command = ["sqlite3", database.url.removeprefix("sqlite:///")]
            subprocess.run(command, stdin=path.open(), check=True, capture_output=True)
        else:
            command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.url]
            subprocess.run([*command, "-f", str(path)], check=True, capture_output=True)


@pytest.fixture
def seeded(four: ProjectDir, database: Database) -> ProjectDir:
    """dev's database built by hand up to 004; status.json in the seed's shape."""
    four.configure(
        dev={"name": "Development", "url": database.url},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    build(database, sorted(four.migrations.glob("*.sql")))
    four.status_file.write_text(SEED)
    return four


def test_every_command_that_connects_names_baseline_and_apply_runs_nothing(
    seeded: ProjectDir, database: Database
) -> None:
    tables = database.tables()

    check = seeded.run("check", "dev")
    assert check.exit_code == 0, check.output
    assert "as applied to dev, but its database's history does not" in check.output
    assert "`sqlstage baseline dev`" in check.output

    dry = seeded.run("apply", "dev", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would refuse: status.json records 4 migrations" in dry.output
    assert "`sqlstage baseline dev`" in dry.output

    live = seeded.run("status", "--live", "dev")
    assert live.exit_code == 0, live.output
    assert "`sqlstage baseline dev`" in live.stderr
    document = json.loads(seeded.run("status", "--live", "dev", "--json").stdout)
    assert "`sqlstage baseline dev`" in document["adoption"]["fix"]

    applied = seeded.run("apply", "dev", "--yes")
    assert applied.exit_code == 3, applied.output
    assert "`sqlstage baseline dev`" in applied.stderr
    assert "already exists" not in applied.output
    assert database.history() == [] and database.tables() == tables
    assert seeded.status_file.read_text() == SEED  # dev's record is still there
    assert seeded.logs() == []


def test_the_library_refuses_the_same(seeded: ProjectDir, database: Database) -> None:
    project = Project.load(seeded.root)
    with pytest.raises(Refused, match="sqlstage baseline dev"):
        commands.apply(project, "dev", commands.ApplyOptions(yes=True))
    assert database.history() == []


def test_status_live_write_names_what_it_would_forget_and_asks(
    seeded: ProjectDir, database: Database
) -> None:
    said_no = seeded.run("status", "--live", "dev", "--write", input="n\n")
    assert said_no.exit_code == 3
    assert "001_create_users, 002_create_posts, 003_add_user_profile, 004_add_status_column" in (
        said_no.output
    )
    assert "Forget them?" in said_no.output
    assert seeded.status_file.read_text() == SEED

    project = Project.load(seeded.root)
    with pytest.raises(Refused, match="forget=True"):
        commands.live_status(project, "dev", write=True)
    assert seeded.status_file.read_text() == SEED

    # baseline still finds where dev was, and keeps the seed's date
    adopted = seeded.run("baseline", "dev", "--yes")
    assert adopted.exit_code == 0, adopted.output
    assert "Baselined dev at 004_add_status_column" in adopted.output
    assert database.history() == [
        "001_create_users",
        "002_create_posts",
        "003_add_user_profile",
        "004_add_status_column",
    ]
    dev = seeded.status_json()["environments"]["dev"]
    assert {entry["appliedAt"] for entry in dev["applied"].values()} == {"2025-12-04T00:00:00Z"}
    assert seeded.status_json()["environments"]["pro"]["appliedAt"] == "2025-11-30"
    dates = database.query("SELECT applied_at FROM sqlstage_history")
    assert all(str(row[0]).startswith("2025-12-04") for row in dates)

    after = seeded.run("status")
    assert after.exit_code == 0
    assert "2025-12-04  applied" in after.output  # 001 on dev: the seed's date, not today

    again = seeded.run("apply", "dev", "--yes")
    assert again.exit_code == 0, again.output
    assert "dev is up to date" in again.output


def test_a_recreated_database_forgets_the_record_only_when_told(
    four: ProjectDir, database: Database
) -> None:
    four.configure(dev={"name": "Development", "url": database.url})
    four.status_file.write_text(SEED)

    assert four.run("apply", "dev", "--yes").exit_code == 3
    forgot = four.run("status", "--live", "dev", "--write", input="y\n")
    assert forgot.exit_code == 0, forgot.output
    assert four.status_json()["environments"]["dev"]["applied"] == {}

    applied = four.run("apply", "dev", "--yes")
    assert applied.exit_code == 0, applied.output
    assert len(database.history()) == 4


def test_forget_flag_for_scripts(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"name": "Development", "url": database.url})
    four.status_file.write_text(SEED)

    result = four.run("status", "--live", "dev", "--write", "--forget-file-only")

    assert result.exit_code == 0, result.output
    assert four.status_json()["pending"]["dev"] == [
        "001_create_users",
        "002_create_posts",
        "003_add_user_profile",
        "004_add_status_column",
    ]


def test_a_repair_keeps_what_only_status_json_records(
    seeded: ProjectDir, database: Database
) -> None:
    result = seeded.run("repair", "dev", "001", "--mark-applied", "--yes")

    assert result.exit_code == 0, result.output
    assert "status.json still records 002_create_posts" in result.stderr
    dev = seeded.status_json()["environments"]["dev"]
    assert dev["lastApplied"] == "004_add_status_column"
    assert dev["applied"]["004_add_status_column"]["appliedAt"] == "2025-12-04"
    assert set(dev["applied"]) == {
        "001_create_users",
        "002_create_posts",
        "003_add_user_profile",
        "004_add_status_column",
    }

    adopted = seeded.run("baseline", "dev", "--adopt", "--yes")  # finds dev's lastApplied
    assert adopted.exit_code == 0, adopted.output
    assert len(database.history()) == 4


def test_baseline_keeps_each_date_a_full_record_gives(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"name": "Development", "url": database.url})
    build(database, sorted(four.migrations.glob("*.sql"))[:2])
    dates = {"001_create_users": "2025-10-01T09:30:00Z", "002_create_posts": "2025-10-02T10:00:00Z"}
    four.status_file.write_text(
        json.dumps(
            {
                "environments": {
                    "dev": {
                        "name": "Development",
                        "lastApplied": "002_create_posts",
                        "appliedAt": dates["002_create_posts"],
                        "applied": {
                            name: {"appliedAt": at, "checksum": None} for name, at in dates.items()
                        },
                    }
                }
            }
        )
    )

    result = four.run("baseline", "dev", "--yes")

    assert result.exit_code == 0, result.output
    applied = four.status_json()["environments"]["dev"]["applied"]
    assert {name: entry["appliedAt"] for name, entry in applied.items()} == dates


def test_tables_without_history_are_refused_unless_not_from_migrations(
    four: ProjectDir, database: Database
) -> None:
    four.configure(dev={"name": "Development", "url": database.url})
    database.query("CREATE TABLE legacy_orders (id INTEGER PRIMARY KEY)")

    check = four.run("check", "dev")
    assert "has tables (legacy_orders) but no sqlstage history" in check.output
    refused = four.run("apply", "dev", "--yes")
    assert refused.exit_code == 3
    assert "`sqlstage baseline dev MIGRATION`" in refused.stderr
    assert database.history() == []

    applied = four.run("apply", "dev", "--yes", "--not-from-migrations")
    assert applied.exit_code == 0, applied.output
    assert len(database.history()) == 4
    assert four.run("apply", "dev", "--yes").exit_code == 0  # it has a history now
