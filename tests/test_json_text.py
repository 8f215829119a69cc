"""The `--json` document's text is byte for byte what `json.dumps(indent=2)` writes, and the
redaction it skips when nothing in the text could be a secret is never needed."""

from __future__ import annotations

import enum
import io
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sqlstage.cli.json_text import indented
from sqlstage.cli.output import JsonOutput, redacted


class Color(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def reference(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# strings that look like the separators and brackets the encoder looks for
TRICKY = st.sampled_from(["},\n  {", "}, {", "{", "}", "[", "]", ",\n", "\\", '"', "é", "\x00", ""])
TEXT = st.one_of(st.text(), TRICKY, st.lists(TRICKY, max_size=4).map("".join))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.sampled_from([Color.RED, Level.HIGH, Path("/tmp/x"), math.inf]),
)
KEYS = st.one_of(TEXT, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
RECORD = st.dictionaries(TEXT, SCALARS, min_size=1, max_size=4)
VALUES = st.recursive(
    SCALARS | st.lists(RECORD, max_size=4),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=500)
@given(VALUES)
def test_indented_is_json_dumps_with_indent_2(value: Any) -> None:
    assert indented(value) == reference(value)


def test_indented_on_the_shapes_of_a_status_document() -> None:
    records = [{"migration": f"{n:05d}_x", "appliedAt": "2025-01-01T00:00:00Z"} for n in range(3)]
    document = {
        "migrations": [f"{n:05d}_x" for n in range(3)],
        "environments": {"dev": {"applied": records, "pending": [], "drift": None}},
        "nested": [records, [], {}, [{}], [{"a": []}], [{"a": 1}, "b"]],
    }
    assert indented(document) == reference(document)


def emitted(document: dict[str, Any], secrets: list[str]) -> str:
    stream = io.StringIO()
    output = JsonOutput()
    output._stdout = stream  # where the document goes: the real stdout in a run
    output.emit(document, secrets)
    return stream.getvalue()


@settings(max_examples=300)
@given(VALUES, st.lists(st.one_of(TEXT, st.just("pw"), st.just('p"w')), max_size=3))
def test_emit_writes_the_redacted_document_whatever_it_skips(
    value: Any, secrets: list[str]
) -> None:
    plain = {"value": value}
    with_secrets = {**plain, "url": "postgresql://app:pw@db/x", "again": 'p"w'}
    for document in (plain, with_secrets):
        assert emitted(document, secrets) == reference(redacted(document, secrets)) + "\n"
