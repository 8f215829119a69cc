"""The one statement that would bring a drifted object back in line, where it is obvious:
suggested, never run. Anything less obvious (a changed view, a dropped column's data) gets
no suggestion: a migration is the way to decide it.

    >>> from sqlstage.schema import Difference
    >>> print(suggestion(Difference("extra", "index", "posts_title_idx", None, "CREATE ..."),
    ...     "postgresql"))
    DROP INDEX posts_title_idx;
    >>> print(suggestion(Difference("changed", "column", "users.plan",
    ...     "text DEFAULT 'free'::text", "text DEFAULT 'pro'::text"), "postgresql"))
    ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'free'::text;
"""

from __future__ import annotations

import re

from sqlstage.schema import Difference

_DEFAULT = re.compile(r"\s+DEFAULT\s+(?P<value>.+?)(?=\s+(?:NOT NULL|GENERATED|COLLATE)\b|$)")


def suggestion(difference: Difference, dialect: str) -> str | None:
    """The SQL that would undo `difference`, or None when there is no one obvious statement."""
    change, kind, name = difference.change, difference.kind, difference.name
    if kind == "index" and change == "extra":
        if dialect == "mysql" and "." in name:  # `table.index`: MySQL's index names are per table
            table, index = name.rsplit(".", 1)
            return f"DROP INDEX {index} ON {table};"
        return f"DROP INDEX {name};"
    if kind == "index" and change == "missing" and (difference.expected or "").startswith("CREATE"):
        return f"{(difference.expected or '').rstrip(';')};"
    if kind in ("view", "trigger") and change == "extra":
        return f"DROP {kind.upper()} {name};"
    if kind == "policy" and change == "extra" and "." in name:
        table, policy = name.rsplit(".", 1)
        return f"DROP POLICY {policy} ON {table};"
    if kind == "column" and change == "changed" and dialect == "postgresql":
        return _default(name, difference.expected or "", difference.live or "")
    if kind == "grant" and change == "extra" and dialect == "postgresql":
        return _revoke(name, difference.live or "")
    return None


def default_only(expected: str, live: str) -> bool:
    """Whether two column definitions differ in their DEFAULT clause alone."""
    return expected != live and _DEFAULT.sub("", expected) == _DEFAULT.sub("", live)


def _default(name: str, expected: str, live: str) -> str | None:
    if not default_only(expected, live) or "." not in name:
        return None
    table, column = name.rsplit(".", 1)
    found = _DEFAULT.search(expected)
    action = f"SET DEFAULT {found.group('value')}" if found else "DROP DEFAULT"
    return f"ALTER TABLE {table} ALTER COLUMN {column} {action};"


def _revoke(name: str, live: str) -> str | None:
    """`grant table posts` with `reader SELECT (by postgres)` and no expected grants."""
    target = name.split(" ", 1)
    if len(target) != 2 or target[0] not in ("table", "sequence", "schema"):
        return None
    statements = []
    for entry in live.split("; "):
        words = entry.split(" ")
        if len(words) < 2 or words[0] == "revoked":
            return None
        on = target[1] if target[0] == "table" else f"{target[0].upper()} {target[1]}"
        statements.append(f"REVOKE {words[1]} ON {on} FROM {words[0]};")
    return " ".join(statements) or None
