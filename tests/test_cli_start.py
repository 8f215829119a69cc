"""A run imports only the module of the command it runs, and every command is still there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from sqlstage.cli import cli
from sqlstage.cli.app import COMMAND_MODULES, COMMAND_SUMMARIES, summary

PROBE = """
import sys
from sqlstage.cli import main
try:
    main(sys.argv[1:])
finally:
    loaded = sorted(m for m in sys.modules if m.startswith(("sqlstage.", "psycopg")))
    print("LOADED", *loaded, file=sys.stderr)
"""


def loaded_by(*args: str, cwd: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True
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
