"""Lexical helpers over SQL text that hold for every dialect we support.

A small scanner that knows where quoted strings, quoted identifiers, comments and PostgreSQL
dollar-quoted bodies begin and end. It answers two questions without a full parser: where the
top-level `;` are, and whether a line starts outside any of those regions (so that a
`-- rollback` inside a function body is not taken for the rollback marker).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
# Everything the scanner must look at; plain text between these is skipped in C.
_INTERESTING = re.compile(r"[;\n'\"`$]|--|/\*")
_COMMENT_EDGE = re.compile(r"/\*|\*/")


@dataclass(frozen=True)
class Statement:
    """One statement of a migration: its text as written and the file line it starts on."""

    sql: str
    line: int


def top_level_positions(text: str) -> Iterator[tuple[str, int]]:
    """Yield `(kind, offset)` for each `;` and each line start that lies outside quotes/comments.

    kind is ";" or "\\n" (the offset then is that of the first character of the new line).

    >>> list(top_level_positions("select ';';\\nx"))
    [(';', 10), ('\\n', 12)]
    """
    i, n = 0, len(text)
    while True:
        found = _INTERESTING.search(text, i)
        if found is None:
            return
        i = found.start()
        c = text[i]
        if c == ";":
            yield ";", i
            i += 1
        elif c == "\n":
            i += 1
            yield "\n", i
        elif c == "-":  # "--": a line comment; its newline is still a line start
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == "/":
            i = _skip_block_comment(text, i)
        elif c in "'\"`":
            i = _skip_quoted(text, i, c)
        else:
            match = _DOLLAR_TAG.match(text, i)
            if match and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                end = text.find(match.group(0), match.end())
                i = n if end < 0 else end + len(match.group(0))
            else:
                i += 1


def _skip_block_comment(text: str, i: int) -> int:
    depth, i = 1, i + 2  # PostgreSQL nests block comments
    while depth:
        found = _COMMENT_EDGE.search(text, i)
        if found is None:
            return len(text)
        depth += 1 if found.group(0) == "/*" else -1
        i = found.end()
    return i


def _skip_quoted(text: str, i: int, quote: str) -> int:
    i += 1
    while True:
        end = text.find(quote, i)
        if end < 0:
            return len(text)
        if not text.startswith(quote * 2, end):
            return end + 1
        i = end + 2  # a doubled quote is an escaped quote


def split_statements(text: str, complete: Callable[[str], bool] | None = None) -> list[Statement]:
    """Split SQL at top-level semicolons; drop pieces that hold only comments and blanks.

    `complete`, when given, is asked whether the text up to a `;` is a whole statement
    (SQLite's trigger bodies hold semicolons of their own).

    >>> for s in split_statements("create table a (x int);\\n-- note\\ninsert into a values (1);"):
    ...     print(s.line, s.sql)
    1 create table a (x int);
    3 insert into a values (1);
    """
    statements: list[Statement] = []
    start = 0
    for kind, offset in top_level_positions(text):
        if kind == ";" and (complete is None or complete(text[start : offset + 1])):
            statements.extend(_statement(text, start, offset + 1))
            start = offset + 1
    statements.extend(_statement(text, start, len(text)))
    return statements


def _statement(text: str, start: int, end: int) -> list[Statement]:
    begin = first_code_offset(text, start, end)
    if begin is None:
        return []
    return [Statement(text[begin:end].strip(), line_of(text, begin))]


def first_code_offset(text: str, start: int, end: int) -> int | None:
    """The offset of the first character in text[start:end] that is not blank or a comment."""
    i = start
    while i < end:
        if text[i].isspace() or text[i] == ";":
            i += 1
        elif text.startswith("--", i):
            newline = text.find("\n", i, end)
            i = end if newline < 0 else newline + 1
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i)
        else:
            return i
    return None


def line_of(text: str, offset: int) -> int:
    """1-based line number of a character offset."""
    return text.count("\n", 0, offset) + 1
