"""`schema_dump`: the environment's schema written to a committed file after apply and
rollback, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Database, ProjectDir


def test_schema_dump_follows_apply_and_rollback(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url, "schema_dump": True})
    dump = four.root / "database" / "schema.sql"

    first = four.run("apply", "dev", "--to", "003", "--yes")

    assert first.exit_code == 0, first.output
    assert "schema.sql: commit it" in first.output
    after_003 = dump.read_text(encoding="utf-8")
    assert after_003.startswith("-- Schema of environment 'dev'")
    assert "\ntable users" in after_003 and "  column display_name: " in after_003
    assert "  index posts_user_id_idx: " in after_003
    assert "sqlstage_history" not in after_003 and "status" not in after_003.split("\n", 2)[2]

    four.write(
        "004_add_status_column.sql",
        "ALTER TABLE posts ADD COLUMN status TEXT;\n"
        "\n-- rollback\n-- ALTER TABLE posts DROP COLUMN status;\n",
    )
    assert four.run("apply", "dev", "--yes").exit_code == 0
    after_004 = dump.read_text(encoding="utf-8")
    added = set(after_004.splitlines()) - set(after_003.splitlines())
    heads = {line.split(":")[0] for line in added}
    assert "  column status" in heads
    # on SQLite the table's own line holds its CREATE TABLE text, which gained the column
    assert heads - {"  column status"} <= {"table posts"}

    rolled = four.run("rollback", "dev", "--yes")

    assert rolled.exit_code == 0, rolled.output
    assert "schema.sql: commit it" in rolled.output
    assert dump.read_text(encoding="utf-8") == after_003


def test_apply_that_leaves_the_schema_alone_leaves_the_file_alone(
    four: ProjectDir, database: Database
) -> None:
    four.configure(dev={"url": database.url, "schema_dump": True})
    dump = four.root / "database" / "schema.sql"
    assert four.run("apply", "dev", "--yes").exit_code == 0
    written = dump.stat().st_mtime_ns, dump.read_text(encoding="utf-8")
    four.write("005_seed.sql", "INSERT INTO users (id, email) VALUES (1, 'a@example.com');\n")

    data_only = four.run("apply", "dev", "--yes")
    nothing = four.run("apply", "dev", "--yes")

    assert data_only.exit_code == 0 and "Applied 1 migration" in data_only.output
    assert nothing.exit_code == 0
    assert "schema.sql" not in data_only.output + nothing.output
    assert (dump.stat().st_mtime_ns, dump.read_text(encoding="utf-8")) == written


def test_schema_dump_to_a_path_of_its_own(four: ProjectDir, database: Database) -> None:
    four.configure(
        dev={"url": database.url, "schema_dump": "db/dev-schema.txt"},
        staging={"url": "sqlite:///staging.db", "schema_dump": True},
    )

    assert four.run("apply", "dev", "--yes").exit_code == 0

    assert "table posts" in (four.root / "db" / "dev-schema.txt").read_text(encoding="utf-8")
    assert not (four.root / "database" / "schema.sql").exists()  # staging was not applied


def test_no_schema_dump_unless_asked(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})

    assert four.run("apply", "dev", "--yes").exit_code == 0

    assert not (four.root / "database" / "schema.sql").exists()


def test_schema_dump_config_errors(four: ProjectDir, tmp_path: Path) -> None:
    toml = four.root / "sqlstage.toml"
    toml.write_text('[environments.dev]\nurl = "sqlite:///dev.db"\nschema_dump = 1\n')
    wrong_type = four.run("status")
    toml.write_text(
        '[environments.dev]\nurl = "sqlite:///dev.db"\nschema_dump = true\n'
        '[environments.test]\nurl = "sqlite:///test.db"\nschema_dump = "database/schema.sql"\n'
    )
    same_file = four.run("status")

    assert wrong_type.exit_code == 2
    assert "environments.dev.schema_dump must be true, false or a path" in wrong_type.stderr
    assert same_file.exit_code == 2
    assert "environments dev and test both write their schema to" in same_file.stderr
