"""A run imports only the module of the command it runs, and every command is still there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from sqlstage.cli import cli
from sqlstage.cli.app import COMMAND_MODULES, COMMAND_SUMMARIES, summary
from tests.conftest import Database, ProjectDir

PROBE = """
import sys
from sqlstage.cli import main
try:
    main(sys.argv[1:])
finally:
    loaded = sorted(m for m in sys.modules if m.startswith(("sqlstage.", "psycopg")))
    print("LOADED", *loaded, file=sys.stderr)
"""


def loaded_by(*args: str, cwd: Path, probe: str = PROBE) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=cwd, capture_output=True, text=True
    )
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("LOADED"))
    return line.split()[1:]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line}
    assert listed == set(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        assert CliRunner().invoke(cli, [name, "--help"]).exit_code == 0, name


def test_status_imports_only_its_command_module(tmp_path: Path) -> None:
    (tmp_path / "sqlstage.toml").write_text('[environments.dev]\nurl = "env:DATABASE_URL"\n')
    (tmp_path / "database" / "migrations" / "sql").mkdir(parents=True)

    loaded = loaded_by("status", cwd=tmp_path)

    assert "sqlstage.cli.status" in loaded
    for other in ("sqlstage.cli.apply", "sqlstage.cli.admin", "sqlstage.cli.lint", "psycopg"):
        assert other not in loaded


def test_lint_of_files_reads_the_config_alone(tmp_path: Path) -> None:
    """`lint FILE...` (pre-commit, the bench) needs sqlstage.toml's [lint], not the project:
    the catalog, status.json, the runner and git cost ~15 ms of imports (issue 15)."""
    (tmp_path / "sqlstage.toml").write_text('[environments.dev]\nurl = "env:DATABASE_URL"\n')
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (id bigint);\n")

    loaded = loaded_by("lint", "001_a.sql", cwd=tmp_path)

    assert {"sqlstage.cli.lint", "sqlstage.config", "sqlstage.lint.engine"} <= set(loaded)
    for other in ("sqlstage.project", "sqlstage.runner", "sqlstage.catalog", "sqlstage.git"):
        assert other not in loaded
    assert "psycopg" not in loaded


def test_help_lists_the_commands_without_importing_them(tmp_path: Path) -> None:
    loaded = loaded_by("--help", cwd=tmp_path)
    assert "sqlstage.cli.app" in loaded
    assert not {f"sqlstage.cli.{module}" for module in COMMAND_MODULES.values()} & set(loaded)


def test_help_summaries_are_what_each_command_says_of_itself() -> None:
    """The `--help` list is written down in app.py; it must read as click would make it from
    each command's own help, at any terminal width."""
    assert set(COMMAND_SUMMARIES) == set(COMMAND_MODULES)
    context = click.Context(cli)
    for name in COMMAND_SUMMARIES:
        command = cli.get_command(context, name)
        assert command is not None and not command.hidden
        for limit in (20, 45, 66, 120, 400):
            assert summary(name, limit) == command.get_short_help_str(limit)


def test_a_no_op_apply_imports_nothing_only_other_runs_need(
    four: ProjectDir, pg_database: Database
) -> None:
    """Issue 15: the no-op's start-up is most of its time; what only a run that changes
    something (or another command) uses stays out of it."""
    four.configure(dev={"url": pg_database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0
    probe = PROBE.replace('m.startswith(("sqlstage.cli.", "psycopg"))', "True")

    loaded = loaded_by("apply", "dev", "--yes", cwd=four.root, probe=probe)

    assert "psycopg" in loaded and "sqlstage.commands" in loaded
    for other in (
        "sqlstage.report",
        "sqlstage.repair",
        "sqlstage.runner",
        "sqlstage.fleet_record",
        "sqlstage.drift.check",
        "sqlstage.schema",
        "sqlstage.scratch",
        "sqlstage.drivers.postgres_message",
        "sqlstage.cli.json_text",
        "sqlstage.lint",
        "pglast",
        "difflib",
        "secrets",
    ):
        assert other not in loaded, other


# -- the end of a run: `sqlstage.cli.run` skips the interpreter's teardown -----------------
RUN = """
import atexit, sys, threading, time
{setup}
sys.argv = ["sqlstage", *sys.argv[1:]]
from sqlstage.cli import run
run()
"""


def run_process(*args: str, cwd: Path, setup: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUN.format(setup=setup), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_the_exit_keeps_the_exit_code_and_all_the_output(four: ProjectDir) -> None:
    for number in range(5, 400):  # a --json document far larger than a pipe's buffer
        four.write(f"{number:03d}_more_{number}.sql", f"CREATE TABLE t{number} (id int);\n")
    four.configure(dev={"url": "sqlite:///dev.db"})

    done = run_process("status", "--json", cwd=four.root)
    unknown = run_process("apply", "nosuch", "--yes", cwd=four.root)

    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["migrations"]) == 399
    assert unknown.returncode == 2
    assert "unknown environment 'nosuch'" in unknown.stderr


def test_the_exit_runs_atexit_and_waits_for_other_threads(tmp_path: Path) -> None:
    setup = (
        "atexit.register(lambda: print('atexit ran'))\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread done'))).start()"
    )

    result = run_process("--help", cwd=tmp_path, setup=setup)

    assert result.returncode == 0
    assert result.stdout.startswith("Usage: sqlstage")
    assert result.stdout.rstrip().endswith("atexit ran")
    assert "thread done" in result.stdout


def test_an_exception_still_gets_pythons_traceback(tmp_path: Path) -> None:
    setup = "import sqlstage.cli as c; c.main = lambda: (_ for _ in ()).throw(RuntimeError('boom'))"

    result = run_process("--help", cwd=tmp_path, setup=setup)

    assert result.returncode == 1
    assert "RuntimeError: boom" in result.stderr and "Traceback" in result.stderr


def test_what_atexit_prints_is_flushed_too(tmp_path: Path) -> None:
    result = run_process("--help", cwd=tmp_path, setup="atexit.register(lambda: print('bye'))")

    assert result.returncode == 0
    assert result.stdout.rstrip().endswith("bye")
