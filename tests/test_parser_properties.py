"""Property-based tests of the migration file parser (hypothesis)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from sqlstage.errors import MigrationFileError
from sqlstage.migration import parse_text
from sqlstage.sqltext import split_statements

PATH = Path("001_x.sql")
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
# string contents that look like structure: a `;`, a rollback marker, a newline
_tricky = st.lists(
    st.sampled_from(["a", " ", ";", "\n", "-- rollback", "\n-- rollback\n", "--", "/*", "$"]),
    max_size=12,
).map("".join)


@st.composite
def statements(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["plain", "string", "dollar", "comment"]))
    name = draw(_word)
    inner = draw(_tricky)
    if kind == "string":
        return f"SELECT '{inner.replace(chr(39), chr(39) * 2)}' AS {name};"
    if kind == "dollar":
        body = inner.replace("$b$", "")
        return f"CREATE FUNCTION {name}() RETURNS text AS $b$ {body} $b$ LANGUAGE sql;"
    if kind == "comment":
        return f"SELECT 1 /* {inner.replace('*/', '').replace('/*', '')} */ AS {name};"
    return f"CREATE TABLE {name} (x int);"


@given(st.text(max_size=300))
def test_any_text_parses_or_is_a_file_error(text: str) -> None:
    try:
        migration = parse_text(1, "001_x", PATH, text)
    except MigrationFileError as error:
        assert str(PATH) in str(error)
        return
    assert migration.forward.strip()
    assert len(migration.checksum) == 64


@given(st.lists(statements(), min_size=1, max_size=6), st.lists(statements(), max_size=3))
def test_forward_and_rollback_survive_the_round_trip(
    forward: list[str], rollback: list[str]
) -> None:
    forward_sql = "\n".join(forward) + "\n"
    text = forward_sql
    if rollback:
        commented = "\n".join("-- " + line for s in rollback for line in s.split("\n"))
        text += "\n-- rollback\n" + commented + "\n"

    migration = parse_text(1, "001_x", PATH, text)

    assert migration.forward.rstrip("\n") == forward_sql.rstrip("\n")
    assert (migration.rollback or "").strip() == "\n".join(rollback).strip()
    assert [s.sql for s in split_statements(migration.forward)] == forward


@given(st.lists(statements(), min_size=1, max_size=6))
def test_checksum_ignores_bom_and_line_endings(forward: list[str]) -> None:
    text = "\n".join(forward) + "\n"
    plain = parse_text(1, "001_x", PATH, text)
    crlf = parse_text(1, "001_x", PATH, "\ufeff" + text.replace("\n", "\r\n"))
    assert plain.checksum == crlf.checksum
    assert plain.forward == crlf.forward
