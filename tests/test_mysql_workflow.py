"""The user's workflow on MariaDB/MySQL through the CLI: apply, offline status, rollback, and a
DDL migration that fails midway (its earlier statements stay committed, and say so)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pexpect

from tests.conftest import Database, ProjectDir
from tests.test_workflow import _env, spawn

FIVE_STATEMENTS = """\
CREATE TABLE a (x INT);
CREATE TABLE b (x INT);
CREATE TABLE c (x INT);
CREATE TABLE d (x INT);
INSERT INTO d VALUES (1);
"""


def test_four_migrations_apply_show_offline_and_roll_back(
    four: ProjectDir, mysql_database: Database
) -> None:
    four.configure(dev={"url": mysql_database.url}, pro={"url": "prompt", "protected": True})
    applied = four.run("apply", "dev", "--yes")
    assert applied.exit_code == 0, applied.output
    database = mysql_database.url.rsplit("/", 1)[1]
    assert f"database {database} on 127.0.0.1:3306 as root" in applied.output
    assert {"users", "posts", "sqlstage_history"} <= mysql_database.tables()
    assert len(mysql_database.history()) == 4
    assert four.status_json()["pending"] == {"dev": [], "pro": sorted(mysql_database.history())}
    offline = four.run("status")
    assert offline.exit_code == 0 and "dev: 4 applied, up to date" in offline.output
    rolled = four.run("rollback", "dev", "--yes")
    assert rolled.exit_code == 0, rolled.output
    columns = mysql_database.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'posts'"
    )
    assert ("status",) not in columns and len(mysql_database.history()) == 3


def offline_status(project: ProjectDir) -> subprocess.CompletedProcess[str]:
    """`sqlstage status` with no URL anywhere and no terminal: it cannot connect."""
    return subprocess.run(
        [sys.executable, "-m", "sqlstage", "status"],
        cwd=project.root,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dev_then_pro_with_the_url_typed_at_the_prompt_then_offline_status(
    four: ProjectDir, mysql_database: Database, mysql_database2: Database
) -> None:
    """Issue 13's seed workflow, as on PostgreSQL (tests/test_workflow.py)."""
    four.configure(
        dev={"name": "Development", "url": "env:DATABASE_URL"},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    dev = spawn(four, "apply", "dev", env=_env(DATABASE_URL=mysql_database.url))
    dev.expect_exact("Apply 4 migrations to dev (Development)? [y/N]")
    dev.sendline("y")
    dev.expect(pexpect.EOF)
    dev.close()
    assert dev.exitstatus == 0, dev.before
    assert len(mysql_database.history()) == 4

    pro = spawn(four, "apply", "pro", "--to", "003", env=_env())
    pro.expect_exact("Database URL for pro (Production) (input hidden):")
    pro.sendline(mysql_database2.url)
    pro.expect_exact("Backup taken? [y/N]")
    shown = pro.before
    pro.sendline("y")
    pro.expect_exact("Type 'pro' to apply 3 migrations to Production:")
    shown += pro.before
    pro.sendline("pro")
    pro.expect(pexpect.EOF)
    shown += pro.before
    pro.close()
    assert pro.exitstatus == 0, shown
    assert "Connected: MariaDB" in shown or "Connected: MySQL" in shown
    assert "Applied 3 migrations to pro" in shown
    assert mysql_database2.url not in shown  # hidden input: no echo
    assert mysql_database2.history() == [
        "001_create_users",
        "002_create_posts",
        "003_add_user_profile",
    ]

    # `jq '.pending.pro' database/migrations/status.json`
    status = json.loads(four.status_file.read_text(encoding="utf-8"))
    assert status["pending"]["pro"] == ["004_add_status_column"]
    assert status["pending"]["dev"] == []

    for database in (mysql_database, mysql_database2):  # nothing left to connect to
        database.query(f"DROP DATABASE `{database.url.rsplit('/', 1)[1]}`")
    offline = offline_status(four)
    assert offline.returncode == 0, offline.stderr
    assert "pro (Production): 3 applied, 1 pending (004_add_status_column)" in offline.stdout
    assert "dev (Development): 4 applied, up to date" in offline.stdout


def test_a_ddl_migration_failing_at_statement_3_of_5_keeps_1_2_and_resume_completes_it(
    project: ProjectDir, mysql_database: Database
) -> None:
    project.configure(dev={"url": mysql_database.url})
    project.write("001_five.sql", FIVE_STATEMENTS)
    mysql_database.query("CREATE TABLE c (stray INT)")  # made by hand: statement 3 fails

    planned = project.run("apply", "dev", "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert "those before it stay applied and are not undone automatically" in planned.output
    assert mysql_database.history() == []
    result = project.run("apply", "dev", "--yes", "--not-from-migrations")
    assert result.exit_code == 1
    assert "001_five.sql:3" in result.output and "Table 'c' already exists" in result.output
    assert "repair dev 001_five --resume" in result.output
    assert mysql_database.tables() - {"sqlstage_history", "sqlstage_environment"} == {
        "a",
        "b",
        "c",
    }
    [(status, note, done)] = mysql_database.query(
        "SELECT status, note, statements_done FROM sqlstage_history"
    )
    assert (status, done) == ("failed", 2)
    assert "statement 3 of 5 (line 3)" in note and "statements 1-2 had committed" in note
    assert project.status_json()["environments"]["dev"]["failed"] == ["001_five"]
    offline = offline_status(project)
    assert re.search(r"^001_five +FAILED$", offline.stdout, re.M), offline.stdout
    assert "001_five failed midway on dev" in offline.stderr
    again = project.run("apply", "dev", "--yes")
    assert again.exit_code == 3 and "repair dev 001_five" in again.output

    mysql_database.query("DROP TABLE c")  # the fix
    resumed = project.run("repair", "dev", "001_five", "--resume", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "ran statements 3-5" in resumed.output
    assert {"a", "b", "c", "d"} <= mysql_database.tables()
    assert mysql_database.query("SELECT x FROM d") == [(1,)]
    assert mysql_database.query("SELECT status FROM sqlstage_history") == [("applied",)]
    assert project.status_json()["environments"]["dev"].get("failed", []) == []
    assert "dev: 1 applied, up to date" in offline_status(project).stdout


def test_a_file_mixing_ddl_and_dml_runs_statement_by_statement(
    project: ProjectDir, mysql_database: Database
) -> None:
    """On MySQL DDL commits itself anyway: a mixed file is not refused, and says so."""
    project.configure(dev={"url": mysql_database.url})
    project.write(
        "001_mixed.sql",
        "CREATE TABLE t (x INT);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n",
    )
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert "each statement commits on its own" in result.output
    assert mysql_database.query("SELECT COUNT(*) FROM t") == [(2,)]


def test_dml_only_runs_in_one_transaction_with_its_history_row(
    project: ProjectDir, mysql_database: Database
) -> None:
    mysql_database.query("CREATE TABLE t (x INT PRIMARY KEY)")
    project.configure(dev={"url": mysql_database.url})
    project.write("001_rows.sql", "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\n")
    result = project.run("apply", "dev", "--yes", "--not-from-migrations")
    assert result.exit_code == 1
    assert "001_rows.sql:2" in result.output
    assert mysql_database.query("SELECT COUNT(*) FROM t") == [(0,)]  # row 1 rolled back
    assert mysql_database.history() == []


def test_a_split_error_names_the_file_and_line_before_anything_runs(
    project: ProjectDir, mysql_database: Database
) -> None:
    project.configure(dev={"url": mysql_database.url})
    project.write("001_ok.sql", "CREATE TABLE ok (x INT);\n")
    project.write("002_bad.sql", "CREATE TABLE t (x INT);\n\nUSE other;\n")
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 2
    assert "002_bad.sql:3:" in result.output, result.output
    assert "ok" not in mysql_database.tables()


def test_verify_round_trips_on_a_scratch_database_and_drops_it(
    four: ProjectDir, mysql_database: Database
) -> None:
    four.configure(dev={"url": mysql_database.url})
    result = four.run("verify", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert "4 of 4 migrations round-trip" in result.output
    [scratch] = re.findall(r"database (sqlstage_verify_\w+) on 127.0.0.1", result.output)
    assert mysql_database.query(f"SHOW DATABASES LIKE '{scratch}'") == []


def test_verify_finds_a_rollback_that_does_not_undo_its_migration(
    four: ProjectDir, mysql_database: Database
) -> None:
    four.write(
        "005_add_flag.sql",
        """
        ALTER TABLE users ADD COLUMN flag INT;

        -- rollback
        -- SELECT 1;
        """,
    )
    four.configure(dev={"url": mysql_database.url})
    result = four.run("verify", "--env", "dev")
    assert result.exit_code == 1
    assert "005_add_flag" in result.output and "users.flag" in result.output


def test_schema_reads_information_schema(four: ProjectDir, mysql_database: Database) -> None:
    import json

    four.configure(dev={"url": mysql_database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0
    result = four.run("schema", "dev", "--json")
    assert result.exit_code == 0, result.output
    snapshot = json.loads(result.output)
    assert snapshot["dialect"] == "mysql"
    assert snapshot["objects"]["table"]["posts"].endswith("columns (id, user_id, title, status)")
    assert "sqlstage_history" not in snapshot["objects"]["table"]


def test_without_pymysql_a_mysql_url_names_the_extra_to_install(four: ProjectDir) -> None:
    """A plain `pip install sqlstage` has no PyMySQL: one line naming the extra, not a
    traceback, and the password in the URL shown masked."""
    url = "mysql://app:s3cret-pw@127.0.0.1:3306/app"
    four.configure(dev={"url": url})
    blocked = (
        "import sys; sys.modules['pymysql'] = None; "
        "from sqlstage.cli import main; sys.argv = ['sqlstage', *sys.argv[1:]]; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocked, "-C", str(four.root), "apply", "dev", "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'sqlstage[mysql]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert list(four.migrations.glob("*.sql"))  # nothing of the project was touched
