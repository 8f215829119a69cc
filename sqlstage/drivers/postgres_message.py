"""A migration's transaction as one PostgreSQL simple-query message, and its errors mapped back.

The session reset, BEGIN, the migration's statements, its history row and COMMIT travel as one
message: one round trip per migration. The server runs the statements in order and stops at
the first error, so the failing statement is told by the error's position in the message
(syntax errors and the like) or else by how many results came back before it (a unique
violation has no position). `build` makes the message, `locate` reads an error back into
(statement, position in it); neither talks to the server.

    >>> message = build(["BEGIN"], ["CREATE TABLE a (x int)", "SELEC 1"], ["COMMIT"])
    >>> message.text
    'BEGIN;\\nCREATE TABLE a (x int)\\n;\\nSELEC 1\\n;\\nCOMMIT'
    >>> locate(message, results=1, position=message.text.index("SELEC") + 1)
    Place(index=2, position=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

#: after each migration statement: a newline ends a trailing `-- comment`, and a `;` the
#: statement already has only makes an empty statement, which the server skips
_AFTER_STATEMENT = "\n;\n"


@dataclass(frozen=True)
class Message:
    """One message: statements of ours, then the migration's, then ours again."""

    text: str
    #: offset in `text` where each of the migration's statements starts
    starts: tuple[int, ...]
    #: each statement's length
    lengths: tuple[int, ...]
    #: how many of our own statements come first (each gives the server's one result)
    before: int

    @property
    def results(self) -> int:
        """Results before the statements after the migration's: ours, then its own."""
        return self.before + len(self.starts)


@dataclass(frozen=True)
class Place:
    """Where an error came from: the 1-based statement of the migration and the 1-based
    character in it; `index` None: one of our own statements (COMMIT, the history row)."""

    index: int | None
    position: int | None = None


def build(before: Sequence[str], statements: Sequence[str], after: Sequence[str]) -> Message:
    """The message running `before`, `statements` and `after` in order; each item of
    `before` and `after` must be exactly one statement of ours (no trailing comment)."""
    head = "".join(f"{sql};\n" for sql in before)
    parts, starts, lengths, offset = [head], [], [], len(head)
    for sql in statements:
        starts.append(offset)
        lengths.append(len(sql))
        parts.append(sql + _AFTER_STATEMENT)
        offset += len(sql) + len(_AFTER_STATEMENT)
    parts.append("; ".join(after))
    return Message("".join(parts), tuple(starts), tuple(lengths), len(before))


def locate(message: Message, results: int, position: int | None) -> Place:
    """The statement an error came from. `results`: how many results the server sent, the
    error's included; `position`: the error's 1-based character in the whole message, if any.

    A position is the surest guide (a syntax error stops the whole message before anything
    runs, so the results say nothing then); without one, the error is the last result.
    """
    if position is not None:
        offset = position - 1
        spans = zip(message.starts, message.lengths, strict=True)
        for index, (start, length) in enumerate(spans, start=1):
            if start <= offset < start + length:
                return Place(index, offset - start + 1)
        return Place(None)
    index = results - message.before
    return Place(index if 1 <= index <= len(message.starts) else None)


def literal(value: object, standard_strings: bool = True) -> str:
    """A value of sqlstage's own rows as SQL text (None, bool, int, datetime, text).

    With `standard_conforming_strings` on (the default since PostgreSQL 9.1) only a quote is
    special inside '...'; with it off, backslashes are too, so the text goes in E'...':

    >>> literal("it's"), literal(3), literal(None), literal("a\\\\b", standard_strings=False)
    ("'it''s'", '3', 'NULL', "E'a\\\\\\\\b'")
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, datetime):
        return literal(value.isoformat(), standard_strings) + "::timestamptz"
    text = str(value)
    if "\x00" in text:  # PostgreSQL text cannot hold it; never quietly cut a value short
        raise ValueError("a NUL character cannot be sent to PostgreSQL")
    quoted = text.replace("'", "''")
    if standard_strings:
        return f"'{quoted}'"
    return "E'" + quoted.replace("\\", "\\\\") + "'"
