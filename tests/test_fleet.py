"""Fleets (issue 16): one environment, many databases. On three PostgreSQL servers (this
one and two started for the session), on one database of many tenant schemas, and on
SQLite files; through the CLI as a user runs it, asserting exit codes, output, what each
database holds, fleets/ENV.json and status.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, ProjectDir, _pg_admin

ITEMS = """
    CREATE TABLE items (id serial PRIMARY KEY, qty integer NOT NULL);
    CREATE TABLE runs (migration text NOT NULL);
    INSERT INTO runs VALUES ('001');

    -- rollback
    -- DROP TABLE runs; DROP TABLE items;
    """
CHECK = """
    -- sqlstage:allow add-constraint-without-not-valid tenant tables are small
    ALTER TABLE items ADD CONSTRAINT qty_not_negative CHECK (qty >= 0);
    INSERT INTO runs VALUES ('002');

    -- rollback
    -- ALTER TABLE items DROP CONSTRAINT qty_not_negative;
    """


def _url(admin: str, database: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path=f"/{database}"))


def _name(url: str) -> str:
    """The target name sqlstage derives: host:port/database."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}{parts.path}"


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


class Tenants:
    """Tenant databases on several servers, created for one test and dropped after it."""

    def __init__(self, servers: list[str], per_server: int) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.urls: list[str] = []
        self._made: list[tuple[str, str]] = []
        for number, server in enumerate(servers):
            with psycopg.connect(server, autocommit=True) as admin:
                for index in range(per_server):
                    name = f"tenant_{self.tag}_{number}_{index:02d}"
                    admin.execute(f'CREATE DATABASE "{name}"')
                    self._made.append((server, name))
                    self.urls.append(_url(server, name))

    def drop(self) -> None:
        for server, name in self._made:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def servers(extra_pg_servers: list[str]) -> list[str]:
    _pg_admin().close()  # the main server is up (or the test skips / fails under CI)
    return [PG_ADMIN_URL, *extra_pg_servers]


def _tenants(servers: list[str], per_server: int) -> Iterator[Tenants]:
    tenants = Tenants(servers, per_server)
    try:
        yield tenants
    finally:
        tenants.drop()


@pytest.fixture
def sixty(servers: list[str]) -> Iterator[Tenants]:
    """The issue's fleet: three servers with 20 tenant databases each."""
    yield from _tenants(servers, 20)


@pytest.fixture
def six(servers: list[str]) -> Iterator[Tenants]:
    yield from _tenants(servers, 2)


def _configure(project: ProjectDir, body: str) -> None:
    (project.root / "sqlstage.toml").write_text(body, encoding="utf-8")


def _fleet_project(project: ProjectDir, urls: list[str], extra: str = "") -> None:
    (project.root / "tenants.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
    _configure(
        project,
        f'[environments.tenants]\nname = "Tenants"\ntargets_file = "tenants.txt"\n'
        f"{'' if 'parallel' in extra else 'parallel = 4'}\n{extra}",
    )


def _record(project: ProjectDir, key: str) -> dict[str, object]:
    path = project.root / "database" / "migrations" / "fleets" / f"{key}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _has(url: str, migration: str) -> bool:
    rows = _query(url, "SELECT migration FROM sqlstage_history")
    return (migration,) in rows


def test_canary_failure_stops_then_max_failures_then_resume(
    project: ProjectDir, sixty: Tenants
) -> None:
    urls = sixty.urls
    bad = [urls[0], urls[37]]  # the canary is one of the two tenants whose data breaks
    _fleet_project(project, urls, f'canary = ["{_name(bad[0])}"]\n')
    project.write("001_items.sql", ITEMS)
    first = project.run("apply", "tenants", "--yes")
    assert first.exit_code == 0, first.output
    assert "1 migration on 60 of 60 targets" in first.output
    for url in bad:
        _query(url, "INSERT INTO items (qty) VALUES (5), (-1)")
    project.write("002_check.sql", CHECK)

    stopped = project.run("apply", "tenants", "--yes")
    assert stopped.exit_code == 1, stopped.output
    assert f"target {_name(bad[0])}" in stopped.output
    assert "qty_not_negative" in stopped.output
    assert "59 not started" in stopped.output
    assert not any(_has(url, "002_check") for url in urls)
    record = _record(project, "tenants")["targets"]
    assert isinstance(record, dict)
    assert record[_name(bad[0])]["failed"]["migration"] == "002_check"

    more = project.run("apply", "tenants", "--yes", "--max-failures", "5")
    assert more.exit_code == 1, more.output
    assert "58 of 60 targets changed, 2 failed" in more.output
    for url in bad:
        assert _name(url) in more.output
        assert not _has(url, "002_check")
    assert sum(_has(url, "002_check") for url in urls) == 58

    offline = project.run("status")
    assert offline.exit_code == 0, offline.output
    names = ", ".join(sorted(_name(url) for url in bad))
    assert f"58 of 60 targets at 002_check; 2 at 001_items ({names}: failed)" in offline.output
    assert "58/60" in offline.output
    status = project.status_json()
    assert status["pending"]["tenants"] == ["002_check"]
    assert status["environments"]["tenants"]["applied"]["002_check"]["targets"] == 58
    assert status["environments"]["tenants"]["targets"] == 60

    for url in bad:  # the fix: the data
        _query(url, "DELETE FROM items WHERE qty < 0")
    resumed = project.run("apply", "tenants", "--yes", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "1 migration on 2 of 60 targets" in resumed.output
    assert all(_has(url, "002_check") for url in urls)
    assert project.status_json()["pending"]["tenants"] == []
    assert "60 of 60 targets at 002_check" in project.run("status").output
    assert all("failed" not in entry for entry in _record(project, "tenants")["targets"].values())  # type: ignore[union-attr]
    # each migration ran once on each target
    assert all(
        _query(url, "SELECT migration FROM runs ORDER BY 1") == [("001",), ("002",)] for url in urls
    )


def test_two_runs_at_once_apply_each_migration_once(project: ProjectDir, six: Tenants) -> None:
    _fleet_project(project, six.urls, "canary = 0\n")
    project.write("001_items.sql", ITEMS)
    project.write("002_slow.sql", "SELECT pg_sleep(0.3);\nINSERT INTO runs VALUES ('002');\n")
    command = [
        sys.executable,
        "-m",
        "sqlstage",
        "-C",
        str(project.root),
        "apply",
        "tenants",
        "--yes",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    for url in six.urls:
        assert _query(url, "SELECT migration FROM runs ORDER BY 1") == [("001",), ("002",)]
    assert project.status_json()["pending"]["tenants"] == []


def test_protected_fleet_refuses_without_a_terminal(project: ProjectDir, six: Tenants) -> None:
    _fleet_project(project, six.urls, "protected = true\n")
    project.write("001_items.sql", ITEMS)
    result = project.run("apply", "tenants", "--yes")
    assert result.exit_code == 3, result.output
    assert "no terminal" in result.output
    assert not any(
        "sqlstage_history" in str(_query(u, "SELECT tablename FROM pg_tables")) for u in six.urls
    )


def test_not_rehearsed_in_dev_is_refused_for_every_target(
    project: ProjectDir, six: Tenants, tmp_path: Path
) -> None:
    (project.root / "tenants.txt").write_text("\n".join(six.urls) + "\n", encoding="utf-8")
    _configure(
        project,
        f'[environments.dev]\nurl = "sqlite:///{tmp_path / "dev.db"}"\n\n'
        '[environments.pro]\nprotected = true\nallow_non_interactive = true\nrequires = "dev"\n'
        'targets_file = "tenants.txt"\n',
    )
    project.write("001_items.sql", ITEMS.replace("serial", "integer"))
    result = project.run("apply", "pro", "--yes")
    assert result.exit_code == 3, result.output
    assert "001_items has not been applied to 'dev'" in result.output
    assert "refused for every target of pro (6)" in result.output
    assert not any(
        _query(u, "SELECT 1 FROM pg_tables WHERE tablename = 'sqlstage_history'") for u in six.urls
    )


@pytest.fixture
def schemas_db(pg_database) -> Iterator[str]:  # type: ignore[no-untyped-def]
    for index in range(50):
        _query(pg_database.url, f"CREATE SCHEMA tenant_{index:02d}")
    yield pg_database.url


def test_schema_per_tenant(project: ProjectDir, schemas_db: str) -> None:
    schemas = [f"tenant_{index:02d}" for index in range(50)]
    _configure(
        project,
        f'[environments.tenants]\nurl = "{schemas_db}"\nschemas = {json.dumps(schemas)}\n'
        "parallel = 8\n",
    )
    project.write("001_items.sql", ITEMS)
    narrowed = project.run("apply", "tenants", "--yes", "--target", "tenant_07")
    assert narrowed.exit_code == 0, narrowed.output
    assert _query(schemas_db, "SELECT count(*) FROM tenant_07.runs") == [(1,)]
    assert not _query(schemas_db, "SELECT 1 FROM pg_tables WHERE schemaname = 'tenant_08'")
    result = project.run("apply", "tenants", "--yes")
    assert result.exit_code == 0, result.output
    assert "1 migration on 49 of 50 targets" in result.output
    for schema in schemas:  # history, marker and tables inside each schema; none in public
        tables = {
            r[0]
            for r in _query(
                schemas_db, f"SELECT tablename FROM pg_tables WHERE schemaname = '{schema}'"
            )
        }
        assert {"items", "runs", "sqlstage_history", "sqlstage_environment"} <= tables
    assert not _query(schemas_db, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'")
    assert "50 of 50 targets at 001_items" in project.run("status").output
    _configure(
        project,
        f'[environments.tenants]\nurl = "{schemas_db}"\nschemas = ["tenant_00", "missing"]\n',
    )
    missing = project.run("apply", "tenants", "--yes")
    assert missing.exit_code == 3, missing.output
    assert "schema missing does not exist" in missing.output


def test_sqlite_files(project: ProjectDir) -> None:
    _configure(
        project,
        '[environments.dev]\ntargets = ["sqlite:///a.db", "sqlite:///b.db", "sqlite:///c.db"]\n',
    )
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
    dry = project.run("apply", "dev", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "CREATE TABLE users" in dry.output and "dry run: nothing was changed" in dry.output
    assert not (project.root / "a.db").exists()
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert "1 migration on 3 of 3 targets" in result.output
    record = _record(project, "dev")["targets"]
    assert sorted(record) == ["a.db", "b.db", "c.db"]  # type: ignore[arg-type]
    assert project.status_json()["environments"]["dev"]["applied"]["001_users"]["targets"] == 3
    again = project.run("apply", "dev", "--yes")
    assert again.exit_code == 0 and "all 3 targets are up to date" in again.output


def test_ctrl_c_lets_the_running_target_finish_its_migration(
    project: ProjectDir, six: Tenants
) -> None:
    _fleet_project(project, six.urls, "canary = 0\nparallel = 1\n")
    project.write("001_slow.sql", "CREATE TABLE runs (migration text);\nSELECT pg_sleep(2);\n")
    project.write("002_next.sql", "INSERT INTO runs VALUES ('002');\n")
    command = [
        sys.executable,
        "-m",
        "sqlstage",
        "-C",
        str(project.root),
        "apply",
        "tenants",
        "--yes",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    first = six.urls[0]
    try:
        for _ in range(300):  # until the first target is inside its migration
            if _query(
                first,
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2)%' "
                "AND application_name LIKE 'sqlstage%'",
            ):
                break
            assert run.poll() is None, run.stdout.read().decode() if run.stdout else ""
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        output = run.communicate(timeout=60)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, output
    assert _has(first, "001_slow")  # finished the migration it was in ...
    assert not _has(first, "002_next")  # ... and started no other
    for url in six.urls[1:]:  # no new target started
        assert not _query(url, "SELECT 1 FROM pg_tables WHERE tablename = 'sqlstage_history'")
    assert _record(project, "tenants")["targets"][_name(first)]["lastApplied"] == "001_slow"  # type: ignore[index]


def _sqlite_fleet(project: ProjectDir, count: int = 3) -> list[str]:
    names = [f"t{index}.db" for index in range(1, count + 1)]
    targets = json.dumps([f"sqlite:///{name}" for name in names])
    _configure(project, f"[environments.dev]\ntargets = {targets}\ncanary = 0\n")
    return names


def test_commands_that_know_fleets(project: ProjectDir) -> None:
    """check, status --live [--write], pending --target, repair --target, baseline --target
    and rollback on a fleet of SQLite files."""
    import sqlite3

    names = _sqlite_fleet(project)
    project.write(
        "001_users.sql", "CREATE TABLE users (id INTEGER);\n\n-- rollback\n-- DROP TABLE users;\n"
    )
    project.write(
        "002_posts.sql", "CREATE TABLE posts (id INTEGER);\n\n-- rollback\n-- DROP TABLE posts;\n"
    )
    assert project.run("apply", "dev", "--yes").exit_code == 0

    check = project.run("check", "dev")
    assert check.exit_code == 0, check.output
    assert "a fleet of 3 targets" in check.output
    assert all(f"{name}  SQLite" in check.output for name in names)

    with sqlite3.connect(project.root / "t2.db") as conn:  # someone undoes 002 by hand
        conn.execute("DROP TABLE posts")
        conn.execute("DELETE FROM sqlstage_history WHERE migration = '002_posts'")
    live = project.run("status", "--live", "dev")
    assert live.exit_code == 0, live.output
    assert "t2.db: 002_posts: in fleets/dev.json, not applied in the database" in live.output
    written = project.run("status", "--live", "dev", "--write", "--forget-file-only")
    assert written.exit_code == 0, written.output
    assert "2 of 3 targets at 002_posts; 1 at 001_users (t2.db)" in project.run("status").output
    pending = project.run("pending", "dev", "--target", "t2.db")
    assert pending.output.split() == ["002_posts"]
    assert project.run("pending", "dev", "--target", "t1.db").output.split() == []
    assert project.run("pending", "dev").output.split() == ["002_posts"]

    needs_one = project.run("repair", "dev", "002_posts", "--forget", "--yes")
    assert needs_one.exit_code == 2 and "--target NAME" in needs_one.output
    repaired = project.run(
        "repair", "dev", "002_posts", "--mark-applied", "--yes", "--target", "t2.db"
    )
    assert repaired.exit_code == 0, repaired.output
    assert "fleets/dev.json: commit it" in repaired.output
    assert "3 of 3 targets at 002_posts" in project.run("status").output

    back = project.run("rollback", "dev", "--yes", "--target", "t1.db", "--target", "t3.db")
    assert back.exit_code == 0, back.output
    assert "002_posts  to roll back on 2 of 2" in back.output
    assert (
        "1 of 3 targets at 002_posts; 2 at 001_users (t1.db, t3.db)" in project.run("status").output
    )

    (project.root / "t4.db").touch()
    _configure(project, '[environments.dev]\ntargets = ["sqlite:///t1.db", "sqlite:///t4.db"]\n')
    with sqlite3.connect(project.root / "t4.db") as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    based = project.run("baseline", "dev", "001_users", "--yes", "--target", "t4.db")
    assert based.exit_code == 0, based.output
    record = _record(project, "dev")["targets"]
    assert record["t4.db"]["lastApplied"] == "001_users"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('url = "sqlite:///a.db"\ntargets = ["sqlite:///b.db"]', "gives both url and targets"),
        ('targets = ["sqlite:///a.db"]\nschemas = ["a"]', "gives both targets and schemas"),
        ('url = "sqlite:///a.db"\nschemas = ["Tenant-A"]', "not a lowercase schema name"),
        ('targets = ["sqlite:///a.db"]\nparallel = 0', "parallel must be a number from 1 to 64"),
        ('targets = ["sqlite:///a.db"]\ncanary = ["nope"]', "canary names nope"),
        ('targets = ["sqlite:///a.db", "sqlite:///a.db"]', "two targets are both named a.db"),
        ('url = "sqlite:///a.db"\nschemas = ["a"]', "schema-per-tenant needs PostgreSQL"),
        ('targets_file = "missing.txt"', "cannot read"),
    ],
)
def test_fleet_config_errors(project: ProjectDir, body: str, message: str) -> None:
    _configure(project, f"[environments.dev]\n{body}\n")
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (project.root / "a.db").exists()


def test_targets_file_names_and_env_vars(project: ProjectDir, tmp_path: Path) -> None:
    (project.root / "tenants.txt").write_text(
        "# tenants, not committed\nacme env:ACME_URL\n\nglobex sqlite:///globex.db  # EU\n",
        encoding="utf-8",
    )
    _configure(project, '[environments.dev]\ntargets_file = "tenants.txt"\n')
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    unset = project.run("apply", "dev", "--yes")
    assert unset.exit_code == 2 and "tenants.txt:2" in unset.output and "ACME_URL" in unset.output
    result = project.run(
        "apply", "dev", "--yes", env={"ACME_URL": f"sqlite:///{tmp_path / 'acme.db'}"}
    )
    assert result.exit_code == 0, result.output
    assert sorted(_record(project, "dev")["targets"]) == ["acme", "globex"]  # type: ignore[arg-type]


def test_targets_query_and_schemas_query(project: ProjectDir, pg_database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = pg_database.url
    _query(url, "CREATE TABLE tenants (name text, url text)")
    _query(url, f"INSERT INTO tenants VALUES ('acme', 'sqlite:///{tmp_path / 'acme.db'}')")
    _query(url, f"INSERT INTO tenants VALUES ('globex', 'sqlite:///{tmp_path / 'globex.db'}')")
    for schema in ("tenant_a", "tenant_b"):
        _query(url, f"CREATE SCHEMA {schema}")
    _configure(
        project,
        f'[environments.files]\ntargets_query = "SELECT name, url FROM tenants ORDER BY 1"\n'
        f'control_url = "{url}"\n\n'
        f'[environments.schemas]\nurl = "{url}"\nschemas_query = '
        "\"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant%' ORDER BY 1\"\n",
    )
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    files = project.run("apply", "files", "--yes")
    assert files.exit_code == 0, files.output
    assert sorted(_record(project, "files")["targets"]) == ["acme", "globex"]  # type: ignore[arg-type]
    schemas = project.run("apply", "schemas", "--yes")
    assert schemas.exit_code == 0, schemas.output
    assert _query(url, "SELECT count(*) FROM tenant_b.users") == [(0,)]
    assert "2 of 2 targets at 001_users" in project.run("status").output
    _configure(
        project,
        f'[environments.files]\ntargets_query = "SELECT name FROM nowhere"\n'
        f'control_url = "{url}"\n',
    )
    broken = project.run("apply", "files", "--yes")
    assert broken.exit_code == 2, broken.output
    assert "environments.files.targets_query failed" in broken.output


def test_protected_fleet_confirms_once_at_a_terminal(project: ProjectDir) -> None:
    """One typed confirmation for the whole fleet, and the prompt says how many targets."""
    import pexpect

    targets = json.dumps([f"sqlite:///t{index}.db" for index in range(1, 4)])
    _configure(
        project,
        f'[environments.pro]\nname = "Production"\nprotected = true\ntargets = {targets}\n',
    )
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    run = pexpect.spawn(
        sys.executable,
        ["-m", "sqlstage", "apply", "pro"],
        cwd=str(project.root),
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    run.expect("Backup taken?")
    run.sendline("y")
    run.expect("Type 'pro' to apply 1 migration to 3 targets of Production")
    run.sendline("pro")
    run.expect(pexpect.EOF)
    shown = run.before
    run.close()
    assert run.exitstatus == 0, shown
    assert "Applied to 3 of 3 targets of pro" in shown
    assert sorted(_record(project, "pro")["targets"]) == ["t1.db", "t2.db", "t3.db"]  # type: ignore[arg-type]


def test_a_target_marked_as_another_environment(project: ProjectDir) -> None:
    """The identity marker holds per target: one refusal stops the fleet before anything
    changes, unless --max-failures lets the others go on."""
    import sqlite3

    project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    _configure(project, '[environments.staging]\nurl = "sqlite:///t2.db"\n')
    assert project.run("apply", "staging", "--yes").exit_code == 0
    targets = json.dumps([f"sqlite:///t{index}.db" for index in range(1, 4)])
    _configure(project, f"[environments.dev]\ntargets = {targets}\n")
    refused = project.run("apply", "dev", "--yes")
    assert refused.exit_code == 3, refused.output
    assert (
        "target t2.db: this database is marked 'staging' but you asked for 'dev'" in refused.output
    )
    assert "1 of 3 targets cannot be planned" in refused.output
    assert not (project.root / "t1.db").exists() and not (project.root / "t3.db").exists()
    some = project.run("apply", "dev", "--yes", "--max-failures", "1")
    assert some.exit_code == 3, some.output
    assert (
        "dev: 2 of 3 targets changed, 1 failed (target t2.db: this database is marked"
        in some.output
    )
    assert "2 of 3 targets at 001_users; 1 with nothing applied (t2.db: failed)" in (
        project.run("status").output
    )
    for name in ("t1.db", "t3.db"):
        with sqlite3.connect(project.root / name) as conn:
            assert conn.execute("SELECT environment FROM sqlstage_environment").fetchall() == [
                ("dev",)
            ]


def test_one_database_doors_refuse_a_fleet(project: ProjectDir) -> None:
    """A script calling commands.apply on a fleet is told to use sqlstage.fleet; commands
    that read one database say how to read each target; nothing is created."""
    from sqlstage import commands
    from sqlstage.errors import ConfigError
    from sqlstage.project import Project

    _sqlite_fleet(project)
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    with pytest.raises(ConfigError, match=r"sqlstage\.fleet\.apply"):
        commands.apply(Project.load(project.root), "dev", commands.ApplyOptions(yes=True))
    schema = project.run("schema", "dev")
    assert schema.exit_code == 2 and "`sqlstage check dev`" in schema.output
    assert not (project.root / "t1.db").exists()


def test_a_targets_log_section_indents_every_statement_line(project: ProjectDir) -> None:
    """The runner writes a migration's statement lines in one call; each is its own line of
    the target's section, indented like the rest."""
    _configure(project, '[environments.dev]\ntargets = ["sqlite:///a.db", "sqlite:///b.db"]\n')
    project.write(
        "001_users.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);\nCREATE INDEX users_id ON users (id);\n",
    )
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    (log,) = (project.root / "logs" / "migrations").glob("*.log")
    lines = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert lines.count("    line 1: CREATE TABLE users (id INTEGER PRIMARY KEY);") == 2
    assert lines.count("    line 2: CREATE INDEX users_id ON users (id);") == 2


def _backups(project: ProjectDir, key: str) -> list[Path]:
    return sorted((project.root / "backups" / key).iterdir())


def test_backups_per_target_on_postgresql(project: ProjectDir) -> None:
    """N tenant databases on the main server -> N restorable dumps, each named after its
    target (no URL, no password), taken before that target's first migration."""
    _pg_admin().close()
    tenants = Tenants([PG_ADMIN_URL], 3)
    try:
        _fleet_project(project, tenants.urls, 'backup = "pg_dump"\ncanary = 1\n')
        project.write("001_items.sql", ITEMS)
        no_tool = project.run("apply", "tenants", "--yes", env={"PATH": "/nonexistent"})
        assert no_tool.exit_code == 2, no_tool.output
        assert "pg_dump is not installed" in no_tool.output
        assert "3 of 3 targets cannot be planned" in no_tool.output  # refused before any change
        assert not any(
            _query(url, "SELECT 1 FROM pg_tables WHERE tablename = 'sqlstage_history'")
            for url in tenants.urls
        )
        result = project.run("apply", "tenants", "--yes")
        assert result.exit_code == 0, result.output
        assert "Backups: one file per target in the project's backups/tenants/" in result.output
        assert "backups: 3 files in " in result.output
        assert "backups/tenants/ (one per target)" in result.output
        files = _backups(project, "tenants")
        assert len(files) == 3
        for url in tenants.urls:
            database = url.rsplit("/", 1)[1]
            (dump,) = [f for f in files if f.name.endswith(f"_127.0.0.1_5432_{database}.dump")]
            assert "@" not in dump.name and "postgres" not in dump.name
            assert dump.stat().st_mode & 0o077 == 0
            listed = subprocess.run(
                ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
            ).stdout
            assert f"dbname: {database}" in listed
            assert "TABLE public items" not in listed  # taken before 001 ran
        project.write("002_check.sql", CHECK)
        second = project.run("apply", "tenants", "--yes")
        assert second.exit_code == 0, second.output
        assert len(_backups(project, "tenants")) == 6
        newest = [f for f in _backups(project, "tenants") if f not in files]
        for dump in newest:  # before 002: the items table, no constraint yet
            listed = subprocess.run(
                ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
            ).stdout
            assert "TABLE public items" in listed and "qty_not_negative" not in listed
    finally:
        tenants.drop()


def test_backups_per_tenant_schema_hold_that_schema(project: ProjectDir, pg_database) -> None:  # type: ignore[no-untyped-def]
    for schema in ("tenant_a", "tenant_b"):
        _query(pg_database.url, f"CREATE SCHEMA {schema}")
    _configure(
        project,
        f'[environments.tenants]\nurl = "{pg_database.url}"\n'
        'schemas = ["tenant_a", "tenant_b"]\nbackup = "pg_dump"\n',
    )
    project.write("001_items.sql", ITEMS)
    assert project.run("apply", "tenants", "--yes").exit_code == 0
    before = _backups(project, "tenants")
    project.write("002_check.sql", CHECK)
    result = project.run("apply", "tenants", "--yes")
    assert result.exit_code == 0, result.output
    files = [f for f in _backups(project, "tenants") if f not in before]
    assert len(before) == 2 and len(files) == 2
    for schema, other in (("tenant_a", "tenant_b"), ("tenant_b", "tenant_a")):
        (dump,) = [f for f in files if f.name.endswith(f"_{schema}.dump")]
        listed = subprocess.run(
            ["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True
        ).stdout
        assert f"TABLE {schema} items" in listed
        assert other not in listed  # its own schema, not the neighbours'


def test_backups_per_target_on_sqlite(project: ProjectDir) -> None:
    (project.root / "data").mkdir()
    targets = json.dumps(["sqlite:///data/a.db", "sqlite:///data/b.db", "sqlite:///c.db"])
    _configure(project, f'[environments.dev]\ntargets = {targets}\nbackup = "sqlite"\n')
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
    assert project.run("apply", "dev", "--yes").exit_code == 0
    project.write("002_posts.sql", "CREATE TABLE posts (id INTEGER PRIMARY KEY);\n")
    result = project.run("apply", "dev", "--yes", "--json")
    assert result.exit_code == 0, result.output
    files = _backups(project, "dev")
    assert len(files) == 6  # three before 001, three before 002
    for name in ("data_a.db", "data_b.db", "c.db"):
        mine = [f for f in files if f.name.endswith(f"_{name}.db")]
        assert len(mine) == 2, [f.name for f in files]
        tables = subprocess.run(
            ["sqlite3", str(mine[-1]), ".tables"], capture_output=True, text=True, check=True
        ).stdout.split()
        assert "users" in tables and "posts" not in tables
    document = json.loads(result.stdout)
    reported = {Path(t["backup"]).name for t in document["targets"].values()}
    assert len(reported) == 3 and reported <= {f.name for f in files}


def test_drift_per_target(project: ProjectDir) -> None:
    """A fleet checked for drift: the one target changed by hand is named and refused
    before any target changes, `drift ENV` reports each target, --allow-drift goes on."""
    _pg_admin().close()
    tenants = Tenants([PG_ADMIN_URL], 3)
    try:
        _fleet_project(project, tenants.urls, "canary = 0\n\n[drift.tenants]\ncheck = true\n")
        project.write("001_items.sql", ITEMS)
        assert project.run("apply", "tenants", "--yes").exit_code == 0
        clean = project.run("drift", "tenants")
        assert clean.exit_code == 0, clean.output
        assert "no drift on any of 3 targets" in clean.output
        changed = tenants.urls[1]
        _query(changed, "CREATE INDEX items_by_hand ON items (qty)")
        project.write("002_check.sql", CHECK)
        refused = project.run("apply", "tenants", "--yes")
        assert refused.exit_code == 3, refused.output
        assert f"refused for {_name(changed)}; nothing was changed on any target" in (
            refused.output
        )
        assert not any(_has(url, "002_check") for url in tenants.urls)
        checked = project.status_json()["environments"]["tenants"]  # by apply, per target
        assert checked["drift"]["objects"] == [f"{_name(changed)}: index items_by_hand"]
        assert "fingerprint" not in checked  # one target's schema is not the fleet's
        found = project.run("drift", "tenants")
        assert found.exit_code == 1, found.output
        assert f"{_name(changed)}: drifted (1 object: index items_by_hand)" in found.output
        assert f"{_name(tenants.urls[0])}: no drift" in found.output
        verdict = project.status_json()["environments"]["tenants"]["drift"]
        assert verdict["clean"] is False
        assert verdict["objects"] == [f"{_name(changed)}: index items_by_hand"]
        document = json.loads(project.run("drift", "tenants", "--json").stdout)
        assert document["drifted"] is True
        assert document["targets"][_name(changed)]["drifted"] is True
        narrowed = project.run("drift", "tenants", "--target", _name(tenants.urls[0]))
        assert narrowed.exit_code == 0, narrowed.output
        allowed = project.run(
            "apply", "tenants", "--yes", "--allow-drift", "--reason", "index kept, ticket 7"
        )
        assert allowed.exit_code == 0, allowed.output
        assert all(_has(url, "002_check") for url in tenants.urls)
        _query(changed, "DROP INDEX items_by_hand")
        fixed = project.run("drift", "tenants")
        assert fixed.exit_code == 0, fixed.output
        assert project.status_json()["environments"]["tenants"]["drift"]["clean"] is True
    finally:
        tenants.drop()


def test_targets_ending_together_leave_status_json_agreeing_with_the_record(
    project: ProjectDir,
) -> None:
    """Each ending target writes its state to the record, then status.json's counts from
    the record: two at once must not let one write counts from a record the other has since
    changed (status.json would say 002 is everywhere while the record says it is not)."""
    import threading

    from sqlstage import fleet_record
    from sqlstage.project import Project

    names = _sqlite_fleet(project, count=12)
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    project.write("002_posts.sql", "CREATE TABLE posts (id INTEGER);\n")
    assert project.run("apply", "dev", "--yes").exit_code == 0
    assert project.status_json()["pending"]["dev"] == []
    loaded = Project.load(project.root)
    config, catalog = loaded.config, loaded.catalog
    env = config.environment("dev")

    back = fleet_record.TargetState("001_users", "2026-12-01T00:00:00Z")
    start = threading.Barrier(len(names))

    def rolled_back(name: str) -> None:
        start.wait()
        fleet_record.update_targets(config, "dev", {name: back})
        fleet_record.record_status(config, catalog, env, [])

    threads = [threading.Thread(target=rolled_back, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert project.status_json()["pending"]["dev"] == ["002_posts"]
    assert "002_posts" not in project.status_json()["environments"]["dev"].get("applied", {})
