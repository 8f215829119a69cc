"""Issue 14, item 6: the small things a user notices, each on the surface they see it on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from sqlstage import commands
from sqlstage.errors import Refused
from sqlstage.project import Project
from tests.conftest import Database, ProjectDir

ESC = "\x1b"


def on_terminal(project: ProjectDir, *args: str, **env: str) -> tuple[int, str]:
    """Run sqlstage on a real terminal; its exit status and everything it wrote."""
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    environment.update(env)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sqlstage", "-C", str(project.root), *args],
        env=environment,
        encoding="utf-8",
        timeout=60,
        dimensions=(40, 200),
    )
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus or 0, child.before or ""


def many(project: ProjectDir, database: Database, count: int = 21) -> ProjectDir:
    for number in range(1, count + 1):
        project.write(f"{number:03}_t{number}.sql", f"CREATE TABLE t{number} (id INTEGER);\n")
    project.configure(dev={"name": "Development", "url": database.url})
    return project


# -- NO_COLOR and TERM=dumb ------------------------------------------------------------------
@pytest.mark.parametrize("plain", [{"NO_COLOR": "1", "TERM": "xterm"}, {"TERM": "dumb"}])
def test_no_escape_codes_under_no_color_or_a_dumb_terminal(
    project: ProjectDir, tmp_path: object, plain: dict[str, str]
) -> None:
    database = Database("sqlite", f"sqlite:///{project.root / 'dev.db'}")
    many(project, database)

    code, coloured = on_terminal(project, "apply", "dev", "--yes", TERM="xterm")
    assert code == 0, coloured
    assert ESC in coloured  # the bar and the green summary: the check below can fail
    project.write("022_t22.sql", "CREATE TABLE t22 (id INTEGER);\n")
    for number in range(23, 45):
        project.write(f"{number:03}_t{number}.sql", f"CREATE TABLE t{number} (id INTEGER);\n")

    code, output = on_terminal(project, "apply", "dev", "--yes", **plain)

    assert code == 0, output
    assert ESC not in output
    assert "applied 044_t44" in output  # a line each instead of the bar
    code, status = on_terminal(project, "status", **plain)
    assert code == 0 and ESC not in status


def test_the_bar_is_labelled_with_what_runs(project: ProjectDir) -> None:
    database = Database("sqlite", f"sqlite:///{project.root / 'dev.db'}")
    many(project, database)

    code, output = on_terminal(project, "apply", "dev", "--yes", TERM="xterm")

    assert code == 0, output
    assert "verify" not in output
    assert "Applied 21 migrations" in output


# -- a line as each migration starts, and its time on a terminal -----------------------------
def test_each_migration_says_when_it_starts(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("  applying 002_create_posts ...")
    assert lines[start + 1].startswith("  applied 002_create_posts (")


def test_a_long_migration_shows_its_elapsed_time_on_a_terminal(
    project: ProjectDir, pg_database: Database
) -> None:
    project.write("001_slow.sql", "SELECT pg_sleep(2.6);\n")
    project.configure(dev={"url": pg_database.url})

    code, output = on_terminal(project, "apply", "dev", "--yes", NO_COLOR="1")

    assert code == 0, output
    assert "\r  applying 001_slow ... 2 s" in output
    assert "\r  applied 001_slow (" in output


# -- repair ---------------------------------------------------------------------------------
def test_conflicting_repair_flags_are_a_usage_error(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0

    result = four.run("repair", "dev", "1", "--forget", "--accept")

    assert result.exit_code == 2
    assert "--forget and --accept do not go together" in result.output
    assert len(database.history()) == 4


def test_remark_a_dev_database_restored_from_production(
    four: ProjectDir, database: Database
) -> None:
    four.configure(dev={"name": "Development", "url": database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0
    database.query("UPDATE sqlstage_environment SET environment = 'pro', protected = 1")

    refused = four.run("apply", "dev", "--yes")
    assert refused.exit_code == 3
    assert "`sqlstage repair dev --remark`" in refused.stderr
    with pytest.raises(Refused, match="no one to answer"):
        commands.remark(Project.load(four.root), "dev")
    wrong = four.run("repair", "dev", "--remark", "--yes", input="pro\n")
    assert wrong.exit_code == 3
    assert database.query("SELECT environment, protected FROM sqlstage_environment") == [("pro", 1)]

    result = four.run("repair", "dev", "--remark", input="dev\n")

    assert result.exit_code == 0, result.output
    assert "marked 'pro' (protected), not 'dev'" in result.output
    assert database.query("SELECT environment, protected FROM sqlstage_environment") == [("dev", 0)]
    four.write("005_more.sql", "CREATE TABLE more (id INTEGER);\n")
    assert four.run("apply", "dev", "--yes").exit_code == 0
    assert four.run("repair", "dev", "--remark", input="dev\n").exit_code == 3  # nothing to do


# -- files ----------------------------------------------------------------------------------
def test_a_file_new_wrote_is_a_warning_where_files_are_only_read(four: ProjectDir) -> None:
    four.configure(dev={"url": "sqlite:///dev.db"})
    assert four.run("new", "add_tags").exit_code == 0

    status = four.run("status")
    assert status.exit_code == 0, status.output
    assert "005_add_tags.sql: no SQL yet" in status.stderr
    assert "001_create_users" in status.output
    pending = four.run("pending", "dev")
    assert pending.exit_code == 0
    assert pending.stdout.splitlines()[-1] == "004_add_status_column"
    assert "no SQL yet" in pending.stderr

    applied = four.run("apply", "dev", "--yes")
    assert applied.exit_code == 2
    assert "005_add_tags.sql: the forward section holds no SQL" in applied.stderr


def test_a_missing_status_file_is_said(four: ProjectDir) -> None:
    four.configure(dev={"url": "sqlite:///dev.db"})

    for command in (["status"], ["pending", "dev"]):
        result = four.run(*command)
        assert result.exit_code == 0
        assert "status.json does not exist: nothing is recorded as applied" in result.stderr


# -- where the URL came from ----------------------------------------------------------------
def test_the_marker_error_names_where_the_url_came_from(
    four: ProjectDir, database: Database, tmp_path: object
) -> None:
    four.configure(dev={"url": "env:DEV_URL"}, pro={"url": "env:PRO_URL"})
    other = Database("sqlite", f"sqlite:///{four.root / 'other.db'}")
    (four.root / ".env.local").write_text(f"DEV_URL={other.url}\nPRO_URL={database.url}\n")
    assert four.run("apply", "pro", "--yes", env={"PRO_URL": database.url}).exit_code == 0

    # the process environment says the pro database, .env.local says another
    from_process = four.run("check", "dev", env={"DEV_URL": database.url})
    assert from_process.exit_code == 3
    assert "$DEV_URL in the process environment, which overrides .env.local" in (
        from_process.stderr
    )

    (four.root / ".env.local").write_text(f"DEV_URL={database.url}\n")
    from_file = four.run("check", "dev", env={"DEV_URL": ""})
    assert from_file.exit_code == 3
    assert "$DEV_URL in .env.local" in from_file.stderr


# -- help -----------------------------------------------------------------------------------
def test_apply_and_rollback_help_say_what_migration_means(project: ProjectDir) -> None:
    apply_help = project.run("apply", "--help").output
    rollback_help = project.run("rollback", "--help").output

    assert "exactly 005, which must be the next pending one" in apply_help
    assert "rolls back 005 and everything after" in apply_help
    assert "002 and every migration applied after it" in rollback_help


# -- hidden input ---------------------------------------------------------------------------
def test_input_that_cannot_be_hidden_is_not_read(tmp_path: Path) -> None:
    """No terminal to turn echo off on (a new session, stdin a pipe): getpass would print
    GetPassWarning and read the pipe with echo on; sqlstage reads nothing and says why."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sqlstage.cli.app import State\n"
        "from sqlstage.errors import ConfigError\n"
        "try:\n"
        "    State(Path('.')).ask_hidden('Database URL for pro')\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
        "    sys.exit(2)\n"
    )
    result = subprocess.run(
        ["setsid", "-w", sys.executable, "-c", script],
        input="postgresql://app:Secret@db/app\n",
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert "GetPassWarning" not in result.stderr
    assert "the input cannot be hidden here, so it is not read" in result.stdout
