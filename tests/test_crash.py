"""A run killed or interrupted mid-migration leaves that migration fully absent."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import Database, ProjectDir
from tests.processes import set_slow, slow_sql, start, wait_for_log


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"url": database.url})
    four.write("005_slow_table.sql", "CREATE TABLE half (x INTEGER);\n" + slow_sql(database))
    return four


def test_kill_9_mid_migration_leaves_it_absent_and_the_next_run_applies_it(
    dev: ProjectDir, database: Database
) -> None:
    set_slow(database, 30)
    run = start(dev, "apply", "dev", "--yes", "--not-from-migrations")
    wait_for_log(dev, "migration 005_slow_table")
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)

    assert "half" not in database.tables()
    assert database.history() == [
        "001_create_users",
        "002_create_posts",
        "003_add_user_profile",
        "004_add_status_column",
    ]

    set_slow(database, 0)
    again = dev.run("apply", "dev", "--yes")
    assert again.exit_code == 0, again.output
    assert "Applied 1 migration to dev" in again.output
    assert "half" in database.tables()
    assert dev.status_json()["environments"]["dev"]["lastApplied"] == "005_slow_table"


def test_ctrl_c_rolls_back_the_migration_logs_it_and_exits_130(
    dev: ProjectDir, database: Database
) -> None:
    set_slow(database, 3)
    run = start(dev, "apply", "dev", "--yes", "--not-from-migrations")
    log = wait_for_log(dev, "migration 005_slow_table")
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=30)

    assert run.returncode == 130, out + err
    assert "interrupted: the work in progress was rolled back" in err
    assert "scratch" not in err  # verify's words are verify's alone
    assert "INTERRUPTED" in log.read_text().splitlines()[-1]
    assert "half" not in database.tables()
    assert "005_slow_table" not in database.history()
    assert len(database.history()) == 4
    assert dev.status_json()["environments"]["dev"]["lastApplied"] == "004_add_status_column"
