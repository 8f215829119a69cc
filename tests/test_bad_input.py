"""Bad input of every kind: a clear one-line error, the documented exit code, nothing changed."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import Database, ProjectDir, pg_url_for


def _refused_and_untouched(
    project: ProjectDir, database: Database, code: int, *needles: str
) -> str:
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == code, result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.output
    for needle in needles:
        assert needle in error_lines[0], result.output
    assert database.tables() == set()
    assert not project.status_file.exists()
    return error_lines[0]


@pytest.fixture
def dev(project: ProjectDir, database: Database) -> ProjectDir:
    project.configure(dev={"url": database.url})
    project.write("001_first.sql", "CREATE TABLE first (x INTEGER);\n")
    return project


@pytest.mark.parametrize(
    "name", ["4_AddThing.sql", "004-add-thing.sql", "add_thing.sql", "004_add thing.sql"]
)
def test_malformed_names(dev: ProjectDir, database: Database, name: str) -> None:
    dev.write(name, "SELECT 1;\n")
    _refused_and_untouched(dev, database, 2, name, "not a migration file name", "NNN_")


def test_duplicate_numbers(dev: ProjectDir, database: Database) -> None:
    dev.write("001_second.sql", "SELECT 1;\n")
    _refused_and_untouched(dev, database, 2, "number 1 is also used by")


def test_missing_numbers_are_allowed_and_run_in_order(dev: ProjectDir, database: Database) -> None:
    dev.write("007_seventh.sql", "CREATE TABLE seventh (x INTEGER);\n")
    result = dev.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert database.history() == ["001_first", "007_seventh"]


@pytest.mark.parametrize(
    "text", ["", "\n\n", "-- only a comment\n", "-- rollback\n-- DROP TABLE x;\n"]
)
def test_empty_files(dev: ProjectDir, database: Database, text: str) -> None:
    (dev.migrations / "002_empty.sql").write_text(text)
    _refused_and_untouched(dev, database, 2, "002_empty.sql", "holds no SQL")


def test_bom_and_crlf_apply_with_the_same_checksum(dev: ProjectDir, database: Database) -> None:
    plain = "CREATE TABLE second (x INTEGER);\n\n-- rollback\n-- DROP TABLE second;\n"
    (dev.migrations / "002_second.sql").write_bytes(
        b"\xef\xbb\xbf" + plain.replace("\n", "\r\n").encode()
    )
    result = dev.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert "second" in database.tables()

    (dev.migrations / "002_second.sql").write_text(plain)  # the same file, saved plainly
    assert dev.run("status").exit_code == 0  # not "edited"
    assert dev.run("apply", "dev", "--yes").exit_code == 0


def test_binary_junk(dev: ProjectDir, database: Database) -> None:
    (dev.migrations / "002_junk.sql").write_bytes(b"SELECT 1;\n\x89PNG\r\n\x1a\n\x00\xff\xfe")
    _refused_and_untouched(dev, database, 2, "002_junk.sql:2", "not valid UTF-8")


def test_nul_bytes_in_valid_utf8(dev: ProjectDir, database: Database) -> None:
    (dev.migrations / "002_nul.sql").write_bytes(b"SELECT 1;\nSELECT '\x00';\n")
    _refused_and_untouched(dev, database, 2, "002_nul.sql:2", "NUL byte")


def test_a_20_mb_migration(dev: ProjectDir, database: Database) -> None:
    dev.write("002_big.sql", "CREATE TABLE big (body TEXT);\n")
    body = "x" * (20 * 1024 * 1024)
    (dev.migrations / "003_fill.sql").write_text(
        f"INSERT INTO big VALUES ('{body}');\n\n-- rollback\n-- DELETE FROM big;\n"
    )
    result = dev.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert database.query("SELECT length(body) FROM big") == [(20 * 1024 * 1024,)]


def test_dollar_quoted_body_with_semicolons_and_rollback(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write(
        "001_fn.sql",
        """
        CREATE FUNCTION answer() RETURNS text LANGUAGE plpgsql AS $body$
        BEGIN
          -- rollback
          RETURN 'a; b';
        END;
        $body$;
        SELECT answer();

        -- rollback
        -- DROP FUNCTION answer();
        """,
    )
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 0, result.output
    assert "2 statements" in result.output
    assert pg_database.query("SELECT answer()") == [("a; b",)]


def test_unknown_config_keys(project: ProjectDir) -> None:
    (project.root / "sqlstage.toml").write_text(
        '[environments.dev]\nurl = "sqlite:///dev.db"\nprotect = true\n'
    )
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 2
    assert "unknown key 'protect' in [environments.dev]" in result.output
    assert not (project.root / "dev.db").exists()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        (f"postgresql://postgres@127.0.0.1:{_closed_port()}/app", "Connection refused"),
        # pg_hba.conf here trusts 127.0.0.1, so any password is accepted: a role and a
        # database that do not exist stand in for wrong credentials
        (pg_url_for("postgres").replace("postgres@", "nobody_here:wrong@", 1), "nobody_here"),
        (pg_url_for("no_such_database_sqlstage"), "no_such_database_sqlstage"),
        (
            "postgresql://root@127.0.0.1:3306/app",
            "cannot connect to postgresql://root@127.0.0.1:3306",
        ),
    ],
    ids=["closed-port", "unknown-role", "unknown-database", "mariadb-at-a-postgres-url"],
)
def test_cannot_connect(project: ProjectDir, url: str, needle: str) -> None:
    project.configure(dev={"url": url})
    project.write("001_first.sql", "CREATE TABLE first (x INTEGER);\n")
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 4, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot connect"), result.output
    assert needle in lines[0]
    assert "wrong" not in lines[0]  # the password never shows
    assert not project.status_file.exists()


def test_a_file_that_is_not_sqlite_at_a_sqlite_url(project: ProjectDir) -> None:
    (project.root / "dev.db").write_bytes(b"this is not a database" * 100)
    project.configure(dev={"url": "sqlite:///dev.db"})
    project.write("001_first.sql", "CREATE TABLE first (x INTEGER);\n")
    result = project.run("apply", "dev", "--yes")
    assert result.exit_code == 4, result.output
    assert "file is not a database" in result.output
    assert (project.root / "dev.db").read_bytes() == b"this is not a database" * 100
