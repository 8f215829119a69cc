"""Every input is checked before the first write: environment keys, migration numbers, the kind
of file in the migrations folder, --lock-wait, lock_timeout, and COPY with inline data. Each bad
one is a one-line error with its exit code, and nothing was written anywhere."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import Result
from psycopg import sql

from sqlstage import locking
from sqlstage.config import parse_config
from sqlstage.errors import ConfigError, MigrationFileError
from sqlstage.migration import read_migration
from tests.conftest import PG_ADMIN_URL, Database, ProjectDir


def one_error(result: Result, code: int, *needles: str) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def dev(project: ProjectDir, database: Database) -> ProjectDir:
    project.configure(dev={"url": database.url})
    project.write("001_first.sql", "CREATE TABLE first (x INTEGER);\n")
    return project


def nothing_written(project: ProjectDir, database: Database) -> None:
    assert database.tables() == set()
    assert not project.status_file.exists()
    assert project.logs() == []


# -- environment keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a/b", "../../escaped", "Pro", "pro eu", "1st", "-x", "x" * 64])
def test_environment_key_that_is_not_a_plain_name_is_refused_at_load(
    project: ProjectDir, tmp_path: Path, key: str
) -> None:
    (project.root / "sqlstage.toml").write_text(
        f'[environments."{key}"]\nurl = "sqlite:///dev.db"\nbackup = "sqlite"\n', encoding="utf-8"
    )
    project.write("001_first.sql", "CREATE TABLE first (x INTEGER);\n")
    before = sorted(tmp_path.rglob("*"))

    status = project.run("status")
    applied = project.run("apply", "--yes", "--backup", "--", key)

    one_error(status, 2, "sqlstage.toml", repr(key), "[environments.pro-eu]")
    one_error(applied, 2, repr(key))
    assert sorted(tmp_path.rglob("*")) == before  # no database, log or backup anywhere


@pytest.mark.parametrize("key", ["dev", "pro-eu", "tenant_42", "x" * 63])
def test_plain_environment_keys_are_accepted(project: ProjectDir, key: str) -> None:
    project.configure(**{key: {"url": "sqlite:///dev.db"}})

    assert project.run("status").exit_code == 0


# -- migration numbers and files ----------------------------------------------------------------


def test_full_width_digits_are_not_a_migration_number(dev: ProjectDir, database: Database) -> None:
    dev.write("\uff10\uff10\uff13_third.sql", "CREATE TABLE third (x INTEGER);\n")

    result = dev.run("apply", "dev", "--yes")

    one_error(result, 2, "\uff10\uff10\uff13_third.sql", "not a migration file name", "0-9")
    nothing_written(dev, database)


def test_full_width_digits_do_not_name_a_migration(dev: ProjectDir, database: Database) -> None:
    result = dev.run("apply", "dev", "\uff10\uff10\uff11", "--yes")

    one_error(result, 2, "no migration")
    nothing_written(dev, database)


def run_with_deadline(project: ProjectDir, *args: str) -> subprocess.CompletedProcess[str]:
    """A real process, killed after 20 s: a FIFO used to block every command forever."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "sqlstage", "-C", str(project.root), *args],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"sqlstage {' '.join(args)} hung on the migrations folder")


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_only_regular_files_are_migrations(dev: ProjectDir, database: Database, kind: str) -> None:
    path = dev.migrations / "002_second.sql"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()

    for command in (("status",), ("apply", "dev", "--yes")):
        done = run_with_deadline(dev, *command)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert "002_second.sql: is a " + ("named pipe" if kind == "fifo" else "folder") in line
    nothing_written(dev, database)


# -- --lock-wait --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "1e400"])
@pytest.mark.parametrize("command", ["apply", "rollback"])
def test_lock_wait_must_be_finite(
    dev: ProjectDir, database: Database, value: str, command: str
) -> None:
    result = dev.run(command, "dev", "--lock-wait", value, "--yes")

    one_error(result, 2, "--lock-wait", "--lock-wait 30")
    nothing_written(dev, database)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, -math.inf])
def test_library_lock_wait_check(value: float) -> None:
    with pytest.raises(ConfigError, match="--lock-wait must be a number of seconds"):
        locking.lock_wait(value)
    assert locking.lock_wait(0) == 0.0


# -- lock_timeout -------------------------------------------------------------------------------


def test_lock_timeout_out_of_range_is_refused_before_any_write(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url, "lock_timeout": "99999999999d"})
    project.write("001_first.sql", "CREATE TABLE first (x INTEGER);\n")

    result = project.run("apply", "dev", "--yes")

    one_error(result, 2, "environments.dev.lock_timeout", "99999999999d", "2147483647 ms")
    nothing_written(project, pg_database)


#: values in sqlstage's grammar (a number and a unit); PostgreSQL decides which it takes
LOCK_TIMEOUTS = [
    "5s", "5 s", "500ms", "1.5s", "1.5min", "0", "0s", "0.6ms", "0.5ms", "0.4ms", "500us",
    "1000us", "2147483647ms", "2147483648ms", "2147483647.4ms", "2147483647.5ms",
    "35791min", "35792min", "596h", "597h", "24d", "25d", "99999999999d",
]  # fmt: skip


ZERO = {"0", "0s"}  # disabled on purpose


def postgres_keeps(value: str) -> bool:
    """PostgreSQL takes `value` for lock_timeout, and it does not round a wait to "never"."""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("SET lock_timeout = {}").format(value))
        except psycopg.errors.InvalidParameterValue:
            return False
        row = conn.execute("SHOW lock_timeout").fetchone()
    return row is not None and (row[0] != "0" or value in ZERO)


def config_takes(value: str, tmp_path: Path) -> bool:
    data: dict[str, Any] = {"environments": {"dev": {"url": "x", "lock_timeout": value}}}
    try:
        parse_config(tmp_path, data)
    except ConfigError:
        return False
    return True


def test_lock_timeout_is_checked_as_postgresql_checks_it(
    tmp_path: Path, pg_database: Database
) -> None:
    verdicts = {v: (config_takes(v, tmp_path), postgres_keeps(v)) for v in LOCK_TIMEOUTS}

    assert {v: ours for v, (ours, _) in verdicts.items()} == {
        v: theirs for v, (_, theirs) in verdicts.items()
    }
    assert verdicts["99999999999d"] == (False, False) and verdicts["5s"] == (True, True)


# -- COPY ... FROM STDIN ------------------------------------------------------------------------

PG_DUMP_STYLE = """
    CREATE TABLE t (x INTEGER, y TEXT);
    COPY t (x, y) FROM stdin;
    1\tone
    2\ttwo
    \\.
    """


def test_copy_from_stdin_with_inline_data_is_a_file_error(
    dev: ProjectDir, database: Database
) -> None:
    path = dev.write("002_data.sql", PG_DUMP_STYLE)

    result = dev.run("apply", "dev", "--yes")

    one_error(result, 2, f"{path}:2:", "COPY ... FROM STDIN", "INSERT", "\\copy")
    nothing_written(dev, database)  # 001 did not run either: the files are checked first


def test_copy_in_the_rollback_section_names_its_line(dev: ProjectDir, database: Database) -> None:
    path = dev.write(
        "002_data.sql",
        "CREATE TABLE t (x INTEGER);\n\n-- rollback\n-- DELETE FROM t;\n-- COPY t TO STDOUT;\n",
    )

    result = dev.run("apply", "dev", "--yes")

    one_error(result, 2, f"{path}:5:", "COPY ... TO STDOUT")
    nothing_written(dev, database)


def test_copy_from_stdin_in_any_case_is_a_file_error(tmp_path: Path) -> None:
    """Whatever cheap test runs before the statement scan must not miss a COPY in mixed
    case."""
    path = tmp_path / "001_data.sql"
    path.write_text("create table t (x int);\ncoPY t FROM Stdin;\n1\n\\.\n", encoding="utf-8")

    with pytest.raises(MigrationFileError, match=r"001_data.sql:2: COPY \.\.\. FROM STDIN"):
        read_migration(path)


def test_copy_mentioned_in_a_string_or_comment_is_fine(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write(
        "001_notes.sql",
        """
        CREATE TABLE notes (body TEXT);
        -- COPY notes FROM stdin;
        INSERT INTO notes VALUES ('COPY notes FROM stdin;');
        """,
    )

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert pg_database.query("SELECT body FROM notes") == [("COPY notes FROM stdin;",)]
