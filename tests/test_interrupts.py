"""Ctrl-C, SIGTERM and kill -9 at any moment: exit codes, the log, status.json, and a run
outside a transaction that can say exactly how far it got and resume."""

from __future__ import annotations

import signal
import sys
import time

import pexpect
import pytest

from tests.conftest import Database, ProjectDir
from tests.processes import set_slow, slow_sql, start, wait_for_log


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"url": database.url})
    four.write("005_slow_table.sql", "CREATE TABLE half (x INTEGER);\n" + slow_sql(database))
    return four


def test_sigterm_rolls_back_logs_syncs_status_and_exits_143(
    dev: ProjectDir, database: Database
) -> None:
    set_slow(database, 5)
    run = start(dev, "apply", "dev", "--yes", "--not-from-migrations")
    log = wait_for_log(dev, "migration 005_slow_table")
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)

    assert run.returncode == 143, out + err
    assert "terminated (SIGTERM): the work in progress was rolled back" in err
    assert "Traceback" not in err
    assert "INTERRUPTED (SIGTERM)" in log.read_text().splitlines()[-1]
    assert "half" not in database.tables()
    assert len(database.history()) == 4
    assert dev.status_json()["environments"]["dev"]["lastApplied"] == "004_add_status_column"


def test_ctrl_c_at_a_yes_no_prompt_exits_130(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sqlstage", "-C", str(four.root), "apply", "dev"],
        encoding="utf-8",
        timeout=30,
    )
    child.expect(r"Apply 4 migrations to dev\? \[y/N\]")
    # a person is slower than pexpect: a signal between the prompt's write and the read of
    # stdin is only seen once a key is read (CPython's input() has that window)
    time.sleep(0.3)
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()

    assert child.exitstatus == 130, child.before
    assert "interrupted at a prompt: nothing was changed" in (child.before or "")
    assert database.history() == []


def test_sigterm_at_a_prompt_exits_143(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sqlstage", "-C", str(four.root), "apply", "dev"],
        encoding="utf-8",
        timeout=30,
    )
    child.expect(r"\[y/N\]")
    time.sleep(0.3)  # as above
    child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF)
    child.close()

    assert child.exitstatus == 143, child.before
    assert database.history() == []


NO_TRANSACTION = (
    "-- sqlstage:no-transaction\n"
    "CREATE TABLE one (x int);\n"
    "CREATE TABLE two (x int);\n"
    "{slow}\n"
    "CREATE TABLE four (x int);\n"
)


def test_kill_9_outside_a_transaction_names_what_committed_and_resumes(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0
    set_slow(pg_database, 30)
    four.write("005_steps.sql", NO_TRANSACTION.format(slow=slow_sql(pg_database)))
    run = start(four, "apply", "dev", "--yes")
    wait_for_log(four, "ms): CREATE TABLE two")
    time.sleep(0.5)  # into the slow statement
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)

    assert {"one", "two"} <= pg_database.tables() and "four" not in pg_database.tables()
    assert pg_database.query(
        "SELECT status, statements_done FROM sqlstage_history WHERE migration = '005_steps'"
    ) == [("running", 2)]

    blocked = four.run("apply", "dev", "--yes")
    assert blocked.exit_code == 3
    assert "005_steps stopped midway on dev" in blocked.stderr
    assert "a run was killed while applying it" in blocked.stderr
    assert "statements 1-2 of 4 committed, statement 3 (line 4) and after did not" in (
        blocked.stderr
    )
    assert "sqlstage repair dev 005_steps --resume" in blocked.stderr

    set_slow(pg_database, 0)
    resumed = four.run("repair", "dev", "005_steps", "--resume", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "resumed 005_steps on dev: ran statements 3-4" in resumed.output
    assert "four" in pg_database.tables()
    assert pg_database.query(
        "SELECT status FROM sqlstage_history WHERE migration = '005_steps'"
    ) == [("applied",)]
    assert four.status_json()["environments"]["dev"]["lastApplied"] == "005_steps"
    assert "failed" not in four.status_json()["environments"]["dev"]


def test_a_failure_outside_a_transaction_resumes_after_the_fix(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url})
    four.write(
        "005_steps.sql",
        "-- sqlstage:no-transaction\nCREATE TABLE one (x int);\n"
        "CREATE INDEX CONCURRENTLY needs ON missing (x);\nCREATE TABLE three (x int);\n",
    )
    failed = four.run("apply", "dev", "--yes")
    assert failed.exit_code == 1
    assert pg_database.query(
        "SELECT status, statements_done FROM sqlstage_history WHERE migration = '005_steps'"
    ) == [("failed", 1)]

    pg_database.query("CREATE TABLE missing (x int)")  # the fix
    resumed = four.run("repair", "dev", "005", "--resume", "--yes")

    assert resumed.exit_code == 0, resumed.output
    assert "ran statements 2-3" in resumed.output
    assert {"one", "three"} <= pg_database.tables()
    assert pg_database.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'needs'") == [(1,)]
