"""sqlstage.toml: finding it, validating it, and resolving each environment's URL."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlstage.cli import cli
from tests.conftest import FOUR_MIGRATIONS, Database, ProjectDir


def _toml(project: ProjectDir, text: str) -> None:
    (project.root / "sqlstage.toml").write_text(text, encoding="utf-8")


def _variable() -> str:
    """A variable name no other test (or the machine) uses."""
    return f"SQLSTAGE_TEST_URL_{uuid.uuid4().hex[:8].upper()}"


# -- finding the project -------------------------------------------------------------------


def test_walks_up_from_the_working_folder(
    four: ProjectDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    four.configure(dev={"url": "sqlite:///dev.db"})
    deep = four.root / "src" / "app" / "models"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)

    result = CliRunner().invoke(cli, ["pending", "dev"])

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [name.removesuffix(".sql") for name in FOUR_MIGRATIONS]


def test_dash_c_runs_as_if_started_there(
    four: ProjectDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    four.configure(dev={"url": "sqlite:///dev.db"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = CliRunner().invoke(cli, ["-C", str(four.root / "database"), "apply", "dev", "--yes"])

    assert result.exit_code == 0, result.output
    assert (four.root / "dev.db").is_file()  # sqlite:/// is relative to the project root
    assert not (elsewhere / "dev.db").exists()


def test_no_config_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "status"])

    assert result.exit_code == 2
    assert "no sqlstage.toml" in result.stderr
    assert "sqlstage init" in result.stderr


# -- validation ----------------------------------------------------------------------------


def test_unknown_top_level_key_is_named(four: ProjectDir) -> None:
    _toml(four, 'migration = "db/sql"\n\n[environments.dev]\nurl = "sqlite:///dev.db"\n')

    result = four.run("status")

    assert result.exit_code == 2
    assert "unknown key 'migration'" in result.stderr


def test_unknown_environment_key_is_named(four: ProjectDir) -> None:
    _toml(four, '[environments.dev]\nurl = "sqlite:///dev.db"\nprotect = true\n')

    result = four.run("status")

    assert result.exit_code == 2
    assert "unknown key 'protect' in [environments.dev]" in result.stderr


def test_environment_without_url_is_named(four: ProjectDir) -> None:
    _toml(four, '[environments.dev]\nname = "Development"\n')

    result = four.run("status")

    assert result.exit_code == 2
    assert "[environments.dev] needs url" in result.stderr


def test_invalid_toml_is_a_usage_error(four: ProjectDir) -> None:
    _toml(four, '[environments.dev]\nurl = "sqlite:///dev.db\n')

    result = four.run("status")

    assert result.exit_code == 2
    assert "sqlstage.toml" in result.stderr


@pytest.mark.parametrize(
    "command",
    [["apply", "staging", "--yes"], ["pending", "staging"], ["status", "--live", "staging"]],
)
def test_unknown_environment_is_named(four: ProjectDir, command: list[str]) -> None:
    four.configure(dev={"url": "sqlite:///dev.db"}, pro={"url": "prompt", "protected": True})

    result = four.run(*command)

    assert result.exit_code == 2
    assert "unknown environment 'staging' (configured: dev, pro)" in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "mssql://app@db/app",
        "mysql://app@db:99999/app",
        "localhost:5432/app",
        "postgresql://app@db:99999/app",
        "postgresql://app@db:port/app",
        "sqlite://dev.db",
        "sqlite:///",
    ],
)
def test_malformed_url_names_the_environment(four: ProjectDir, url: str) -> None:
    four.configure(dev={"url": "sqlite:///dev.db"}, staging={"url": url})

    result = four.run("apply", "staging", "--yes")

    assert result.exit_code == 2
    assert "environment 'staging'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_url_never_shows_its_password(four: ProjectDir) -> None:
    four.configure(staging={"url": "postgresql://app:Pa55word@db:99999/app"})

    result = four.run("apply", "staging", "--yes")

    assert result.exit_code == 2
    assert "Pa55word" not in result.output
    assert "app:***@db" in result.stderr


def test_environments_keep_their_order_from_the_file(four: ProjectDir) -> None:
    _toml(
        four,
        '[environments.zeta]\nurl = "sqlite:///z.db"\n\n'
        '[environments.alpha]\nurl = "sqlite:///a.db"\n\n'
        '[environments.pro]\nurl = "prompt"\nprotected = true\n',
    )

    result = four.run("status")
    as_json = json.loads(four.run("status", "--json").stdout)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].split() == ["migration", "zeta", "alpha", "pro"]
    assert list(as_json["environments"]) == ["zeta", "alpha", "pro"]


# -- resolving URLs ------------------------------------------------------------------------


def test_env_variable_comes_from_the_process_first(four: ProjectDir) -> None:
    variable = _variable()
    four.configure(dev={"url": f"env:{variable}"})
    (four.root / ".env.local").write_text(f"{variable}=sqlite:///from_file.db\n")

    result = four.run("apply", "dev", "--yes", env={variable: "sqlite:///from_process.db"})

    assert result.exit_code == 0, result.output
    assert (four.root / "from_process.db").is_file()
    assert not (four.root / "from_file.db").exists()


def test_env_variable_falls_back_to_env_local(four: ProjectDir) -> None:
    variable = _variable()
    four.configure(dev={"url": f"env:{variable}"})
    (four.root / ".env.local").write_text(f"# dev only\n{variable}=sqlite:///from_file.db\n")

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert (four.root / "from_file.db").is_file()


def test_env_variable_unset_everywhere_names_it(four: ProjectDir) -> None:
    variable = _variable()
    four.configure(dev={"url": f"env:{variable}"})

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert f"environment 'dev' reads its URL from ${variable}, which is not set" in result.stderr


def test_protected_environment_never_reads_env_local(four: ProjectDir) -> None:
    variable = _variable()
    # allow_non_interactive: without it an unattended run is refused before any URL is read
    four.configure(pro={"url": f"env:{variable}", "protected": True, "allow_non_interactive": True})
    (four.root / ".env.local").write_text(f"{variable}=sqlite:///pro.db\n")

    result = four.run("apply", "pro", "--yes")

    assert result.exit_code == 2
    assert f"${variable}, which is not set in the process environment" in result.stderr
    assert not (four.root / "pro.db").exists()


def test_protected_environment_reads_the_process_environment(
    four: ProjectDir, pg_database: Database
) -> None:
    variable = _variable()
    four.configure(
        pro={
            "name": "Production",
            "url": f"env:{variable}",
            "protected": True,
            "allow_non_interactive": True,
        }
    )

    result = four.run("apply", "pro", "--yes", env={variable: pg_database.url})

    assert result.exit_code == 0, result.output
    assert "Connected: PostgreSQL" in result.output
    assert len(pg_database.history()) == 4


def test_sqlite_relative_path_is_relative_to_the_project_root(four: ProjectDir) -> None:
    four.configure(dev={"url": "sqlite:///data/dev.db"})
    (four.root / "data").mkdir()

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert f"database {four.root / 'data' / 'dev.db'}" in result.output
    assert (four.root / "data" / "dev.db").is_file()


def test_sqlite_four_slashes_is_an_absolute_path(four: ProjectDir, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "abs.db"
    target.parent.mkdir()
    assert target.is_absolute()
    four.configure(dev={"url": f"sqlite:///{target}"})  # sqlite:/// + /tmp/... = four slashes
    assert (four.root / "sqlstage.toml").read_text().count("sqlite:////") == 1

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert target.is_file()
    assert not any(four.root.rglob("abs.db"))


def test_sqlite_folder_missing_is_cannot_connect(four: ProjectDir) -> None:
    four.configure(dev={"url": "sqlite:///no/such/folder/dev.db"})

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 4
    assert "does not exist" in result.stderr


def test_process_environment_is_left_alone(four: ProjectDir) -> None:
    variable = _variable()
    four.configure(dev={"url": f"env:{variable}"})
    (four.root / ".env.local").write_text(f"{variable}=sqlite:///from_file.db\n")

    four.run("apply", "dev", "--yes")

    assert variable not in os.environ  # .env.local is read, not exported


def test_config_saved_with_a_bom_is_read(four: ProjectDir) -> None:
    """Windows editors save UTF-8 with a byte order mark."""
    (four.root / "sqlstage.toml").write_bytes(
        b'\xef\xbb\xbf[environments.dev]\nurl = "sqlite:///dev.db"\n'
    )

    result = four.run("pending", "dev")

    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 4
