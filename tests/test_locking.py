"""One runner at a time: a second run waits for the first, then re-reads the history."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlstage.commands import ApplyOptions, apply
from sqlstage.errors import Locked
from sqlstage.project import Project
from sqlstage.session import open_session
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
    with open_session(project.config, "dev") as holder, holder.locked():
        result = start(dev, "apply", "dev", "--yes", "--lock-wait", "1")
        out, err = result.communicate(timeout=30)

    assert result.returncode == 3, out + err
    assert "waiting up to 1 s: dev is being changed by sqlstage dev " in err
    assert "is being changed by sqlstage dev" in err and "changed nothing" in err
    assert "--lock-wait" in err
    assert database.history() == []
    assert not dev.status_file.exists()


def test_two_processes_started_together_apply_each_migration_once(
    dev: ProjectDir, database: Database
) -> None:
    set_slow(database, 1)
    dev.write("005_slow.sql", slow_sql(database))

    first = start(dev, "apply", "dev", "--yes", "--not-from-migrations")
    second = start(dev, "apply", "dev", "--yes", "--not-from-migrations")
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
    holder = start(dev, "apply", "dev", "--yes", "--not-from-migrations")
    wait_for_log(dev, "migration 005_slow")
    holder.kill()
    holder.wait()

    set_slow(database, 0)
    result = dev.run("apply", "dev", "--yes", "--lock-wait", "10")

    assert result.exit_code == 0, result.output
    assert "Applied 1 migration to dev" in result.output
    assert database.history()[-1] == "005_slow"


def test_library_apply_takes_the_lock(dev: ProjectDir, database: Database) -> None:
    """A script's apply waits for the run lock like the CLI's, then refuses (exit 3); it
    plans inside the lock, so a plan can never be stale."""
    project = Project.load(dev.root)
    with (
        open_session(project.config, "dev") as holder,
        holder.locked(),
        pytest.raises(Locked, match="changed nothing") as refused,
    ):
        apply(project, "dev", ApplyOptions(yes=True, lock_wait=0.5))
    assert refused.value.exit_code == 3
    assert database.history() == []
    assert len(apply(project, "dev", ApplyOptions(yes=True)).done) == 4


def test_sqlite_lock_file_names_its_holder(tmp_path: Path, four: ProjectDir) -> None:
    four.configure(dev={"url": f"sqlite:///{tmp_path / 'app.db'}"})
    project = Project.load(four.root)
    with open_session(project.config, "dev") as holder, holder.locked():
        text = (tmp_path / "app.db-sqlstage.lock").read_text()
        assert text.startswith("sqlstage dev ") and "pid" in text
    assert (tmp_path / "app.db-sqlstage.lock").read_text() == ""


def test_the_public_schemas_key_is_the_hash_of_its_tables_name() -> None:
    """A run of an older sqlstage and one of this version on the same database take the
    same lock: the written-out key is still what the hash gives."""
    import hashlib

    from sqlstage.locking import PUBLIC_KEY, advisory_key

    digest = hashlib.sha256(b"sqlstage:sqlstage_history").digest()
    assert PUBLIC_KEY == advisory_key("sqlstage_history") == int.from_bytes(digest[:8], "big") >> 1
    assert advisory_key('"tenant_1".') != PUBLIC_KEY
