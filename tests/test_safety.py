"""Production safety: identity markers, confirmation, rehearsal order, backups, timeouts,
secrets, and the rules for AI agents. PostgreSQL, with a real pseudo-terminal for prompts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pexpect
import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, Database, ProjectDir, make_pg_database


def spawn(project: ProjectDir, *args: str) -> pexpect.spawn:
    """The real CLI on a pseudo-terminal, as a person would run it."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "sqlstage", "-C", str(project.root), *args],
        encoding="utf-8",
        timeout=30,
        env={**os.environ, "NO_COLOR": "1"},
    )


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


# -- identity marker --------------------------------------------------------------------------


def test_dev_pointed_at_production_database_is_refused(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(
        dev={"url": pg_database.url},
        pro={"url": pg_database.url, "protected": True, "allow_non_interactive": True},
    )
    assert four.run("apply", "pro", "--to", "002", "--yes").exit_code == 0

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 3
    assert "this database is marked 'pro' but you asked for 'dev'" in result.stderr
    assert pg_database.history() == ["001_create_users", "002_create_posts"]
    assert pg_database.query("SELECT environment FROM sqlstage_environment") == [("pro",)]


def test_first_apply_marks_the_database(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})

    four.run("apply", "dev", "--yes")

    assert database.query("SELECT environment FROM sqlstage_environment") == [("dev",)]
    assert "marked this database as environment 'dev'" in four.logs()[-1].read_text()


def test_adopted_database_needs_adopt_when_unattended(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    four.run("apply", "dev", "--to", "002", "--yes")
    database.query("DROP TABLE sqlstage_environment")

    unattended = four.run("apply", "dev", "--yes")  # --yes alone never adopts
    assert unattended.exit_code == 3
    assert "2 applied migrations but no sqlstage environment marker" in unattended.stderr
    assert "--adopt" in unattended.stderr
    assert "sqlstage_environment" not in database.tables()
    assert len(database.history()) == 2

    accepted = four.run("apply", "dev", "--adopt", "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert database.query("SELECT environment FROM sqlstage_environment") == [("dev",)]


def test_adopted_database_is_asked_about_on_a_terminal(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url})
    four.run("apply", "dev", "--to", "002", "--yes")
    pg_database.query("DROP TABLE sqlstage_environment")

    child = spawn(four, "apply", "dev", "--yes")
    child.expect("no sqlstage environment marker")
    child.expect(r"Is it 'dev' \(dev\)\? Mark it as such \[y/N\]")
    child.sendline("n")
    code, _ = finish(child)
    assert code == 3
    assert "sqlstage_environment" not in pg_database.tables()

    child = spawn(four, "apply", "dev", "--yes")
    child.expect(r"Mark it as such \[y/N\]")
    child.sendline("y")
    code, output = finish(child)
    assert code == 0, output
    assert pg_database.query("SELECT environment FROM sqlstage_environment") == [("dev",)]
    assert len(pg_database.history()) == 4


def test_check_shows_the_target_and_changes_nothing(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url}, pro={"url": pg_database.url})
    fresh = four.run("check", "dev")
    assert fresh.exit_code == 0, fresh.output
    assert "Connected: PostgreSQL" in fresh.output
    assert "marker    none (marked on the first apply)" in fresh.output
    assert "applied   nothing yet" in fresh.output
    assert pg_database.tables() == set()

    four.run("apply", "dev", "--to", "003", "--yes")
    marked = four.run("check", "dev")
    assert "marker    'dev' (matches)" in marked.output
    assert "applied   3, last 003_add_user_profile" in marked.output

    wrong = four.run("check", "pro")
    assert wrong.exit_code == 3
    assert "'dev' (you asked for 'pro')" in wrong.output


# -- confirmation ------------------------------------------------------------------------------


@pytest.fixture
def production(four: ProjectDir, pg_database: Database, pg_database2: Database) -> ProjectDir:
    """dev and a protected pro whose URL is typed at the prompt."""
    four.configure(
        dev={"name": "Development", "url": pg_database.url},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    four.pro_url = pg_database2.url  # type: ignore[attr-defined]
    four.pro_db = pg_database2  # type: ignore[attr-defined]
    return four


@pytest.mark.parametrize("typed", ["pr", "yes", ""])
def test_protected_needs_its_key_typed(production: ProjectDir, typed: str) -> None:
    child = spawn(production, "apply", "pro", "--to", "003")
    child.expect("Database URL for pro")
    child.sendline(production.pro_url)  # type: ignore[attr-defined]
    child.expect(r"Backup taken\? \[y/N\]")
    child.sendline("y")
    child.expect("Type 'pro' to apply 3 migrations to Production:")
    child.sendline(typed)
    code, output = finish(child)

    assert code == 3
    assert "not confirmed: nothing was applied to pro" in output
    assert production.pro_db.tables() == set()  # type: ignore[attr-defined]


def test_protected_applies_when_key_typed(production: ProjectDir) -> None:
    child = spawn(production, "apply", "pro", "--to", "003")
    child.expect("Database URL for pro")
    child.sendline(production.pro_url)  # type: ignore[attr-defined]
    child.expect(r"Backup taken\? \[y/N\]")
    child.sendline("y")
    child.expect("Type 'pro' to apply 3 migrations to Production:")
    child.sendline("pro")
    code, output = finish(child)

    assert code == 0, output
    assert production.pro_url not in output  # type: ignore[attr-defined]
    assert production.pro_db.history()[-1] == "003_add_user_profile"  # type: ignore[attr-defined]


def test_no_backup_taken_refuses(production: ProjectDir) -> None:
    child = spawn(production, "apply", "pro")
    child.expect("Database URL for pro")
    child.sendline(production.pro_url)  # type: ignore[attr-defined]
    child.expect(r"Backup taken\?")
    child.sendline("n")
    code, output = finish(child)

    assert code == 3
    assert "no backup confirmed" in output
    assert production.pro_db.tables() == set()  # type: ignore[attr-defined]


def test_protected_without_terminal_is_refused_even_with_yes(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(pro={"url": pg_database.url, "protected": True})

    result = subprocess.run(
        [sys.executable, "-m", "sqlstage", "-C", str(four.root), "apply", "pro", "--yes"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 3
    assert "pro is protected and this run has no terminal" in result.stderr
    assert "allow_non_interactive = true" in result.stderr
    assert pg_database.tables() == set()


def test_allow_non_interactive_in_config_lets_yes_through(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(pro={"url": pg_database.url, "protected": True, "allow_non_interactive": True})

    without_yes = four.run("apply", "pro")
    assert without_yes.exit_code == 3
    assert pg_database.tables() == set()

    with_yes = four.run("apply", "pro", "--yes")
    assert with_yes.exit_code == 0, with_yes.output
    assert len(pg_database.history()) == 4


# -- rehearsal order ---------------------------------------------------------------------------


@pytest.fixture
def staged(four: ProjectDir, pg_database: Database, pg_database2: Database) -> ProjectDir:
    four.configure(
        dev={"url": pg_database.url},
        pro={
            "url": pg_database2.url,
            "protected": True,
            "allow_non_interactive": True,
            "requires": "dev",
        },
    )
    return four


def test_migration_not_rehearsed_in_dev_is_refused(
    staged: ProjectDir, pg_database2: Database
) -> None:
    staged.run("apply", "dev", "--to", "002", "--yes")

    result = staged.run("apply", "pro", "--yes")

    assert result.exit_code == 3
    assert "003_add_user_profile has not been applied to 'dev'" in result.stderr
    assert pg_database2.tables() == set()

    ok = staged.run("apply", "pro", "--to", "002", "--yes")
    assert ok.exit_code == 0, ok.output
    assert pg_database2.history() == ["001_create_users", "002_create_posts"]


def test_edited_after_rehearsal_is_refused(staged: ProjectDir, pg_database2: Database) -> None:
    staged.run("apply", "dev", "--yes")
    staged.write("004_add_status_column.sql", "ALTER TABLE posts ADD COLUMN status TEXT;\n")

    result = staged.run("apply", "pro", "--yes")

    assert result.exit_code == 3
    assert "004_add_status_column.sql changed after it was applied to 'dev'" in result.stderr


def test_skip_rehearsal_with_reason_is_logged_and_recorded(
    staged: ProjectDir, pg_database2: Database
) -> None:
    assert staged.run("apply", "pro", "--skip-rehearsal", "--yes").exit_code == 2  # no reason

    result = staged.run(
        "apply", "pro", "--to", "001", "--skip-rehearsal", "--reason", "hotfix INC-42", "--yes"
    )

    assert result.exit_code == 0, result.output
    assert "hotfix INC-42" in staged.logs()[-1].read_text()
    assert pg_database2.query("SELECT note FROM sqlstage_history") == [
        ("rehearsal check skipped: hotfix INC-42",)
    ]


# -- backups -------------------------------------------------------------------------------


def test_pg_dump_backup_is_listable_by_pg_restore(four: ProjectDir, pg_database: Database) -> None:
    four.configure(dev={"url": pg_database.url, "backup": "pg_dump"})
    four.run("apply", "dev", "--to", "002", "--yes")

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert "Backup: " in result.output and "bytes" in result.output
    before_first, before_second = sorted((four.root / "backups" / "dev").glob("*.dump"))
    listings = [
        subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True)
        for dump in (before_first, before_second)
    ]
    assert [listing.returncode for listing in listings] == [0, 0]
    assert before_second.stat().st_mode & 0o077 == 0  # a dump holds all the data: private
    assert "TABLE public posts" not in listings[0].stdout
    assert "TABLE public posts" in listings[1].stdout


def test_sqlite_backup_flag(four: ProjectDir, tmp_path: Path) -> None:
    four.configure(dev={"url": f"sqlite:///{tmp_path / 'dev.db'}"})
    four.run("apply", "dev", "--to", "001", "--yes")

    result = four.run("apply", "dev", "--backup", "--yes")

    assert result.exit_code == 0, result.output
    [copy] = (four.root / "backups" / "dev").glob("*.db")
    assert Database("sqlite", f"sqlite:///{copy}").history() == ["001_create_users"]


def test_missing_or_old_pg_dump_fails_before_anything_runs(
    four: ProjectDir, pg_database: Database, tmp_path: Path
) -> None:
    four.configure(dev={"url": pg_database.url, "backup": "pg_dump"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    missing = four.run("apply", "dev", "--yes", env={"PATH": str(bin_dir)})
    assert missing.exit_code == 2
    assert "pg_dump is not installed" in missing.stderr

    old = bin_dir / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    mismatched = four.run("apply", "dev", "--yes", env={"PATH": str(bin_dir)})
    assert mismatched.exit_code == 2
    assert "older than the server" in mismatched.stderr
    assert pg_database.tables() == set()


# -- lock timeout ----------------------------------------------------------------------------


def test_migration_waiting_for_a_lock_fails_fast(four: ProjectDir, pg_database: Database) -> None:
    four.configure(dev={"url": pg_database.url, "lock_timeout": "1s"})
    four.run("apply", "dev", "--to", "003", "--yes")
    with psycopg.connect(pg_database.url) as other:  # a long transaction holding the table
        other.execute("LOCK TABLE posts IN ACCESS SHARE MODE")

        result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 1
    assert "lock_timeout 1s" in result.stderr
    assert "004_add_status_column was rolled back" in result.stderr
    columns = pg_database.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'"
    )
    assert ("status",) not in columns
    assert "004_add_status_column" not in pg_database.history()


# -- secrets -----------------------------------------------------------------------------------


@pytest.fixture
def role_with_password() -> Iterator[tuple[str, str, Database]]:
    """A login role with a password, and a database of its own (dropped before the role)."""
    name = f"sqlstage_role_{uuid.uuid4().hex[:8]}"
    password = f"Pw-{uuid.uuid4().hex}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{password}'")
    try:
        yield from ((name, password, db) for db in make_pg_database())
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {name}")


def test_typed_password_appears_in_no_output_and_no_file(
    four: ProjectDir, role_with_password: tuple[str, str, Database]
) -> None:
    role, password, pg_database = role_with_password
    url = pg_database.url.replace("postgres@", f"{role}:{password}@")
    four.configure(pro={"name": "Production", "url": "prompt", "protected": True})
    outputs = []
    for typed in ("pro", "nope"):  # one applied, one declined
        child = spawn(four, "apply", "pro", "--to", "002" if typed == "pro" else "004")
        child.expect("Database URL for pro")
        child.sendline(url)
        child.expect(r"Backup taken\?")
        child.sendline("y")
        child.expect("Type 'pro'")
        child.sendline(typed)
        outputs.append(finish(child)[1])
    bad = spawn(four, "apply", "pro")  # a database that does not exist: the error names the URL
    bad.expect("Database URL for pro")
    bad.sendline(url.rsplit("/", 1)[0] + "/no_such_database_here")
    code, output = finish(bad)
    outputs.append(output)

    assert code == 4
    assert "***" in output
    assert len(pg_database.history()) == 2
    for text in outputs:
        assert password not in text
    written = [p for p in four.root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in written)
    for path in written:
        assert password.encode() not in path.read_bytes(), path


def test_literal_password_in_protected_config_is_warned_about(
    four: ProjectDir, role_with_password: tuple[str, str, Database]
) -> None:
    role, password, pg_database = role_with_password
    url = pg_database.url.replace("postgres@", f"{role}:{password}@")
    four.configure(pro={"url": url, "protected": True, "allow_non_interactive": True})

    result = four.run("apply", "pro", "--yes")

    assert result.exit_code == 0, result.output
    assert "password of protected environment 'pro' is written in sqlstage.toml" in result.stderr
    assert password not in result.output


def test_protected_environment_never_reads_env_local(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(pro={"url": "env:PRO_URL", "protected": True, "allow_non_interactive": True})
    (four.root / ".env.local").write_text(f"PRO_URL={pg_database.url}\n")

    result = four.run("apply", "pro", "--yes", env={"PRO_URL": ""})

    assert result.exit_code == 2
    assert "PRO_URL, which is not set in the process environment" in result.stderr
    assert pg_database.tables() == set()


# -- rules for agents ----------------------------------------------------------------------------


def test_agents_rules_are_printed_and_written_once(project: ProjectDir) -> None:
    project.configure(dev={"url": "sqlite:///dev.db"})
    printed = project.run("agents")
    assert "never apply to a protected" in printed.output.lower()
    agents_md = project.root / "AGENTS.md"
    agents_md.write_text("# Our agents\n\nBe nice.\n")

    first = project.run("agents", "--write", "AGENTS.md")
    second = project.run("agents", "--write", "AGENTS.md")

    assert first.exit_code == second.exit_code == 0
    assert "updated" in first.output and "unchanged" in second.output
    text = agents_md.read_text()
    assert text.startswith("# Our agents\n\nBe nice.\n")
    assert text.count("<!-- sqlstage:agent-rules -->") == 1
    assert "sqlstage apply" in text


def test_pg_restore_is_available() -> None:
    assert shutil.which("pg_restore"), "the backup test needs pg_restore (postgresql-client)"


def test_marking_is_atomic_with_its_transaction(pg_database: Database, tmp_path: Path) -> None:
    """The marker's table, its old row's removal and the new row commit together."""
    from sqlstage.drivers import connect
    from sqlstage.history import write_marker
    from sqlstage.urls import parse_url

    driver = connect(parse_url(pg_database.url, tmp_path, "dev"))
    try:
        with pytest.raises(RuntimeError), driver.transaction():
            driver.query("CREATE TABLE marker_probe (x int)")
            raise RuntimeError("interrupted between two statements")
        write_marker(driver, "dev", False, "me@here")
    finally:
        driver.close()

    assert "marker_probe" not in pg_database.tables()
    assert pg_database.query("SELECT environment FROM sqlstage_environment") == [("dev",)]


def test_out_of_range_lock_timeout_is_a_config_error(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url, "lock_timeout": "99999999999s"})

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert 'environments.dev.lock_timeout = "99999999999s"' in result.stderr
    assert pg_database.history() == []
    assert "users" not in pg_database.tables()


def test_ctrl_c_at_a_prompt_exits_130_and_changes_nothing(production: ProjectDir) -> None:
    child = spawn(production, "apply", "pro")
    child.expect("Database URL for pro")
    child.sendintr()
    code, output = finish(child)

    assert code == 130
    assert "interrupted at a prompt: nothing was changed" in output
    assert production.pro_db.tables() == set()  # type: ignore[attr-defined]


def test_end_of_input_at_a_prompt_is_refused(four: ProjectDir) -> None:
    four.configure(dev={"url": "prompt"})

    result = subprocess.run(
        [sys.executable, "-m", "sqlstage", "-C", str(four.root), "apply", "dev", "--yes"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 3  # a URL typed at a prompt is never read from a pipe
    assert "dev's URL is typed at a prompt, and this run has no terminal" in result.stderr
    assert not (four.root / "logs").exists()


def test_the_library_checks_rehearsal_order_too(staged: ProjectDir, pg_database2: Database) -> None:
    """The rule lives in the library, not only in the CLI: scripts cannot skip it by accident."""
    from sqlstage.commands import ApplyOptions, apply
    from sqlstage.errors import Refused
    from sqlstage.project import Project

    project = Project.load(staged.root)
    with pytest.raises(Refused, match="has not been applied to 'dev'"):
        apply(project, "pro", ApplyOptions(yes=True))
    assert pg_database2.history() == []


def test_lock_timeout_needs_its_unit(four: ProjectDir, pg_database: Database) -> None:
    four.configure(dev={"url": pg_database.url, "lock_timeout": "5"})

    result = four.run("apply", "dev", "--yes")

    assert result.exit_code == 2
    assert "lock_timeout must be a duration with its unit" in result.stderr
    assert "users" not in pg_database.tables()
