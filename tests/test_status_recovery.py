"""A damaged status.json: a clear error naming the line, `status --repair` offline, and
`status --live ENV --write` rebuilding from the database."""

from __future__ import annotations

import pytest

from tests.conftest import Database, ProjectDir


@pytest.fixture
def applied(four: ProjectDir) -> ProjectDir:
    root = four.root
    four.configure(
        dev={"url": f"sqlite:///{root / 'dev.db'}"},
        staging={"url": f"sqlite:///{root / 'staging.db'}"},
    )
    assert four.run("apply", "dev", "--yes").exit_code == 0
    assert four.run("apply", "staging", "--to", "002", "--yes").exit_code == 0
    return four


def _conflict(project: ProjectDir) -> None:
    """Two branches each applied something to staging: git leaves markers in its entry."""
    lines = project.status_file.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if '"staging": {' in line)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("    }"))
    ours = lines[start : end + 1]
    theirs = [line.replace("002_create_posts", "003_add_user_profile") for line in ours]
    lines[start : end + 1] = ["<<<<<<< HEAD\n", *ours, "=======\n", *theirs, ">>>>>>> other\n"]
    project.status_file.write_text("".join(lines))


def test_conflict_markers_are_a_clear_error_naming_the_line(applied: ProjectDir) -> None:
    _conflict(applied)
    result = applied.run("status")
    assert result.exit_code == 2
    assert "status.json:" in result.output and "holds git conflict markers" in result.output
    assert "sqlstage status --repair" in result.output


def test_status_repair_keeps_what_both_sides_agree_on(applied: ProjectDir) -> None:
    _conflict(applied)

    result = applied.run("status", "--repair")

    assert result.exit_code == 0, result.output
    assert "rewrote" in result.output
    assert "staging: unknown; run `sqlstage status --live staging --write`" in result.output
    assert "dev: unknown" not in result.output
    written = applied.status_json()
    assert written["environments"]["dev"]["lastApplied"] == "004_add_status_column"
    assert written["environments"]["staging"]["lastApplied"] is None

    live = applied.run("status", "--live", "staging", "--write")
    assert live.exit_code == 0, live.output
    assert applied.status_json()["environments"]["staging"]["lastApplied"] == "002_create_posts"
    assert applied.run("status").exit_code == 0


def test_live_write_rebuilds_an_unparseable_file(applied: ProjectDir) -> None:
    applied.status_file.write_text('{"environments": {"dev": \n')

    assert applied.run("status").exit_code == 2
    nothing = applied.run("status", "--repair")
    assert nothing.exit_code == 0
    assert "nothing in" in nothing.output and "can be read" in nothing.output

    first = applied.run("status", "--live", "dev", "--write")
    assert first.exit_code == 0, first.output
    assert "run `sqlstage status --live staging --write`" in first.output
    for env in ("dev", "staging"):
        result = applied.run("status", "--live", env, "--write")
        assert result.exit_code == 0, result.output
    written = applied.status_json()
    assert written["environments"]["dev"]["lastApplied"] == "004_add_status_column"
    assert written["environments"]["staging"]["lastApplied"] == "002_create_posts"


def test_apply_refuses_a_damaged_file_before_changing_anything(applied: ProjectDir) -> None:
    _conflict(applied)
    damaged = applied.status_file.read_text()
    applied.write("005_more.sql", "CREATE TABLE more (x INTEGER);\n")

    result = applied.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert "holds git conflict markers" in result.stderr
    assert "sqlstage status --repair" in result.stderr
    assert "Connected" not in result.output
    assert applied.status_file.read_text() == damaged  # other environments' records kept
    dev = Database("sqlite", f"sqlite:///{applied.root / 'dev.db'}")
    assert "more" not in dev.tables() and "005_more" not in dev.history()
