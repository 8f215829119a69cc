"""Schema snapshots: a normalised, deterministic description of a database's schema.

A snapshot is a sorted tuple of `SchemaObject(kind, name, definition)`; two snapshots of the
same schema are equal, whatever order the objects were created in. `diff` turns two snapshots
into lines a reviewer can read:

    >>> email = SchemaObject("column", "users.email", "TEXT", "users")
    >>> strict = SchemaObject("column", "users.email", "TEXT NOT NULL", "users")
    >>> index = SchemaObject("index", "posts_status_idx", "CREATE INDEX ...", "posts")
    >>> for line in diff(Snapshot("sqlite", (email,)), Snapshot("sqlite", (strict, index))):
    ...     print(line)
    changed column users.email: TEXT -> TEXT NOT NULL
    extra index posts_status_idx: CREATE INDEX ...

sqlstage's own tables (`sqlstage_history`, `sqlstage_environment`) are never part of it.
Each dialect's catalog reader is its own module, picked by `driver.dialect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from sqlstage.drivers.base import Driver

OWN_TABLES = ("sqlstage_history", "sqlstage_environment")
#: the order kinds are listed in, from the outside in
KINDS = (
    "schema",
    "extension",
    "enum",
    "domain",
    "sequence",
    "table",
    "column",
    "constraint",
    "index",
    "trigger",
    "view",
    "materialized view",
    "function",
    "procedure",
)
READERS = {
    "postgresql": "sqlstage.schema.postgres",
    "sqlite": "sqlstage.schema.sqlite",
    "mysql": "sqlstage.schema.mysql",
}


@dataclass(frozen=True, order=True)
class SchemaObject:
    """One object: `column`, `posts.status`, `text DEFAULT 'draft'::text`.

    `table` names the table a column, constraint, index or trigger belongs to (else "").
    """

    kind: str
    name: str
    definition: str
    table: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name


@dataclass(frozen=True)
class Snapshot:
    dialect: str
    objects: tuple[SchemaObject, ...]

    def to_dict(self) -> dict[str, Any]:
        """`{"dialect": ..., "objects": {"table": {"posts": ""}, "column": {...}}}`"""
        grouped: dict[str, dict[str, str]] = {}
        for item in self.objects:
            grouped.setdefault(item.kind, {})[item.name] = item.definition
        return {"dialect": self.dialect, "objects": grouped}


def make_snapshot(dialect: str, objects: list[SchemaObject]) -> Snapshot:
    """Sort and drop sqlstage's own tables (and what hangs off them)."""
    kept = [o for o in objects if o.table not in OWN_TABLES and o.name not in OWN_TABLES]
    order = {kind: index for index, kind in enumerate(KINDS)}
    kept.sort(key=lambda o: (order.get(o.kind, len(KINDS)), o.kind, o.name))
    return Snapshot(dialect, tuple(kept))


def snapshot(driver: Driver) -> Snapshot:
    """The schema of the database `driver` is connected to, read from its catalogs."""
    reader = import_module(READERS[driver.dialect])
    result: Snapshot = reader.read(driver)
    return result


def diff(expected: Snapshot, actual: Snapshot) -> list[str]:
    """What `actual` has that `expected` lacks (`extra`), lacks (`missing`) or defines otherwise
    (`changed`). The columns, constraints, indexes and triggers of a table that is itself extra
    or missing are not listed again."""
    old = {o.key: o for o in expected.objects}
    new = {o.key: o for o in actual.objects}
    gone_tables = {name for kind, name in old.keys() ^ new.keys() if kind == "table"}
    lines = []
    for item in actual.objects:
        before = old.get(item.key)
        if before is None and item.table not in gone_tables:
            lines.append(_line("extra", item, item.definition))
        elif before is not None and before.definition != item.definition:
            lines.append(
                f"changed {item.kind} {item.name}: "
                f"{_short(before.definition)} -> {_short(item.definition)}"
            )
    for item in expected.objects:
        if item.key not in new and item.table not in gone_tables:
            lines.append(_line("missing", item, item.definition))
    return lines


def render_text(snap: Snapshot) -> str:
    """The snapshot as stable text, tables with their columns, constraints, indexes and
    triggers beneath them; fit for a committed `schema.sql`-like file and for review."""
    children: dict[str, list[SchemaObject]] = {}
    for item in snap.objects:
        if item.table:
            children.setdefault(item.table, []).append(item)
    out: list[str] = []
    for item in snap.objects:
        if item.table:
            continue
        out.append(_block(f"{item.kind} {item.name}", item.definition, ""))
        for child in children.get(item.name, []) if item.kind == "table" else []:
            short_name = child.name.removeprefix(f"{item.name}.")
            out.append(_block(f"  {child.kind} {short_name}", child.definition, "  "))
    return "\n".join(out) + "\n" if out else ""


def _block(head: str, definition: str, indent: str) -> str:
    if not definition:
        return head
    lines = definition.strip().splitlines()
    if len(lines) == 1:
        return f"{head}: {lines[0]}"
    return "\n".join([f"{head}:", *(f"{indent}    {line.rstrip()}" for line in lines)])


def _line(word: str, item: SchemaObject, definition: str) -> str:
    text = f"{word} {item.kind} {item.name}"
    return f"{text}: {_short(definition)}" if definition else text


def _short(definition: str, width: int = 160) -> str:
    text = " ".join(definition.split()) or "(empty)"
    return text if len(text) <= width else text[: width - 3] + "..."
