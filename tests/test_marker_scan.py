"""The fast rollback-marker scan gives the same answer as the reference scanner.

`find_rollback_marker` uses one regex pass for speed; `top_level_positions` walks the text
token by token and is the reference for what is inside a string, a comment or a dollar body.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sqlstage.migration import ROLLBACK_MARKER, find_rollback_marker
from sqlstage.sqltext import top_level_positions

FRAGMENTS = [
    "'",
    '"',
    "`",
    "$",
    "$$",
    "$a$",
    "$b$",
    "x$a$",
    "é$a$",
    "''",
    "--",
    "-",
    "/*",
    "*/",
    "-- rollback",
    "--rollback",
    "-- ROLLBACK x",
    "-- rollbackx",
    "\n--\trollback;",
    "\n",
    "\n  -- rollback",
    " ",
    "\t",
    ";",
    "x",
    "_",
    "é",
    "rollback",
]


def reference(text: str) -> int | None:
    if ROLLBACK_MARKER.match(text):
        return 0
    for kind, offset in top_level_positions(text):
        if kind == "\n" and ROLLBACK_MARKER.match(text, offset):
            return offset
    return None


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=20).map("".join))
def test_fast_scan_agrees_with_the_reference_scanner(text: str) -> None:
    assert find_rollback_marker(text) == reference(text)


def test_a_marker_inside_a_string_or_dollar_body_is_not_the_marker() -> None:
    text = "select '\n-- rollback\n';\ncreate function f() as $fn$\n-- rollback\n$fn$;\n"
    assert find_rollback_marker(text) is None
    assert find_rollback_marker(text + "-- Rollback\n-- drop function f;\n") == len(text)
