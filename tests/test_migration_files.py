"""The migration file format: names, encodings, the rollback section and the checksum."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import sqlstage
from sqlstage.catalog import load_catalog
from sqlstage.errors import MigrationFileError
from sqlstage.migration import read_migration
from tests.conftest import Database, ProjectDir


def _write_bytes(project: ProjectDir, name: str, data: bytes) -> Path:
    path = project.migrations / name
    path.write_bytes(data)
    return path


def _error(project: ProjectDir) -> str:
    with pytest.raises(MigrationFileError) as caught:
        load_catalog(project.migrations)
    return str(caught.value)


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "add_users.sql",
        "001-add-users.sql",
        "001_AddUsers.sql",
        "001_.sql",
        "x01_users.sql",
        "001_add users.sql",
    ],
)
def test_a_bad_name_is_an_error_naming_the_file(project: ProjectDir, name: str) -> None:
    project.write("001_create_users.sql", "CREATE TABLE users (id INTEGER);\n")
    project.write(name, "SELECT 1;\n")
    project.configure(dev={"url": "sqlite:///dev.db"})

    result = project.run("status")

    assert result.exit_code == 2
    assert name in result.stderr
    assert "NNN_snake_case_name.sql" in result.stderr


def test_other_files_are_ignored(project: ProjectDir) -> None:
    project.write("001_create_users.sql", "CREATE TABLE users (id INTEGER);\n")
    (project.migrations / "README.md").write_text("# our migrations\n")
    (project.migrations / "notes.txt").write_text("not sql\n")
    (project.migrations / ".keep").write_text("")
    (project.migrations / ".002_draft.sql.swp").write_bytes(b"\xff\xfe")

    catalog = load_catalog(project.migrations)

    assert [m.name for m in catalog.migrations] == ["001_create_users"]


def test_migrations_are_ordered_by_number_not_by_text(project: ProjectDir) -> None:
    for number in (10, 2, 1):
        project.write(f"{number}_m{number}.sql", f"CREATE TABLE t{number} (id INTEGER);\n")

    catalog = load_catalog(project.migrations)

    assert [m.number for m in catalog.migrations] == [1, 2, 10]


def test_duplicate_numbers_are_an_error_naming_both_files(project: ProjectDir) -> None:
    project.write("001_create_users.sql", "CREATE TABLE users (id INTEGER);\n")
    project.write("1_create_posts.sql", "CREATE TABLE posts (id INTEGER);\n")
    project.configure(dev={"url": "sqlite:///dev.db"})

    result = project.run("status")

    assert result.exit_code == 2
    assert "1_create_posts.sql" in result.stderr
    assert "001_create_users" in result.stderr
    assert "number 1 is also used" in result.stderr


def test_non_utf8_is_an_error_naming_file_and_line(project: ProjectDir) -> None:
    path = _write_bytes(
        project, "001_latin1.sql", b"-- caf\xc3\xa9 ok\nSELECT 1;\nSELECT 'caf\xe9';\n"
    )
    project.configure(dev={"url": "sqlite:///dev.db"})

    result = project.run("status")

    assert result.exit_code == 2
    assert f"{path}:3: not valid UTF-8" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "-- only a comment\n",
        "/* block */\n-- rollback\n-- DROP TABLE x;\n",
        "-- rollback\n-- DROP TABLE x;\n",
    ],
)
def test_empty_forward_section_is_an_error_naming_the_file(project: ProjectDir, text: str) -> None:
    path = _write_bytes(project, "001_empty.sql", text.encode())

    message = _error(project)

    assert str(path) in message
    assert "forward section holds no SQL" in message


# -- the rollback section ------------------------------------------------------------------


@pytest.mark.parametrize(
    "marker",
    [
        "-- rollback",
        "-- Rollback (execute only when needed)",
        "--ROLLBACK",
        "  --  rollback",
        "-- ROLLBACK:",
    ],
)
def test_rollback_marker_variants(project: ProjectDir, marker: str) -> None:
    path = project.write(
        "001_add_status.sql",
        f"ALTER TABLE posts ADD COLUMN status TEXT;\n\n{marker}\n"
        "-- ALTER TABLE posts DROP COLUMN status;\n",
    )

    migration = read_migration(path)

    assert migration.forward == "ALTER TABLE posts ADD COLUMN status TEXT;\n\n"
    assert migration.rollback is not None
    assert migration.rollback.strip() == "ALTER TABLE posts DROP COLUMN status;"
    assert migration.rollback_line == 3


@pytest.mark.parametrize("comment", ["-- rollbacks are manual", "-- rollback_table is ours"])
def test_a_longer_word_is_not_the_marker(project: ProjectDir, comment: str) -> None:
    path = project.write("001_x.sql", f"{comment}\nCREATE TABLE x (id INTEGER);\n")

    migration = read_migration(path)

    assert migration.rollback_line is None
    assert "CREATE TABLE x" in migration.forward


def test_no_marker_means_no_rollback(project: ProjectDir) -> None:
    path = project.write("001_x.sql", "CREATE TABLE x (id INTEGER);\n")

    migration = read_migration(path)

    assert migration.rollback is None and migration.rollback_line is None


FUNCTION_WITH_ROLLBACK_COMMENT = """\
CREATE FUNCTION bump() RETURNS integer AS $body$
BEGIN
-- rollback here would be wrong: this is inside the function
  RETURN 1;
END;
$body$ LANGUAGE plpgsql;
CREATE TABLE notes (id integer, body text DEFAULT '
-- rollback inside a string
');

-- rollback
-- DROP TABLE notes;
-- DROP FUNCTION bump();
"""


def test_rollback_inside_dollar_quotes_or_a_string_is_not_the_marker(
    project: ProjectDir, pg_database: Database
) -> None:
    path = project.write("001_function.sql", FUNCTION_WITH_ROLLBACK_COMMENT)
    project.configure(dev={"url": pg_database.url})

    migration = read_migration(path)
    result = project.run("apply", "dev", "--yes")

    assert migration.rollback_line == 11
    assert "RETURN 1;" in migration.forward and "DROP TABLE" not in migration.forward
    assert result.exit_code == 0, result.output
    assert pg_database.query("SELECT bump()") == [(1,)]
    assert pg_database.query(
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_name = 'notes' AND column_name = 'body'"
    ) == [("'\n-- rollback inside a string\n'::text",)]


def test_rollback_inside_a_string_is_not_the_marker_on_sqlite(
    project: ProjectDir, database: Database
) -> None:
    project.write(
        "001_notes.sql",
        """
        CREATE TABLE notes (id INTEGER, body TEXT);
        INSERT INTO notes VALUES (1, 'first
        -- rollback
        last');

        -- rollback
        -- DROP TABLE notes;
        """,
    )
    project.configure(dev={"url": database.url})

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    [(body,)] = database.query("SELECT body FROM notes")
    assert body == "first\n-- rollback\nlast"


def test_rollback_line_not_commented_out_is_an_error(project: ProjectDir) -> None:
    path = project.write(
        "001_add_status.sql",
        """
        ALTER TABLE posts ADD COLUMN status TEXT;

        -- rollback
        -- first line is fine
        ALTER TABLE posts DROP COLUMN status;
        """,
    )
    project.configure(dev={"url": "sqlite:///dev.db"})

    result = project.run("status")

    assert result.exit_code == 2
    assert f"{path}:5: the rollback section has a line that is not commented out" in result.stderr


def test_the_rollback_section_never_runs(project: ProjectDir, database: Database) -> None:
    project.write(
        "001_users.sql",
        """
        CREATE TABLE users (id INTEGER);

        -- rollback
        -- DROP TABLE users;
        """,
    )
    project.configure(dev={"url": database.url})

    assert project.run("apply", "dev", "--yes").exit_code == 0
    assert "users" in database.tables()


# -- the checksum --------------------------------------------------------------------------

BASE = "CREATE TABLE users (id INTEGER);\n\n-- rollback\n-- DROP TABLE users;\n"


def _checksum(project: ProjectDir, data: bytes) -> str:
    return read_migration(_write_bytes(project, "001_users.sql", data)).checksum


def test_checksum_ignores_edits_to_the_rollback_section(project: ProjectDir) -> None:
    base = _checksum(project, BASE.encode())
    edited = _checksum(
        project,
        b"CREATE TABLE users (id INTEGER);\n\n-- Rollback (execute only when needed)\n"
        b"-- DROP TABLE IF EXISTS users CASCADE;\n-- and a note\n",
    )
    assert edited == base


def test_checksum_ignores_crlf_and_bom(project: ProjectDir) -> None:
    base = _checksum(project, BASE.encode())

    assert _checksum(project, BASE.replace("\n", "\r\n").encode()) == base
    assert _checksum(project, b"\xef\xbb\xbf" + BASE.encode()) == base
    assert _checksum(project, b"\xef\xbb\xbf" + BASE.replace("\n", "\r\n").encode()) == base


def test_checksum_changes_when_forward_sql_changes(project: ProjectDir) -> None:
    base = _checksum(project, BASE.encode())

    assert _checksum(project, BASE.replace("INTEGER", "BIGINT").encode()) != base
    assert _checksum(project, ("-- note\n" + BASE).encode()) != base


def test_checksum_is_sha256_of_the_forward_section(project: ProjectDir) -> None:
    import hashlib

    expected = hashlib.sha256(b"CREATE TABLE users (id INTEGER);\n").hexdigest()
    assert _checksum(project, BASE.encode()) == expected


@pytest.mark.parametrize(
    "later",
    [
        b"CREATE TABLE users (id INTEGER);\n\n-- rollback\n-- DROP TABLE users;\n",
        b"CREATE TABLE users (id INTEGER);\n\n\n-- Rollback\n",
        b"CREATE TABLE users (id INTEGER);",  # an editor dropped the final newline
        b"CREATE TABLE users (id INTEGER);\n  \n",
    ],
)
def test_adding_a_rollback_section_later_keeps_the_checksum(
    project: ProjectDir, later: bytes
) -> None:
    """The blank line before a rollback added after the fact is not an edit of the SQL."""
    assert _checksum(project, later) == _checksum(project, b"CREATE TABLE users (id INTEGER);\n")


def test_adding_a_rollback_section_after_dev_does_not_warn(
    project: ProjectDir, database: Database
) -> None:
    path = project.write("001_users.sql", "CREATE TABLE users (id INTEGER);\n")
    project.configure(dev={"url": database.url})
    assert project.run("apply", "dev", "--yes").exit_code == 0

    path.write_text(path.read_text() + "\n-- rollback\n-- DROP TABLE users;\n")
    result = project.run("status")

    assert result.exit_code == 0
    assert "edited" not in result.output


def test_crlf_file_applies_and_is_recorded_with_the_lf_checksum(
    project: ProjectDir, database: Database
) -> None:
    lf = _checksum(project, BASE.encode())
    _write_bytes(project, "001_users.sql", b"\xef\xbb\xbf" + BASE.replace("\n", "\r\n").encode())
    project.configure(dev={"url": database.url})

    result = project.run("apply", "dev", "--yes")

    assert result.exit_code == 0, result.output
    assert database.query("SELECT checksum FROM sqlstage_history") == [(lf,)]


# -- doctests ------------------------------------------------------------------------------

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(sqlstage.__path__, prefix="sqlstage.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("module", MODULES)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("module", ["sqlstage.sqltext", "sqlstage.urls"])
def test_documented_examples_exist(module: str) -> None:
    assert doctest.testmod(importlib.import_module(module)).attempted >= 1
