# ruff: noqa: E501  (the table of pairs reads best one pair a line)
"""The SQLite snapshot against the sqlite3 shell's `.schema`: equal exactly when the
normalised `.schema` (and the pragmas stored in the file) are equal."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from sqlstage.drivers import connect
from sqlstage.schema import Snapshot, diff, render_text, snapshot
from sqlstage.schema.sqlite import normalise
from sqlstage.urls import parse_url
from tests.conftest import IN_CI

# a missing sqlite3 skips on a developer's machine only: under CI=true the tests run and fail
pytestmark = pytest.mark.skipif(
    shutil.which("sqlite3") is None and not IN_CI, reason="needs sqlite3"
)

PARENT = "CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT UNIQUE)"

#: (id, schema, the same schema with one attribute changed)
PAIRS = [
    ("autoincrement", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)"),
    ("deferrable", f"{PARENT}; CREATE TABLE t (p_id INTEGER REFERENCES p (id))", f"{PARENT}; CREATE TABLE t (p_id INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)"),
    ("collate", "CREATE TABLE t (v TEXT)", "CREATE TABLE t (v TEXT COLLATE NOCASE)"),
    ("check", "CREATE TABLE t (v INTEGER CHECK (v > 0))", "CREATE TABLE t (v INTEGER CHECK (v > 1))"),
    ("check added", "CREATE TABLE t (v INTEGER)", "CREATE TABLE t (v INTEGER, CHECK (v > 0))"),
    ("generated expression", "CREATE TABLE t (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2))", "CREATE TABLE t (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 3))"),
    ("generated stored", "CREATE TABLE t (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2))", "CREATE TABLE t (a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2) STORED)"),
    ("two keys on one column", f"{PARENT}; CREATE TABLE t (x INTEGER REFERENCES p (id))", f"{PARENT}; CREATE TABLE t (x INTEGER REFERENCES p (id), FOREIGN KEY (x) REFERENCES p (code))"),
    ("column order", "CREATE TABLE t (a INTEGER, b INTEGER)", "CREATE TABLE t (b INTEGER, a INTEGER)"),
    ("without rowid", "CREATE TABLE t (a INTEGER PRIMARY KEY)", "CREATE TABLE t (a INTEGER PRIMARY KEY) WITHOUT ROWID"),
    ("strict", "CREATE TABLE t (a INTEGER)", "CREATE TABLE t (a INTEGER) STRICT"),
    ("index", "CREATE TABLE t (a INTEGER); CREATE INDEX ta ON t (a)", "CREATE TABLE t (a INTEGER); CREATE INDEX ta ON t (a DESC)"),
    ("user_version", "CREATE TABLE t (a INTEGER)", "CREATE TABLE t (a INTEGER); PRAGMA user_version = 3"),
]  # fmt: skip


def build(path: Path, sql: str) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript(sql)
    conn.close()
    return path


def dot_schema(path: Path) -> tuple[list[str], str]:
    """`.schema` normalised, one statement an item, sorted; and the stored pragmas."""
    out = subprocess.run(
        ["sqlite3", str(path), ".schema", "PRAGMA user_version;"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    *schema, version = out.strip().split("\n")
    statements = "\n".join(schema).split(";\n")
    return sorted(normalise(s) for s in statements if s.strip()), version


def snap(path: Path) -> Snapshot:
    with connect(parse_url(f"sqlite:///{path}", Path("."), "test")) as driver:
        return snapshot(driver)


def assert_agree(first: Path, second: Path) -> bool:
    same = dot_schema(first) == dot_schema(second)
    a, b = snap(first), snap(second)
    assert (a == b) == same, (same, [str(d) for d in diff(a, b)])
    assert (render_text(a) == render_text(b)) == same
    assert (diff(a, b) == []) == same
    return same


@pytest.mark.parametrize(("one", "other"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS])
def test_snapshot_differs_exactly_when_dot_schema_does(
    tmp_path: Path, one: str, other: str
) -> None:
    assert not assert_agree(build(tmp_path / "a.db", one), build(tmp_path / "b.db", other))


def test_two_foreign_keys_on_one_column_are_two_objects(tmp_path: Path) -> None:
    path = build(
        tmp_path / "a.db",
        f"{PARENT}; CREATE TABLE t (x INTEGER REFERENCES p (id), FOREIGN KEY (x) REFERENCES p (code))",
    )

    keys = [o.name for o in snap(path).objects if "FOREIGN KEY" in o.name]

    assert keys == ["t.FOREIGN KEY (x) REFERENCES p (code)", "t.FOREIGN KEY (x) REFERENCES p (id)"]


def test_a_table_altered_back_equals_one_built_so(tmp_path: Path) -> None:
    first = build(tmp_path / "a.db", "CREATE TABLE t (a INTEGER, b TEXT)")
    second = build(
        tmp_path / "b.db",
        "CREATE TABLE t (a INTEGER, b TEXT); ALTER TABLE t ADD COLUMN c INTEGER; ALTER TABLE t DROP COLUMN c",
    )

    assert assert_agree(first, second)


def test_column_order_is_its_own_difference(tmp_path: Path) -> None:
    first = snap(build(tmp_path / "a.db", "CREATE TABLE t (a INTEGER, b INTEGER)"))
    second = snap(build(tmp_path / "b.db", "CREATE TABLE t (b INTEGER, a INTEGER)"))

    lines = [str(d) for d in diff(first, second)]

    assert "column order differs: t: a, b -> b, a" in lines
