"""Schema snapshots and `sqlstage schema`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver
from sqlstage.schema import Snapshot, diff, fingerprint, snapshot, snapshot_document
from sqlstage.urls import parse_url
from tests.conftest import Database, ProjectDir, unavailable


def open_driver(database: Database) -> Driver:
    return connect(parse_url(database.url, Path("."), "test"))


def snap(database: Database, *statements: str) -> Snapshot:
    with open_driver(database) as driver:
        for statement in statements:
            driver.execute(statement)
        return snapshot(driver)


def test_snapshot_lists_what_the_migrations_made_and_not_sqlstage_tables(
    four: ProjectDir, database: Database
) -> None:
    four.configure(dev={"url": database.url})
    assert four.run("apply", "dev", "--yes").exit_code == 0

    objects = snap(database).to_dict()["objects"]

    assert set(objects["table"]) == {"users", "posts"}
    assert {"users.id", "users.email", "users.display_name", "posts.status"} <= set(
        objects["column"]
    )
    assert "NOT NULL" in objects["column"]["users.email"]
    assert "'draft'" in objects["column"]["posts.status"]
    assert "posts_user_id_idx" in objects["index"]
    assert not any("sqlstage" in name for kind in objects.values() for name in kind)


def test_same_schema_built_in_another_order_is_equal(
    database: Database, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    other: Database = (
        Database("sqlite", f"sqlite:///{tmp_path / 'other.db'}")
        if database.dialect == "sqlite"
        else request.getfixturevalue("pg_database2")
    )
    first = snap(
        database,
        "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, gone TEXT)",
        "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a (id))",
        "CREATE INDEX b_a ON b (a_id)",
        "ALTER TABLE a DROP COLUMN gone",
    )
    # tables in the other order; on PostgreSQL the foreign key is added afterwards
    # (SQLite cannot add one to an existing table)
    late_key = database.dialect == "postgresql"
    inline_key = "" if late_key else " REFERENCES a (id)"
    second = snap(
        other,
        f"CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER{inline_key})",
        "CREATE INDEX b_a ON b (a_id)",
        "CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        *(["ALTER TABLE b ADD FOREIGN KEY (a_id) REFERENCES a (id)"] if late_key else []),
    )

    assert diff(first, second) == []
    assert first == second


def test_diff_names_extra_missing_and_changed_objects(database: Database) -> None:
    before = snap(
        database,
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT)",
        "CREATE TABLE gone (id INTEGER PRIMARY KEY, note TEXT)",
    )
    after = snap(
        database,
        "CREATE INDEX posts_title_idx ON posts (title)",
        "DROP TABLE gone",
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT NOT NULL)",
    )

    lines = [str(found) for found in diff(before, after)]

    assert any(line.startswith("extra index posts_title_idx: CREATE INDEX") for line in lines)
    assert any(line.partition(":")[0] == "extra table audit" for line in lines)
    assert any(line.partition(":")[0] == "missing table gone" for line in lines)
    assert not any("audit.what" in line or "gone.note" in line for line in lines), lines
    assert len(lines) == 3, lines


def test_changed_column_shows_both_definitions(pg_database: Database) -> None:
    before = snap(pg_database, "CREATE TABLE t (email text)")
    after = snap(pg_database, "ALTER TABLE t ALTER COLUMN email SET NOT NULL")

    assert [str(d) for d in diff(before, after)] == [
        "changed column t.email: text -> text NOT NULL"
    ]


def test_postgres_snapshot_covers_every_kind(pg_database: Database) -> None:
    objects = snap(
        pg_database,
        "CREATE SCHEMA billing",
        "CREATE TYPE mood AS ENUM ('sad', 'happy')",
        "CREATE DOMAIN positive AS integer CHECK (VALUE > 0)",
        "CREATE SEQUENCE counter START 10",
        "CREATE TABLE billing.invoices (id serial PRIMARY KEY, total positive, m mood)",
        "CREATE VIEW happy AS SELECT id FROM billing.invoices WHERE m = 'happy'",
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER t BEFORE UPDATE ON billing.invoices FOR EACH ROW EXECUTE FUNCTION touch()",
    ).to_dict()["objects"]

    assert objects["schema"] == {"billing": ""}
    assert objects["enum"] == {"mood": "'sad', 'happy'"}
    assert objects["domain"]["positive"].startswith("integer CONSTRAINT positive_check CHECK")
    assert "counter" in objects["sequence"] and "billing.invoices_id_seq" in objects["sequence"]
    assert "billing.invoices.invoices_pkey" in objects["constraint"]
    assert "happy" in objects["view"]
    assert "touch()" in objects["function"]
    assert "billing.invoices.t" in objects["trigger"]
    assert "plpgsql" in objects["extension"]


def test_the_document_from_rows_is_the_snapshots_own(pg_database: Database) -> None:
    """The after-run fingerprint hashes the document straight from the catalog query's
    rows: the same text, key order included, as the snapshot's `to_dict`."""
    with open_driver(pg_database) as driver:
        for statement in (
            "CREATE SCHEMA billing",
            "CREATE TYPE mood AS ENUM ('sad', 'happy')",
            "CREATE TABLE billing.invoices (id serial PRIMARY KEY, total int, m mood)",
            "CREATE TABLE b (z int, a int DEFAULT 1, m int UNIQUE)",
            "CREATE INDEX b_a ON b (a)",
            "CREATE VIEW happy AS SELECT id FROM billing.invoices WHERE m = 'happy'",
            "CREATE TABLE sqlstage_history (migration text PRIMARY KEY)",
            "COMMENT ON TABLE sqlstage_history IS 'ours'",
            "GRANT SELECT ON sqlstage_history TO PUBLIC",
            "GRANT SELECT ON b TO PUBLIC",
            "COMMENT ON COLUMN b.z IS 'last first'",
        ):
            driver.execute(statement)
        from_rows = snapshot_document(driver)
        from_snapshot = snapshot(driver).to_dict()

    assert json.dumps(from_rows) == json.dumps(from_snapshot)
    assert list(from_rows["objects"]["column"])[:3] == ["b.z", "b.a", "b.m"]
    assert not any("sqlstage" in name for kind in from_rows["objects"].values() for name in kind)


def test_postgres_catalog_queries_are_never_jit_compiled(pg_database: Database) -> None:
    """Once the catalogs of ~2,000 tables are analysed, the snapshot's estimated cost passes
    jit_above_cost and compiling it took 0.6 s of a 0.8 s snapshot. auto_explain tells
    whether a query was compiled ("JIT:" in its plan); the session's own setting stays."""
    with open_driver(pg_database) as driver:
        driver.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        expected = snapshot(driver)
        try:
            driver.execute("LOAD 'auto_explain'")
        except Exception:
            unavailable("auto_explain is not installed on this server")
        for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_level = notice"):
            driver.execute(f"SET {setting}")
        driver.execute("SET jit_above_cost = 0")  # every query is worth compiling, it says
        driver.query("SELECT count(*) FROM pg_class")
        compiled = "\n".join(driver.notices())
        if "JIT:" not in compiled:
            unavailable("this server has no JIT (built without LLVM, or jit = off)")

        assert snapshot(driver) == expected
        fingerprint(driver)
        plans = driver.notices()

        # the two large ones (a small query of the fingerprint's, run once, may be compiled
        # here, where every query is worth it: not on a real server)
        large = [p for p in plans if "pg_get_indexdef" in p or "hashtextextended" in p]
        assert len(large) == 2 and not any("JIT:" in plan for plan in large)
        assert driver.query("SELECT current_setting('jit')") == [("on",)]


def test_schema_command_prints_text_and_json(four: ProjectDir, database: Database) -> None:
    four.configure(dev={"url": database.url})
    four.run("apply", "dev", "--to", "002", "--yes")

    text = four.run("schema", "dev")
    as_json = four.run("schema", "dev", "--json")

    assert text.exit_code == 0, text.output
    assert "\ntable posts" in "\n" + text.output and "  index posts_user_id_idx: " in text.output
    data = json.loads(as_json.output)
    assert data["dialect"] == database.dialect
    assert set(data["objects"]["table"]) == {"users", "posts"}


def test_postgres_definitions_built_in_the_catalog_query(pg_database: Database) -> None:
    """The column, table and routine words the single catalog query assembles on the server."""
    objects = snap(
        pg_database,
        "CREATE TABLE t (a int GENERATED ALWAYS AS IDENTITY, b int GENERATED BY DEFAULT AS "
        "IDENTITY, c int NOT NULL DEFAULT 3, d int GENERATED ALWAYS AS (c * 2) STORED)",
        "CREATE UNLOGGED TABLE scratch (x text)",
        "CREATE TABLE measures (at date) PARTITION BY RANGE (at)",
        "CREATE MATERIALIZED VIEW one AS SELECT 1 AS n",
        "CREATE PROCEDURE tidy() LANGUAGE sql AS $$ SELECT 1 $$",
        "CREATE AGGREGATE total(int) (sfunc = int4pl, stype = int)",
    ).to_dict()["objects"]

    assert objects["column"]["t.a"] == "integer NOT NULL GENERATED ALWAYS AS IDENTITY"
    assert objects["column"]["t.b"] == "integer NOT NULL GENERATED BY DEFAULT AS IDENTITY"
    assert objects["column"]["t.c"] == "integer NOT NULL DEFAULT 3"
    assert objects["column"]["t.d"] == "integer GENERATED ALWAYS AS ((c * 2)) STORED"
    assert objects["table"] == {
        "t": "",
        "scratch": "unlogged",
        "measures": "partitioned partition by RANGE (at)",
    }
    assert objects["materialized view"]["one"] == "SELECT 1 AS n;"
    in_t = [name for name in objects["column"] if name.startswith("t.")]
    assert in_t == ["t.a", "t.b", "t.c", "t.d"]  # in the table's order
    assert objects["procedure"]["tidy()"].startswith("CREATE OR REPLACE PROCEDURE public.tidy()")
    assert '"aggtransfn": "int4pl"' in objects["aggregate"]["total(integer)"]
