"""The command line as a user meets it: init, new, connection errors, secrets, `python -m`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sqlstage.cli import cli
from tests.conftest import Database, ProjectDir, pg_url_for


def sqlstage(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed package the way a user does, in a real process."""
    return subprocess.run(
        [sys.executable, "-m", "sqlstage", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- init ----------------------------------------------------------------------------------


def test_init_creates_the_project(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / ".gitignore").write_text("node_modules/\n.env.local\n")

    result = CliRunner().invoke(cli, ["-C", str(root), "init"])

    assert result.exit_code == 0, result.output
    assert (root / "sqlstage.toml").is_file()
    assert (root / "database" / "migrations" / "sql").is_dir()
    status = json.loads((root / "database" / "migrations" / "status.json").read_text())
    assert status["pending"] == {"dev": [], "pro": []}
    assert list(status["environments"]) == ["dev", "pro"]
    ignored = (root / ".gitignore").read_text().splitlines()
    assert ignored[:2] == ["node_modules/", ".env.local"]  # kept as it was
    assert ignored.count(".env.local") == 1 and "logs/" in ignored
    assert "created sqlstage.toml" in result.output


def test_init_example_makes_pro_wait_for_dev(tmp_path: Path) -> None:
    """The rehearsal rule is on from the start: pro takes only what dev has applied."""
    from sqlstage.config import load_config

    root = tmp_path / "app"
    assert CliRunner().invoke(cli, ["-C", str(root), "init", "--example"]).exit_code == 0

    pro = load_config(root).environment("pro")
    assert (pro.protected, pro.requires, pro.url) == (True, "dev", "prompt")


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "sqlstage.toml").write_text("# mine\n")

    result = sqlstage("init", cwd=tmp_path)

    assert result.returncode == 3
    assert "already exists" in result.stderr
    assert (tmp_path / "sqlstage.toml").read_text() == "# mine\n"
    assert not (tmp_path / "database").exists()


def test_quickstart_runs_as_a_real_process(tmp_path: Path) -> None:
    """The README's first command, with `python -m sqlstage` for `sqlstage`."""
    init = sqlstage("-C", "demo", "init", "--example", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert "dev.db" in (tmp_path / "demo" / ".gitignore").read_text()

    apply = sqlstage("-C", "demo", "apply", "dev", "--yes", cwd=tmp_path)
    assert apply.returncode == 0, apply.stderr
    assert apply.stdout.startswith("Connected: SQLite ")
    assert "Applied 3 migrations to dev" in apply.stdout

    status = sqlstage("-C", "demo", "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "dev (Development): 3 applied, up to date" in status.stdout
    assert "pro (Production): 0 applied, 3 pending" in status.stdout

    with sqlite3.connect(tmp_path / "demo" / "dev.db") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"users", "posts", "sqlstage_history"} <= tables
    data = json.loads((tmp_path / "demo" / "database/migrations/status.json").read_text())
    assert data["pending"]["dev"] == []
    assert len(data["pending"]["pro"]) == 3

    again = sqlstage("-C", "demo", "apply", "dev", "--yes", cwd=tmp_path)
    assert again.returncode == 0 and "dev is up to date" in again.stdout


def test_help_and_version(tmp_path: Path) -> None:
    help_ = sqlstage("--help", cwd=tmp_path)
    version = sqlstage("--version", cwd=tmp_path)

    assert help_.returncode == 0 and "4 cannot connect" in help_.stdout
    for command in ("init", "new", "apply", "status", "pending"):
        assert command in help_.stdout
    assert version.returncode == 0 and version.stdout.startswith("sqlstage, version ")


# -- new -----------------------------------------------------------------------------------


@pytest.fixture
def configured(project: ProjectDir) -> ProjectDir:
    project.configure(dev={"url": "sqlite:///dev.db"})
    return project


def test_new_starts_at_001(configured: ProjectDir) -> None:
    result = configured.run("new", "Add status column")

    assert result.exit_code == 0, result.output
    path = configured.migrations / "001_add_status_column.sql"
    assert result.output.strip().endswith("001_add_status_column.sql")
    assert "-- rollback" in path.read_text()


def test_new_twice_in_a_row(configured: ProjectDir) -> None:
    """The first template is still empty when the second `new` runs."""
    assert configured.run("new", "create_users").exit_code == 0

    result = configured.run("new", "create_posts")

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in configured.migrations.iterdir()) == [
        "001_create_users.sql",
        "002_create_posts.sql",
    ]


def test_an_untouched_template_cannot_be_applied(configured: ProjectDir) -> None:
    configured.run("new", "create_users")

    result = configured.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert "001_create_users.sql: the forward section holds no SQL" in result.stderr


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (["0001_a.sql", "0002_b.sql"], "0003_next.sql"),
        (["0009_a.sql"], "0010_next.sql"),
        (["1_a.sql", "2_b.sql"], "3_next.sql"),
        (["001_a.sql", "998_b.sql", "999_c.sql"], "1000_next.sql"),
        (["001_a.sql", "README.md"], "002_next.sql"),
    ],
)
def test_new_follows_the_existing_numbering(
    configured: ProjectDir, existing: list[str], expected: str
) -> None:
    for name in existing:
        (configured.migrations / name).write_text("SELECT 1;\n")

    result = configured.run("new", "next")

    assert result.exit_code == 0, result.output
    assert (configured.migrations / expected).is_file()
    assert result.output.strip().endswith(expected)


def test_new_written_file_applies_once_filled_in(
    configured: ProjectDir, database: Database
) -> None:
    configured.configure(dev={"url": database.url})
    configured.run("new", "create_users")
    path = configured.migrations / "001_create_users.sql"
    text = path.read_text().replace(
        "\n\n-- rollback", "\nCREATE TABLE users (id INTEGER);\n\n-- rollback", 1
    )
    path.write_text(text + "-- DROP TABLE users;\n")

    result = configured.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert database.history() == ["001_create_users"]


def test_new_needs_a_usable_name(configured: ProjectDir) -> None:
    result = configured.run("new", "!!!")

    assert result.exit_code == 2
    assert "makes no file name" in result.stderr


# -- connecting ----------------------------------------------------------------------------


@pytest.fixture
def env_project(four: ProjectDir) -> ProjectDir:
    four.configure(dev={"name": "Development", "url": "env:DATABASE_URL"})
    return four


def test_unreachable_postgres_is_exit_4_in_one_line(env_project: ProjectDir) -> None:
    result = sqlstage(
        "apply",
        "dev",
        "--yes",
        cwd=env_project.root,
        env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/app"},
        timeout=15,
    )

    assert result.returncode == 4
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot connect to postgresql://postgres@127.0.0.1:1/app")
    assert not env_project.logs()


def test_missing_database_is_exit_4(env_project: ProjectDir) -> None:
    result = env_project.run(
        "apply", "dev", "--yes", env={"DATABASE_URL": pg_url_for("sqlstage_no_such_db")}
    )

    assert result.exit_code == 4
    [line] = result.stderr.splitlines()
    assert 'database "sqlstage_no_such_db" does not exist' in line


PASSWORD = "Tr0ub4dor%2F3x"  # percent-encoded in the URL; the server sees "Tr0ub4dor/3x"
SECRETS = ("Tr0ub4dor%2F3x", "Tr0ub4dor/3x", "Tr0ub4dor")


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    user_host = rest.split("@", 1)
    host_part = user_host[-1]
    user = user_host[0].split(":")[0] if len(user_host) == 2 else "postgres"
    return f"{scheme}://{user}:{PASSWORD}@{host_part}"


def _everything_written(project: ProjectDir, *outputs: str) -> str:
    files = [p for p in project.root.rglob("*") if p.is_file() and p.name != "sqlstage.toml"]
    return "\n".join([*outputs, *(p.read_text(errors="replace") for p in files)])


def test_password_appears_nowhere(env_project: ProjectDir, pg_database: Database) -> None:
    # trust auth accepts any password, so the run succeeds while carrying one
    url = _with_password(pg_database.url)
    env_project.write("005_broken.sql", "SELECT * FROM no_such_table;\n")

    ok = env_project.run("apply", "dev", "--to", "004", "--yes", env={"DATABASE_URL": url})
    failed = env_project.run("apply", "dev", "--yes", env={"DATABASE_URL": url})
    dry = env_project.run("apply", "dev", "--dry-run", env={"DATABASE_URL": url})
    live = env_project.run("status", "--live", "dev", "--write", env={"DATABASE_URL": url})
    missing = env_project.run(
        "apply", "dev", "--yes", env={"DATABASE_URL": _with_password(pg_url_for("sqlstage_none"))}
    )

    assert (ok.exit_code, failed.exit_code, dry.exit_code) == (0, 1, 0), ok.output
    assert (live.exit_code, missing.exit_code) == (0, 4)
    assert "postgres:***@" in missing.stderr
    text = _everything_written(env_project, *(r.output for r in (ok, failed, dry, live, missing)))
    assert len(env_project.logs()) == 2
    for secret in SECRETS:
        assert secret not in text


def test_password_in_a_subprocess_run(env_project: ProjectDir, pg_database: Database) -> None:
    result = sqlstage(
        "apply",
        "dev",
        "--yes",
        cwd=env_project.root,
        env={"DATABASE_URL": _with_password(pg_database.url)},
    )

    assert result.returncode == 0, result.stderr
    assert pg_database.history()[-1] == "004_add_status_column"
    text = _everything_written(env_project, result.stdout, result.stderr)
    for secret in SECRETS:
        assert secret not in text


def test_commands_that_change_nothing_create_no_sqlite_file(project: ProjectDir) -> None:
    db = project.root / "dev.db"
    project.configure(dev={"url": "sqlite:///dev.db"})
    project.write("001_t.sql", "CREATE TABLE t (x INTEGER);\n")

    check = project.run("check", "dev")
    dry = project.run("apply", "dev", "--dry-run")
    live = project.run("status", "--live", "dev")

    assert [check.exit_code, dry.exit_code, live.exit_code] == [0, 0, 0], check.output
    assert "dev.db (not created yet)" in check.output
    assert "001_t" in dry.output
    assert not db.exists()
    assert project.run("apply", "dev", "--yes").exit_code == 0
    assert db.exists()


def test_a_file_error_stops_before_connecting(project: ProjectDir) -> None:
    project.configure(dev={"url": "sqlite:///dev.db"})
    project.write("001_a.sql", "CREATE TABLE a (x INTEGER);\n")
    project.write("1_b.sql", "CREATE TABLE b (x INTEGER);\n")

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert "number 1 is also used by" in result.stderr
    assert "Connected" not in result.output
    assert not (project.root / "dev.db").exists()


def test_new_turns_accents_into_plain_letters(project: ProjectDir) -> None:
    project.configure(dev={"url": "sqlite:///dev.db"})

    result = project.run("new", "Café prix")

    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("001_cafe_prix.sql")


def test_lint_files_are_relative_to_dash_c(project: ProjectDir) -> None:
    """`-C DIR` runs as if started in DIR, also for the FILES lint is given."""
    project.configure(dev={"url": "postgresql://app@localhost/app"})
    project.write("001_idx.sql", "CREATE INDEX users_email_idx ON users (email);\n")

    result = CliRunner().invoke(
        cli,
        ["-C", str(project.root), "lint", "database/migrations/sql/001_idx.sql"],
    )

    assert result.exit_code == 1, result.output
    assert "create-index-without-concurrently" in result.output
