"""`status`, `pending` and status.json: offline answers, warnings, live comparison, format."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import FOUR_MIGRATIONS, Database, ProjectDir

NAMES = [name.removesuffix(".sql") for name in FOUR_MIGRATIONS]
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1


@pytest.fixture
def applied(four: ProjectDir, database: Database) -> ProjectDir:
    """dev has 001-003 (applied for real); then dev's URL points nowhere and pro is prompt."""
    four.configure(dev={"name": "Development", "url": database.url})
    result = four.run("apply", "dev", "--to", "003", "--yes")
    assert result.exit_code == 0, result.output
    four.configure(
        dev={"name": "Development", "url": UNREACHABLE},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    return four


def _rows(output: str) -> dict[str, list[str]]:
    """The status table: migration -> its cells."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if parts and re.fullmatch(r"\d+_\w+", parts[0]):
            rows[parts[0]] = parts[1:]
    return rows


DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def test_status_is_offline(applied: ProjectDir) -> None:
    result = applied.run("status")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["migration", "dev", "pro"]
    rows = _rows(result.output)
    assert list(rows) == NAMES
    for name in NAMES[:3]:
        assert DATE.fullmatch(rows[name][0]) and rows[name][1] == "pending"
    assert rows["004_add_status_column"] == ["pending", "pending"]
    assert "dev (Development): 3 applied, 1 pending (004_add_status_column)" in lines
    assert any(
        line.startswith("pro")
        and "0 applied, 4 pending (001_create_users, 002_create_posts, 003_add_user_profile, ...)"
        in line
        for line in lines
    )
    assert "Connected" not in result.output
    assert result.stderr == ""


def test_status_json(applied: ProjectDir) -> None:
    result = applied.run("status", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    dev, pro = data["environments"]["dev"], data["environments"]["pro"]
    assert (data["schemaVersion"], data["command"], data["ok"]) == (1, "status", True)
    assert data["migrations"] == NAMES
    assert (dev["name"], dev["protected"], dev["lastApplied"]) == (
        "Development",
        False,
        "003_add_user_profile",
    )
    assert [row["migration"] for row in dev["applied"]] == NAMES[:3]
    recorded = applied.status_json()["environments"]["dev"]["applied"]
    for row in dev["applied"]:  # at least what status.json carries
        assert row["checksum"] == recorded[row["migration"]]["checksum"]
        assert row["appliedAt"] == recorded[row["migration"]]["appliedAt"]
        assert (row["outOfOrder"], row["origin"]) == (False, "ran")
    assert dev["pending"] == NAMES[3:] and dev["failed"] == [] and dev["edited"] == []
    assert dev["upToDate"] is False
    assert (pro["name"], pro["protected"], pro["applied"]) == ("Production", True, [])
    assert pro["pending"] == NAMES
    assert data["warnings"] == []


def test_pending(applied: ProjectDir) -> None:
    dev = applied.run("pending", "dev")
    pro = applied.run("pending", "pro", "--json")

    assert dev.exit_code == 0 and dev.output == "004_add_status_column\n"
    assert pro.exit_code == 0 and json.loads(pro.stdout)["pending"] == NAMES


def test_pending_up_to_date_prints_nothing(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    four.run("apply", "dev", "--yes")

    result = four.run("pending", "dev", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout)["pending"] == []
    assert four.run("pending", "dev").output == ""


def test_warns_about_an_applied_file_that_was_edited(applied: ProjectDir) -> None:
    path = applied.migrations / "002_create_posts.sql"
    path.write_text(path.read_text().replace("title TEXT", "title VARCHAR(200)"))

    result = applied.run("status")

    # the table, then exit 2 naming the edit once: an edited applied file is refused
    assert "002_create_posts.sql: edited after it was applied to dev" in result.stderr
    assert result.stderr.count("edited after it was applied") == 1
    assert _rows(result.output)["002_create_posts"][1] == "pending"
    assert result.exit_code == 2
    as_json = applied.run("status", "--json")
    assert json.loads(as_json.stdout)["warnings"] == [
        "002_create_posts.sql was edited after it was applied to dev "
        "(checksum differs from status.json)"
    ]


def test_editing_the_rollback_section_is_no_warning(applied: ProjectDir) -> None:
    path = applied.migrations / "002_create_posts.sql"
    path.write_text(path.read_text() + "-- DROP INDEX posts_user_id_idx;\n")

    result = applied.run("status")

    assert result.exit_code == 0
    assert "warning" not in result.output


def test_warns_about_an_applied_file_that_vanished(applied: ProjectDir) -> None:
    (applied.migrations / "003_add_user_profile.sql").unlink()

    result = applied.run("status")

    assert result.exit_code == 0
    assert "003_add_user_profile is recorded as applied to dev but its file is gone" in (
        result.stderr
    )


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


@pytest.fixture
def seeded(four: ProjectDir) -> ProjectDir:
    """A status.json written by the old shell script: lastApplied only, dates without times."""
    four.configure(
        dev={"name": "Development", "url": UNREACHABLE},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    four.status_file.write_text(SEED)
    return four


def test_reads_a_seed_shaped_status_file(seeded: ProjectDir) -> None:
    result = seeded.run("status")

    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert [cells[0] for cells in rows.values()] == ["applied"] * 3 + ["2025-12-04"]
    assert [cells[1] for cells in rows.values()] == ["applied", "applied", "2025-11-30", "pending"]
    assert "pro (Production): 3 applied, 1 pending (004_add_status_column)" in (
        result.output.splitlines()
    )
    assert seeded.run("pending", "pro").output == "004_add_status_column\n"
    assert seeded.run("pending", "dev").output == ""
    assert result.stderr == ""  # no checksum known, so no false "edited" warnings


def test_applying_keeps_a_seed_shaped_entry_of_another_environment(
    seeded: ProjectDir, database: Database
) -> None:
    seeded.configure(
        dev={"name": "Development", "url": database.url},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    # dev's database is new: the seed's claim for dev is not dropped unless someone says so
    refused = seeded.run("apply", "dev", "--to", "001", "--yes")
    assert refused.exit_code == 3
    assert "sqlstage baseline dev" in refused.stderr
    forgot = seeded.run("status", "--live", "dev", "--write", input="y\n")
    assert forgot.exit_code == 0, forgot.output
    assert seeded.run("apply", "dev", "--to", "001", "--yes").exit_code == 0

    data = seeded.status_json()
    assert data["environments"]["pro"]["lastApplied"] == "003_add_user_profile"
    assert data["environments"]["pro"]["appliedAt"] == "2025-11-30"
    assert data["pending"] == {"dev": NAMES[1:], "pro": ["004_add_status_column"]}


def test_corrupt_status_file_names_the_line(applied: ProjectDir) -> None:
    text = applied.status_file.read_text().splitlines()
    text.insert(4, "      oops,")  # a broken hand edit on line 5
    applied.status_file.write_text("\n".join(text) + "\n")

    result = applied.run("status")

    assert result.exit_code == 2
    assert f"{applied.status_file}:5: not valid JSON" in result.stderr
    assert "status --live ENV --write" in result.stderr


def test_git_conflict_markers_name_the_line(applied: ProjectDir) -> None:
    lines = applied.status_file.read_text().splitlines()
    lines[1:1] = ["<<<<<<< HEAD"]
    lines.append("=======")
    lines.append(">>>>>>> feature")
    applied.status_file.write_text("\n".join(lines) + "\n")

    for command in (["status"], ["pending", "dev"]):
        result = applied.run(*command)
        assert result.exit_code == 2
        assert f"{applied.status_file}:2: holds git conflict markers" in result.stderr


def test_missing_status_file_means_nothing_applied(four: ProjectDir) -> None:
    four.configure(dev={"url": UNREACHABLE})

    result = four.run("pending", "dev", "--json")

    assert result.exit_code == 0
    assert json.loads(result.stdout)["pending"] == NAMES
    assert "status.json does not exist" in result.stderr  # said, not silently "0 applied"


# -- status --live -------------------------------------------------------------------------


@pytest.fixture
def live(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"name": "Development", "url": database.url})
    assert four.run("apply", "dev", "--to", "003", "--yes").exit_code == 0
    return four


def test_live_agrees_after_apply(live: ProjectDir) -> None:
    result = live.run("status", "--live", "dev")

    assert result.exit_code == 0, result.output
    assert "Connected: " in result.output
    assert "status.json agrees with the dev database" in result.output


def test_live_reports_differences_and_write_rebuilds(live: ProjectDir) -> None:
    data = live.status_json()
    del data["environments"]["dev"]["applied"]["003_add_user_profile"]
    data["environments"]["dev"]["applied"]["004_add_status_column"] = {
        "appliedAt": "2025-12-04",
        "checksum": "x",
    }
    live.status_file.write_text(json.dumps(data, indent=2) + "\n")

    result = live.run("status", "--live", "dev")

    assert result.exit_code == 0, result.output
    assert "003_add_user_profile: applied in the database, not in status.json" in result.output
    assert "004_add_status_column: in status.json, not applied in the database" in result.output
    assert live.status_json() == data  # without --write nothing changes

    refused = live.run("status", "--live", "dev", "--write", input="n\n")
    assert refused.exit_code == 3
    assert "status.json records 004_add_status_column as applied to dev" in refused.output
    assert live.status_json() == data  # only status.json recorded 004: asked, kept
    written = live.run("status", "--live", "dev", "--write", input="y\n")

    assert written.exit_code == 0, written.output
    assert "Forget them?" in written.output
    assert "rewrote" in written.output
    assert "003_add_user_profile: applied in the database" in written.output  # before rewriting
    assert "agrees" not in written.output
    rebuilt = live.status_json()
    assert list(rebuilt["environments"]["dev"]["applied"]) == NAMES[:3]
    assert rebuilt["pending"]["dev"] == NAMES[3:]
    assert "agrees" in live.run("status", "--live", "dev").output


def test_live_write_rebuilds_a_corrupt_file(live: ProjectDir) -> None:
    good = live.status_json()
    live.status_file.write_text("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> other\n")
    assert live.run("status", "--live", "dev").exit_code == 2  # reading alone still refuses

    result = live.run("status", "--live", "dev", "--write")

    assert result.exit_code == 0, result.output
    rebuilt = live.status_json()
    assert rebuilt["environments"] == good["environments"]
    assert rebuilt["pending"] == good["pending"]


def test_live_json(live: ProjectDir) -> None:
    result = live.run("status", "--live", "dev", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds only the document
    assert result.stderr.startswith("Connected: ")
    assert (data["environment"], data["live"], data["ok"]) == ("dev", True, True)
    assert [row["migration"] for row in data["applied"]] == NAMES[:3]
    assert all(row["status"] == "applied" and row["checksum"] for row in data["applied"])
    assert data["pending"] == NAMES[3:]
    assert (data["differences"], data["written"], data["needsRebuild"]) == ([], False, [])
    assert data["upToDate"] is False


def test_write_needs_live(live: ProjectDir) -> None:
    result = live.run("status", "--write")

    assert result.exit_code == 2
    assert "--write goes with --live ENV" in result.output


# -- the file's format ---------------------------------------------------------------------


def test_status_file_format(four: ProjectDir, database: Database) -> None:
    four.configure(
        dev={"name": "Development", "url": database.url},
        staging={"name": "Staging", "url": "env:STAGING_URL"},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    assert four.run("apply", "dev", "--yes").exit_code == 0

    text = four.status_file.read_text(encoding="utf-8")
    data = json.loads(text)

    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert list(data) == ["lastUpdated", "environments", "pending"]
    assert list(data["environments"]) == ["dev", "staging", "pro"]
    assert list(data["environments"]["dev"])[:3] == ["name", "lastApplied", "appliedAt"]
    assert data["environments"]["staging"] == {
        "name": "Staging",
        "lastApplied": None,
        "appliedAt": None,
    }
    assert data["environments"]["dev"]["lastApplied"] == "004_add_status_column"
    assert data["pending"] == {"dev": [], "staging": NAMES, "pro": NAMES}
    assert data["pending"]["pro"] == NAMES  # what `jq '.pending.pro'` prints
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["lastUpdated"])
    lines = text.splitlines()
    assert lines[1] == '  "lastUpdated": ' + json.dumps(data["lastUpdated"]) + ","
    assert lines[2] == '  "environments": {'
    assert lines[3] == '    "dev": {'
    assert {len(line) - len(line.lstrip(" ")) for line in lines} <= {0, 2, 4, 6, 8}
    assert "\t" not in text


def test_status_shows_recent_rows_and_all_with_all(project: ProjectDir, database: Database) -> None:
    for n in range(1, 16):
        project.write(f"{n:03d}_table_{n}.sql", f"CREATE TABLE t{n} (id INTEGER);\n")
    project.configure(dev={"url": database.url})
    assert project.run("apply", "dev", "--to", "014", "--yes").exit_code == 0

    short = project.run("status")
    full = project.run("status", "--all")

    assert short.exit_code == 0 and full.exit_code == 0
    assert "... 4 earlier migrations applied everywhere (--all lists them)" in short.output
    assert list(_rows(short.output)) == [f"{n:03d}_table_{n}" for n in range(5, 16)]
    assert list(_rows(full.output)) == [f"{n:03d}_table_{n}" for n in range(1, 16)]
    assert _rows(full.output)["015_table_15"] == ["pending"]


def test_non_utf8_status_file_is_a_usage_error(applied: ProjectDir) -> None:
    applied.status_file.write_bytes(b'{"lastUpdated": "caf\xe9"}\n')

    result = applied.run("status")

    assert result.exit_code == 2
    assert f"{applied.status_file}: not valid UTF-8" in result.stderr


def test_status_file_saved_with_a_bom_is_read(applied: ProjectDir) -> None:
    """Windows editors save UTF-8 with a byte order mark."""
    applied.status_file.write_bytes(b"\xef\xbb\xbf" + applied.status_file.read_bytes())

    result = applied.run("pending", "dev")

    assert result.exit_code == 0, result.output
    assert result.output == "004_add_status_column\n"
