"""Shared fixtures: real databases (one per test, dropped afterwards) and a project folder.

PostgreSQL comes from SQLSTAGE_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres),
MySQL/MariaDB from SQLSTAGE_TEST_MYSQL (default mysql://root@127.0.0.1:3306/mysql).
When a server cannot be reached its cases skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import sqlite3
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest
from click.testing import CliRunner, Result

from sqlstage.cli import cli
from tests.fleet_fixtures import extra_pg_servers  # noqa: F401
from tests.pooler_fixtures import pgbouncer, session_pooler, transaction_pooler  # noqa: F401

PG_ADMIN_URL = os.environ.get("SQLSTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN_URL = os.environ.get("SQLSTAGE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/mysql")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(message: str) -> NoReturn:
    """Something a test needs is missing: a failure under CI=true (where nothing may be
    skipped), a skip on a developer's machine."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as err:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {err}")


def _mysql_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": parts.username or "root",
        "password": parts.password or "",
        "database": parts.path.lstrip("/") or None,
        "autocommit": True,
        "connect_timeout": 5,
    }


def _mysql_admin() -> Any:
    import pymysql

    try:
        return pymysql.connect(**_mysql_options(MYSQL_ADMIN_URL))
    except pymysql.Error as err:
        unavailable(f"MySQL/MariaDB at {MYSQL_ADMIN_URL} is unreachable: {err}")


def mysql_url_for(database: str) -> str:
    parts = urlsplit(MYSQL_ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


def pg_url_for(database: str) -> str:
    """The admin URL pointed at another database."""
    parts = urlsplit(PG_ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class Database:
    """A real, empty database for one test, and a way to look inside it."""

    dialect: str
    url: str

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.dialect == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                return conn.execute(sql).fetchall()
        if self.dialect == "mysql":
            import pymysql

            with pymysql.connect(**_mysql_options(self.url)) as conn, conn.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall()) if cursor.description else []
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def tables(self) -> set[str]:
        if self.dialect == "sqlite":
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
        elif self.dialect == "mysql":
            rows = self.query(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            )
        else:
            rows = self.query("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {row[0] for row in rows}

    def history(self) -> list[str]:
        if "sqlstage_history" not in self.tables():
            return []
        return [r[0] for r in self.query("SELECT migration FROM sqlstage_history ORDER BY 1")]


def make_pg_database() -> Iterator[Database]:
    admin = _pg_admin()
    name = f"sqlstage_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database("postgresql", pg_url_for(name))
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def make_mysql_database() -> Iterator[Database]:
    admin = _mysql_admin()
    name = f"sqlstage_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield Database("mysql", mysql_url_for(name))
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def mysql_database() -> Iterator[Database]:
    """A real, empty MySQL/MariaDB database for one test, dropped afterwards."""
    yield from make_mysql_database()


@pytest.fixture
def mysql_database2() -> Iterator[Database]:
    yield from make_mysql_database()


@pytest.fixture
def pg_database() -> Iterator[Database]:
    yield from make_pg_database()


@pytest.fixture
def pg_database2() -> Iterator[Database]:
    yield from make_pg_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp_path / 'dev.db'}")
    else:
        yield from make_pg_database()


class ProjectDir:
    """A project folder with sqlstage.toml; helpers to write migrations and run the CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.migrations = root / "database" / "migrations" / "sql"
        self.status_file = root / "database" / "migrations" / "status.json"
        self.migrations.mkdir(parents=True, exist_ok=True)

    def configure(self, **environments: dict[str, Any]) -> None:
        lines = []
        for key, table in environments.items():
            lines.append(f"[environments.{key}]")
            for name, value in table.items():
                rendered = str(value).lower() if isinstance(value, bool) else f'"{value}"'
                lines.append(f"{name} = {rendered}")
            lines.append("")
        (self.root / "sqlstage.toml").write_text("\n".join(lines), encoding="utf-8")

    def write(self, name: str, sql: str) -> Path:
        path = self.migrations / name
        path.write_text(textwrap.dedent(sql).lstrip("\n"), encoding="utf-8")
        return path

    def run(
        self,
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        crash: bool = False,
    ) -> Result:
        """The CLI in-process; a crash (an exception the CLI did not turn into its one-line
        error) is raised, unless `crash` says the test is about one."""
        result = CliRunner().invoke(cli, ["-C", str(self.root), *args], input=input, env=env)
        if not crash and result.exception and not isinstance(result.exception, SystemExit):
            # CliRunner turns a crash into exit code 1, the code of a failed migration: a
            # test asserting a failure would pass on a traceback, and a fixture's
            # `exit_code == 0` would hide what went wrong
            raise result.exception
        return result

    def status_json(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self.status_file.read_text(encoding="utf-8")))

    def logs(self) -> list[Path]:
        return sorted((self.root / "logs" / "migrations").glob("*.log"))


@pytest.fixture
def project(tmp_path: Path) -> ProjectDir:
    root = tmp_path / "app"
    root.mkdir()
    return ProjectDir(root)


FOUR_MIGRATIONS = {
    "001_create_users.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);

        -- rollback
        -- DROP TABLE users;
        """,
    "002_create_posts.sql": """
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT);
        CREATE INDEX posts_user_id_idx ON posts (user_id);

        -- rollback
        -- DROP TABLE posts;
        """,
    "003_add_user_profile.sql": """
        ALTER TABLE users ADD COLUMN display_name TEXT;

        -- Rollback (execute only when needed)
        -- ALTER TABLE users DROP COLUMN display_name;
        """,
    "004_add_status_column.sql": """
        ALTER TABLE posts ADD COLUMN status TEXT DEFAULT 'draft';

        -- rollback
        -- ALTER TABLE posts DROP COLUMN status;
        """,
}


@pytest.fixture
def four(project: ProjectDir) -> ProjectDir:
    for name, sql in FOUR_MIGRATIONS.items():
        project.write(name, sql)
    return project
