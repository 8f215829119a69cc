"""Schema snapshots: a normalised, deterministic description of a database's schema.

A snapshot is a sorted tuple of `SchemaObject(kind, name, definition, table, position)`; two
snapshots of the same schema are equal, whatever order the objects were created in. `diff`
turns two snapshots into `Difference` values a reviewer can read:

    >>> email = SchemaObject("column", "users.email", "TEXT", "users", 1)
    >>> strict = SchemaObject("column", "users.email", "TEXT NOT NULL", "users", 1)
    >>> index = SchemaObject("index", "posts_status_idx", "CREATE INDEX ...", "posts")
    >>> for found in diff(Snapshot("sqlite", (email,)), Snapshot("sqlite", (strict, index))):
    ...     print(found)
    changed column users.email: TEXT -> TEXT NOT NULL
    extra index posts_status_idx: CREATE INDEX ...

sqlstage's own tables (`sqlstage_history`, `sqlstage_environment`, any `sqlstage_*` table) are
never part of it. Each dialect's catalog reader is its own module, picked by `driver.dialect`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from sqlstage.drivers.base import Driver

OWN_TABLES = ("sqlstage_history", "sqlstage_environment")
#: sqlstage's tables, today's and any it adds later
OWN_TABLE = re.compile(r"sqlstage_\w*")
#: the order kinds are listed in, from the outside in; kinds not listed come last, by name
KINDS = (
    "schema",
    "extension",
    "collation",
    "enum",
    "domain",
    "composite type",
    "range type",
    "type",
    "sequence",
    "table",
    "column",
    "constraint",
    "index",
    "trigger",
    "rule",
    "policy",
    "view",
    "materialized view",
    "function",
    "procedure",
    "aggregate",
)
#: a definition longer than this, or on several lines, is shown as the lines that changed
SHORT = 100


@dataclass(frozen=True, order=True)
class SchemaObject:
    """One object: `column`, `posts.status`, `text DEFAULT 'draft'::text`.

    `table` names the table a column, constraint, index or trigger belongs to (else "").
    `position` is a column's place among its table's columns (1, 2, ...; else 0).
    """

    kind: str
    name: str
    definition: str
    table: str = ""
    position: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.name


#: a SchemaObject's fields as a reader's query gives them: kind, name, definition, table, position
Row = tuple[str, str, str, str, int]


@dataclass(frozen=True)
class Snapshot:
    dialect: str
    objects: tuple[SchemaObject, ...]

    def to_dict(self) -> dict[str, Any]:
        """`{"dialect": ..., "objects": {"table": {"posts": ""}, "column": {...}}}`; columns
        in their table's order."""
        rows = ((o.kind, o.name, o.definition, o.table, o.position) for o in self.objects)
        return document(self.dialect, rows)


def document(dialect: str, rows: Iterable[Row]) -> dict[str, Any]:
    """`Snapshot.to_dict()` of a snapshot of these objects, without making them (a
    fingerprint needs no more): by kind, then in their table's order."""
    order, last = _KIND_ORDER, len(KINDS)
    # ties of a table's order broken by definition, as make_snapshot's order breaks them
    ordered = sorted(rows, key=lambda r: (order.get(r[0], last), r[0], r[3], r[4], r[1], r[2]))
    grouped: dict[str, dict[str, str]] = {}
    for kind, name, definition, _table, _position in ordered:
        grouped.setdefault(kind, {})[name] = definition
    return {"dialect": dialect, "objects": grouped}


@dataclass(frozen=True)
class Difference:
    """One way the live schema differs from the expected one.

    `change` is `extra` (only live has it), `missing` (only expected has it), `changed`
    (both, defined otherwise) or `order` (a table's columns in another order); `expected`
    and `live` are the two definitions (None where the object is absent).
    """

    change: str
    kind: str
    name: str
    expected: str | None
    live: str | None

    def __str__(self) -> str:
        return self.text

    @property
    def text(self) -> str:
        """The whole difference, never cut: one line, or the changed lines of a long one."""
        if self.change == "order":
            return f"column order differs: {self.name}: {self.expected} -> {self.live}"
        head = f"{self.change} {self.kind} {self.name}"
        if self.change != "changed":
            definition = self.live if self.change == "extra" else self.expected
            return f"{head}: {_one_line(definition)}" if definition else head
        old, new = self.expected or "", self.live or ""
        if _is_short(old) and _is_short(new):
            return f"{head}: {_one_line(old) or '(empty)'} -> {_one_line(new) or '(empty)'}"
        return "\n".join([f"{head}:", *_changed_lines(old, new)])

    def to_dict(self) -> dict[str, str | None]:
        return {
            "change": self.change,
            "kind": self.kind,
            "name": self.name,
            "expected": self.expected,
            "live": self.live,
            "text": self.text,
        }


#: a kind's place in KINDS (kinds not listed: len(KINDS))
_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}


def make_snapshot(dialect: str, objects: list[SchemaObject]) -> Snapshot:
    """Sort and drop sqlstage's own tables (and what hangs off them)."""
    kept = [o for o in objects if not _own(o.kind, o.name, o.table)]
    order, last = _KIND_ORDER, len(KINDS)
    kept.sort(key=lambda o: (order.get(o.kind, last), o.kind, o.name, o.definition, o.table))
    return Snapshot(dialect, tuple(kept))


def _own(kind: str, name: str, table: str) -> bool:
    # every name below starts with `sqlstage_` or is part of `name`: most objects are not
    if not table.startswith("sqlstage_") and "sqlstage_" not in name:
        return False
    if OWN_TABLE.fullmatch(table) or OWN_TABLE.fullmatch(name):
        return True
    if kind in ("comment", "owner", "grant"):  # `type sqlstage_history` and the like
        target = name.split(" ")[-1].split(".")[0]
        return OWN_TABLE.fullmatch(target) is not None
    return False


def snapshot(driver: Driver, owners: bool = True, grants: bool = True) -> Snapshot:
    """The schema of the database `driver` is connected to, read from its catalogs.

    `owners=False` and `grants=False` leave out who owns each object and the privileges, as
    `pg_dump --no-owner --no-privileges` does (SQLite has neither)."""
    from sqlstage.registry import backend

    reader = import_module(backend(driver.dialect).schema_reader)
    result: Snapshot = reader.read(driver, owners=owners, grants=grants)
    return result


def snapshot_document(driver: Driver) -> dict[str, Any]:
    """`snapshot(driver).to_dict()`, from the reader's rows when it gives them (`rows`:
    PostgreSQL), without making a SchemaObject of each."""
    from sqlstage.registry import backend

    reader = import_module(backend(driver.dialect).schema_reader)
    if not hasattr(reader, "rows"):
        return snapshot(driver).to_dict()
    rows = [row for row in reader.rows(driver) if not _own(row[0], row[1], row[3])]
    return document(reader.DIALECT, rows)


def fingerprint(driver: Driver, before: object | None = None) -> object:
    """A cheap value to tell two states of one database apart without a snapshot: equal
    fingerprints mean equal snapshots (unequal ones may still be equal snapshots, so compare
    snapshots then). Not comparable across databases. `before`, the fingerprint of a state
    the current one grew from, lets a reader look only at what changed since."""
    from sqlstage.registry import backend

    reader = import_module(backend(driver.dialect).schema_reader)
    return reader.fingerprint(driver, before)


def diff(expected: Snapshot, live: Snapshot) -> list[Difference]:
    """What `live` has that `expected` lacks (`extra`), lacks (`missing`), defines otherwise
    (`changed`), and tables whose columns come in another order (`order`). What hangs off an
    object that is itself extra or missing (a table's columns, constraints, ...) is not
    listed again. Empty exactly when the two snapshots are equal."""
    old = {o.key: o for o in expected.objects}
    new = {o.key: o for o in live.objects}
    gone = {name for kind, name in old.keys() ^ new.keys() if kind in ("table", "view")}
    found: list[Difference] = []
    for item in live.objects:
        before = old.get(item.key)
        if before is None and item.table not in gone:
            found.append(Difference("extra", item.kind, item.name, None, item.definition))
        elif before is not None and before.definition != item.definition:
            found.append(
                Difference("changed", item.kind, item.name, before.definition, item.definition)
            )
    for item in expected.objects:
        if item.key not in new and item.table not in gone:
            found.append(Difference("missing", item.kind, item.name, item.definition, None))
    found += _column_order(expected, live, gone)
    if not found and expected != live:  # same keys and definitions, other details
        found += _leftovers(expected, live)
    return found


def _column_order(expected: Snapshot, live: Snapshot, gone: set[str]) -> list[Difference]:
    """Tables whose columns, those both sides have, come in another order."""
    before, after = _columns_by_table(expected), _columns_by_table(live)
    found = []
    for table in sorted(before.keys() & after.keys() - gone):
        common = set(before[table]) & set(after[table])
        old = [c for c in before[table] if c in common]
        new = [c for c in after[table] if c in common]
        if old != new:
            found.append(Difference("order", "column", table, ", ".join(old), ", ".join(new)))
    return found


def _columns_by_table(snap: Snapshot) -> dict[str, list[str]]:
    tables: dict[str, list[SchemaObject]] = {}
    for item in snap.objects:
        if item.kind == "column":
            tables.setdefault(item.table, []).append(item)
    return {
        table: [c.name.removeprefix(f"{table}.") for c in sorted(cols, key=lambda c: c.position)]
        for table, cols in tables.items()
    }


def _leftovers(expected: Snapshot, live: Snapshot) -> list[Difference]:
    """Objects equal by name and definition that still differ (two of one name)."""
    old, new = set(expected.objects), set(live.objects)
    return [Difference("extra", o.kind, o.name, None, o.definition) for o in sorted(new - old)] + [
        Difference("missing", o.kind, o.name, o.definition, None) for o in sorted(old - new)
    ]


def render_text(snap: Snapshot) -> str:
    """The snapshot as stable text, tables with their columns (in their order), constraints,
    indexes and triggers beneath them; fit for a committed `schema.sql`-like file and for
    review. Two snapshots give the same text exactly when they are equal."""
    children: dict[str, list[SchemaObject]] = {}
    for item in snap.objects:
        if item.table:
            children.setdefault(item.table, []).append(item)
    order = {kind: index for index, kind in enumerate(KINDS)}
    for items in children.values():
        items.sort(key=lambda o: (order.get(o.kind, len(KINDS)), o.kind, o.position, o.name))
    parents = {o.name for o in snap.objects if not o.table}
    out: list[str] = []
    for item in snap.objects:
        if item.table and item.table in parents:
            continue
        prefix = f"{item.table}: " if item.table else ""  # a child whose parent is not listed
        out.append(_block(f"{prefix}{item.kind} {item.name}", item.definition, ""))
        if item.table or item.kind not in ("table", "view"):
            continue
        for child in children.get(item.name, []):
            short_name = child.name.removeprefix(f"{item.name}.")
            out.append(_block(f"  {child.kind} {short_name}", child.definition, "  "))
    return "\n".join(out) + "\n" if out else ""


def _block(head: str, definition: str, indent: str) -> str:
    if not definition:
        return head
    lines = definition.strip().splitlines() or [definition]
    if len(lines) == 1:
        return f"{head}: {lines[0]}"
    return "\n".join([f"{head}:", *(f"{indent}    {line.rstrip()}" for line in lines)])


def _is_short(definition: str) -> bool:
    return "\n" not in definition.strip() and len(definition) <= SHORT


def _one_line(definition: str | None) -> str:
    """A definition on one line, whole: whitespace runs become one space."""
    return " ".join((definition or "").split())


def _changed_lines(old: str, new: str) -> list[str]:
    """The lines (or, for one long line, the words) that differ, with a line of context,
    `-` expected and `+` live: the changed part, not two copies of the whole text."""
    a, b = old.strip().splitlines(), new.strip().splitlines()
    if len(a) <= 1 and len(b) <= 1:
        a, b = _words(old), _words(new)
    lines = []
    for line in difflib.unified_diff(a, b, lineterm="", n=1):
        if line.startswith(("---", "+++")):
            continue
        lines.append(f"    {'...' if line.startswith('@@') else line.rstrip()}")
    return lines


def _words(text: str) -> list[str]:
    """One long definition cut into chunks at commas and keywords, so difflib can point at
    the part that changed."""
    parts = re.split(r"(?<=,)\s+|\s+(?=(?:FROM|WHERE|AND|OR|ON|JOIN|USING|WITH|CHECK)\b)", text)
    return [" ".join(p.split()) for p in parts if p.strip()]
