"""One runner at a time: a second run waits for the first, then re-reads the history."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sqlstage.project import Project
from tests.conftest import Database, ProjectDir
from tests.processes import set_slow, slow_sql, start, wait_for_log


@pytest.fixture
def dev(four: ProjectDir, database: Database) -> ProjectDir:
    four.configure(dev={"url": database.url})
    return four


def test_a_held_lock_makes_apply_wait_then_exit_3_changing_nothing(
    dev: ProjectDir, database: Database
) -> None:
    project = Project.load(dev.root)
    with project.connect("dev") as holder, project.locked(holder):
        result = start(dev, "apply", "dev", "--yes", "--lock-wait", "1")
        out, err = result.communicate(timeout=30)

    assert result.returncode == 3, out + err
    assert "waiting up to 1 s: dev is being changed by sqlstage dev " in err
    assert "is being changed by sqlstage dev" in err and "changed nothing" in err
    assert "--lock-wait" in err
    assert database.history() == []
    assert not dev.status_file.exists()


def test_a_waiting_run_rereads_the_history_and_reports_up_to_date(
    dev: ProjectDir, database: Database
) -> None:
    project = Project.load(dev.root)
    with project.connect("dev") as holder, project.locked(holder):
        waiter = start(dev, "apply", "dev", "--yes", "--lock-wait", "30")
        time.sleep(1.5)  # the waiter is connected and polling
        project.apply(holder, project.plan_apply(holder))  # re-entrant: lock already held
    out, err = waiter.communicate(timeout=30)

    assert waiter.returncode == 0, out + err
    assert "is being changed by sqlstage dev" in err
    assert "dev is up to date" in out
    assert len(database.history()) == 4


def test_two_processes_started_together_apply_each_migration_once(
    dev: ProjectDir, database: Database
) -> None:
    set_slow(database, 1)
    dev.write("005_slow.sql", slow_sql(database))

    first = start(dev, "apply", "dev", "--yes")
    second = start(dev, "apply", "dev", "--yes")
    results = [p.communicate(timeout=60) for p in (first, second)]

    assert [first.returncode, second.returncode] == [0, 0], results
    outputs = [out for out, _ in results]
    assert sum("Applied 5 migrations" in out for out in outputs) == 1, outputs
    assert sum("dev is up to date" in out for out in outputs) == 1, outputs
    assert sum("is being changed by" in err for _, err in results) == 1
    assert len(database.history()) == 5


def test_lock_is_released_when_the_holder_is_killed(dev: ProjectDir, database: Database) -> None:
    set_slow(database, 30)
    dev.write("005_slow.sql", slow_sql(database))
    holder = start(dev, "apply", "dev", "--yes")
    wait_for_log(dev, "migration 005_slow")
    holder.kill()
    holder.wait()

    set_slow(database, 0)
    result = dev.run("apply", "dev", "--yes", "--lock-wait", "10")

    assert result.exit_code == 0, result.output
    assert "Applied 1 migration to dev" in result.output
    assert database.history()[-1] == "005_slow"


def test_library_apply_takes_the_lock_and_refuses_a_stale_plan(
    dev: ProjectDir, database: Database
) -> None:
    project = Project.load(dev.root)
    with project.connect("dev") as first, project.connect("dev") as second:
        stale = project.plan_apply(second)
        project.apply(first, project.plan_apply(first))
        with pytest.raises(Exception, match="applied to dev by another run") as refused:
            project.apply(second, stale)
    assert getattr(refused.value, "exit_code", None) == 3
    assert len(database.history()) == 4


def test_sqlite_lock_file_names_its_holder(tmp_path: Path, four: ProjectDir) -> None:
    four.configure(dev={"url": f"sqlite:///{tmp_path / 'app.db'}"})
    project = Project.load(four.root)
    with project.connect("dev") as holder, project.locked(holder):
        text = (tmp_path / "app.db-sqlstage.lock").read_text()
        assert text.startswith("sqlstage dev ") and "pid" in text
    assert (tmp_path / "app.db-sqlstage.lock").read_text() == ""
