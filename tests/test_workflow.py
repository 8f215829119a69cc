"""Issue 2's "Done when", on a real terminal: dev gets all four, pro gets 001-003 with its URL
typed at the hidden prompt and its name typed at the confirmation; then status.json and
`sqlstage status` say what pro lacks, without connecting anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pexpect

from tests.conftest import Database, ProjectDir

TYPED_PASSWORD = "Typed5ecretPw"  # trust auth ignores it; it must never be shown or stored


def spawn(project: ProjectDir, *args: str, env: dict[str, str]) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "sqlstage", *args],
        cwd=str(project.root),
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 200),
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(NO_COLOR="1", **extra)
    return env


def _with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{TYPED_PASSWORD}@", 1)


def test_dev_then_pro_then_offline_status(
    four: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    four.configure(
        dev={"name": "Development", "url": "env:DATABASE_URL"},
        pro={"name": "Production", "url": "prompt", "protected": True},
    )
    dev_db, pro_db = pg_database, pg_database2

    # dev: every migration, confirmed with y at the prompt
    dev = spawn(four, "apply", "dev", env=_env(DATABASE_URL=dev_db.url))
    dev.expect_exact("Apply 4 migrations to dev (Development)? [y/N]")
    dev.sendline("y")
    dev.expect(pexpect.EOF)
    dev.close()
    assert dev.exitstatus == 0, dev.before
    assert len(dev_db.history()) == 4

    # pro: the URL typed at a hidden prompt, the name typed at the confirmation
    typed_url = _with_password(pro_db.url)
    pro = spawn(four, "apply", "pro", "--to", "003", env=_env())
    pro.expect_exact("Database URL for pro (Production) (input hidden):")
    pro.sendline(typed_url)
    pro.expect_exact("Backup taken? [y/N]")
    shown = pro.before
    pro.sendline("y")
    pro.expect_exact("Type 'pro' to apply 3 migrations to Production:")
    shown += pro.before
    pro.sendline("pro")
    pro.expect(pexpect.EOF)
    shown += pro.before
    pro.close()
    assert pro.exitstatus == 0, shown
    assert "Connected: PostgreSQL" in shown
    assert "Applied 3 migrations to pro" in shown
    assert typed_url not in shown and TYPED_PASSWORD not in shown  # hidden input: no echo
    assert pro_db.history() == ["001_create_users", "002_create_posts", "003_add_user_profile"]
    assert "status" not in {
        c
        for (c,) in pro_db.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'"
        )
    }

    # `jq '.pending.pro' database/migrations/status.json`
    status = json.loads(four.status_file.read_text(encoding="utf-8"))
    assert status["pending"]["pro"] == ["004_add_status_column"]
    assert status["pending"]["dev"] == []
    assert status["environments"]["pro"]["lastApplied"] == "003_add_user_profile"
    assert status["environments"]["dev"]["lastApplied"] == "004_add_status_column"
    written = "\n".join(p.read_text() for p in [four.status_file, *four.logs()])
    assert TYPED_PASSWORD not in written

    # status offline: no URL anywhere, no terminal, both databases gone
    for database in (dev_db, pro_db):
        _drop(database)
    offline = subprocess.run(
        [sys.executable, "-m", "sqlstage", "status"],
        cwd=four.root,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert offline.returncode == 0, offline.stderr
    rows = {
        line.split()[0]: line.split()[1:]
        for line in offline.stdout.splitlines()
        if line[:1].isdigit()
    }
    assert rows["004_add_status_column"][1] == "pending"
    assert all(
        cells[1] != "pending" for name, cells in rows.items() if name != "004_add_status_column"
    )
    assert all(cells[0] != "pending" for cells in rows.values())
    assert "pro (Production): 3 applied, 1 pending (004_add_status_column)" in offline.stdout
    pending = subprocess.run(
        [sys.executable, "-m", "sqlstage", "pending", "pro", "--json"],
        cwd=four.root,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(pending.stdout)["pending"] == ["004_add_status_column"]


def test_pro_refuses_a_wrong_name(four: ProjectDir, pg_database: Database) -> None:
    four.configure(pro={"name": "Production", "url": "prompt", "protected": True})

    pro = spawn(four, "apply", "pro", "--yes", env=_env())
    pro.expect_exact("(input hidden):")
    pro.sendline(pg_database.url)
    pro.expect_exact("Backup taken? [y/N]")
    pro.sendline("y")
    pro.expect_exact("Type 'pro' to apply 4 migrations to Production:")
    pro.sendline("yes")
    pro.expect(pexpect.EOF)
    pro.close()

    assert pro.exitstatus == 3
    assert "not confirmed: nothing was applied to pro" in pro.before
    assert pg_database.history() == []


def test_protected_environment_refuses_without_a_terminal(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(pro={"name": "Production", "url": "env:PRO_URL", "protected": True})

    result = subprocess.run(
        [sys.executable, "-m", "sqlstage", "apply", "pro", "--yes"],
        cwd=four.root,
        env=_env(PRO_URL=pg_database.url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 3
    assert "pro is protected and this run has no terminal to confirm on" in result.stderr
    assert pg_database.history() == []


def _drop(database: Database) -> None:
    """Drop a test database early (the fixture's DROP ... IF EXISTS copes)."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    name = database.url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
