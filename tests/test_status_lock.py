"""status.json under a lock: runs on different environments of one checkout, started together,
never lose each other's entries (issue 10: one entry lost in 2 of 8 trials)."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from sqlstage.config import load_config
from sqlstage.history import AppliedMigration
from sqlstage.project import Project
from sqlstage.status_file import (
    EnvironmentState,
    Recorded,
    read_status,
    state_from_history,
    with_environment,
    write_status,
)
from tests.conftest import ProjectDir
from tests.processes import start

ENVIRONMENTS = ("alpha", "beta", "gamma", "delta")
#: enough migrations that rendering and writing status.json takes a few milliseconds: on the
#: code without the lock, 4 runs started together lost an entry in about half the trials
MIGRATIONS = 150
TRIALS = 10


@pytest.fixture
def many(project: ProjectDir) -> ProjectDir:
    project.configure(
        **{key: {"url": f"sqlite:///{project.root / f'{key}.db'}"} for key in ENVIRONMENTS}
    )
    for number in range(1, MIGRATIONS + 1):
        project.write(f"{number:03d}_table_{number}.sql", f"CREATE TABLE t{number} (id INTEGER);\n")
    return project


def _fresh(project: ProjectDir) -> None:
    project.status_file.unlink(missing_ok=True)
    for path in project.root.glob("*.db*"):
        path.unlink()


@pytest.mark.slow
def test_runs_on_four_environments_started_together_keep_every_entry(many: ProjectDir) -> None:
    last = f"{MIGRATIONS:03d}_table_{MIGRATIONS}"
    for trial in range(1, TRIALS + 1):
        _fresh(many)
        runs = [start(many, "apply", key, "--yes") for key in ENVIRONMENTS]
        for run in runs:
            out, err = run.communicate(timeout=120)
            assert run.returncode == 0, out + err
        entries = many.status_json()["environments"]
        recorded = {key: entries[key]["lastApplied"] for key in ENVIRONMENTS}
        assert recorded == dict.fromkeys(ENVIRONMENTS, last), f"trial {trial}: {recorded}"
        assert all(len(entries[key]["applied"]) == MIGRATIONS for key in ENVIRONMENTS)


def test_the_lock_leaves_no_stray_file_and_keeps_the_file_mode(many: ProjectDir) -> None:
    assert many.run("apply", "alpha", "--to", "001", "--yes").exit_code == 0
    many.status_file.chmod(0o664)

    assert many.run("apply", "beta", "--to", "001", "--yes").exit_code == 0

    folder = many.status_file.parent
    assert sorted(p.name for p in folder.iterdir()) == ["sql", "status.json"]
    assert many.status_file.stat().st_mode & 0o777 == 0o664


def test_a_run_waits_for_the_lock_on_the_folder_then_keeps_the_other_entry(
    many: ProjectDir,
) -> None:
    """A writer holding the lock (here: this test) is waited for; its entry survives."""
    from sqlstage.writable import folder_lock

    project = Project.load(many.root)
    with folder_lock(many.status_file.parent, "status.json"):
        run = start(many, "apply", "alpha", "--to", "001", "--yes")
        deadline = time.monotonic() + 60
        while not any("applied 001_table_1 in" in p.read_text() for p in many.logs()):
            assert time.monotonic() < deadline and run.poll() is None, run.communicate()
            time.sleep(0.05)
        time.sleep(1)  # the run is at its status.json update, waiting for the lock
        assert run.poll() is None, "the run did not wait for the lock"
        assert not many.status_file.exists()
        # meanwhile, under the lock, this test writes another environment's entry
        beta = state_from_history("beta", [_row("001_table_1")])
        status = with_environment(read_status(many.status_file), "beta", beta)
        write_status(many.status_file, status, project.config, project.catalog)
    out, err = run.communicate(timeout=60)

    assert run.returncode == 0, out + err
    entries = many.status_json()["environments"]
    assert entries["alpha"]["lastApplied"] == "001_table_1"
    assert entries["beta"]["lastApplied"] == "001_table_1"


def _row(name: str, index: int = 0) -> AppliedMigration:
    from datetime import UTC, datetime, timedelta

    when = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=index)
    return AppliedMigration(name, "c" * 64, when, "test@host", 1, "0", "applied", None)


# -- the function itself, from several processes ------------------------------------------

WRITES = 40


def _writer(root: str, key: str, through_project: bool) -> None:
    """Write `key`'s entry WRITES times, one more applied migration each time."""
    from sqlstage.catalog import load_catalog

    config = load_config(Path(root))
    catalog = load_catalog(config.migrations_dir)
    project = Project(config)
    for count in range(1, WRITES + 1):
        rows = [_row(f"{n:03d}_table_{n}", n) for n in range(1, count + 1)]
        if through_project:
            project.record_status(config.environment(key), rows)
        else:
            from sqlstage.status_file import update_environment

            recorded = tuple(Recorded(r.migration, f"t{n}", r.checksum) for n, r in enumerate(rows))
            state = EnvironmentState(key, rows[-1].migration, "t", recorded)
            update_environment(config.status_file, key, state, config, catalog)


@pytest.mark.parametrize("through_project", [False, True], ids=["update_environment", "project"])
def test_concurrent_writers_of_different_environments_keep_every_last_write(
    many: ProjectDir, through_project: bool
) -> None:
    """Four processes rewrite their own environment's entry 40 times each, at full speed:
    every environment ends with its last write, and the file is valid JSON throughout."""
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_writer, args=(str(many.root), key, through_project))
        for key in ENVIRONMENTS
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0

    status = read_status(many.status_file)
    last = f"{WRITES:03d}_table_{WRITES}"
    assert {key: status.environments[key].last_applied for key in ENVIRONMENTS} == dict.fromkeys(
        ENVIRONMENTS, last
    )
    assert all(len(status.environments[key].applied) == WRITES for key in ENVIRONMENTS)
    json.loads(many.status_file.read_text(encoding="utf-8"))


def test_a_folder_lock_held_too_long_is_exit_3_naming_the_folder(tmp_path: Path) -> None:
    from sqlstage.errors import ExitCode, Locked
    from sqlstage.writable import folder_lock

    # flock locks of two open files exclude each other within one process too
    with folder_lock(tmp_path, "status.json"), pytest.raises(Locked) as refused:  # noqa: SIM117
        with folder_lock(tmp_path, "status.json", wait_seconds=0.2):
            pass

    assert refused.value.exit_code == ExitCode.REFUSED
    assert f"lock on {tmp_path} for 0.2 s while writing status.json" in str(refused.value)
