"""SQLite's schema from sqlite_master and the table-valued pragmas.

Two databases give equal snapshots exactly when their `.schema` is equal once normalised
(whitespace, and the space around brackets and commas, outside quotes) and the pragmas that
are stored in the file and carry meaning (`user_version`, `application_id`, `auto_vacuum`,
`journal_mode` WAL) agree. So a table's definition is its normalised CREATE TABLE text, which
carries what no pragma tells: AUTOINCREMENT, DEFERRABLE, COLLATE, CHECK constraints,
generated column expressions. Columns (with their order), primary keys, foreign keys and
unique constraints are read from the pragmas as well, so a difference names the column or
the key and not only the table.
"""

from __future__ import annotations

import re

from sqlstage.drivers.base import Driver
from sqlstage.schema import SchemaObject, Snapshot, make_snapshot

USER_TABLES = "m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"

TABLES = f"SELECT m.name, m.sql FROM sqlite_master m WHERE {USER_TABLES}"
COLUMNS = f"""
SELECT m.name, p.name, p.type, p."notnull", p.dflt_value, p.pk, p.hidden, p.cid
FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p
WHERE {USER_TABLES}
ORDER BY m.name, p.cid
"""
FOREIGN_KEYS = f"""
SELECT m.name, f.id, f."table", f."from", f."to", f.on_update, f.on_delete, f."match"
FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f
WHERE {USER_TABLES}
ORDER BY m.name, f.id, f.seq
"""
UNIQUES = f"""
SELECT m.name, il.name, ii.name
FROM sqlite_master m JOIN pragma_index_list(m.name) il JOIN pragma_index_info(il.name) ii
WHERE {USER_TABLES} AND il.origin = 'u'
ORDER BY m.name, il.name, ii.seqno
"""
OTHERS = """
SELECT type, name, tbl_name, sql FROM sqlite_master
WHERE type IN ('index', 'view', 'trigger') AND sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
"""  # noqa: E501
#: pragmas stored in the database file that change what it is or how it behaves
PRAGMAS = ("user_version", "application_id", "auto_vacuum")
PRAGMA_DEFAULTS = {"user_version": 0, "application_id": 0, "auto_vacuum": 0}
#: what `fingerprint` reads: equal rows mean equal snapshots
FINGERPRINT = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"


def read(driver: Driver, owners: bool = True, grants: bool = True) -> Snapshot:
    """SQLite has no owners or grants: both switches change nothing."""
    objects: list[SchemaObject] = []
    for name, sql in driver.query(TABLES):
        objects.append(SchemaObject("table", name, normalise(sql or "")))
    objects += _columns(driver)
    objects += _foreign_keys(driver)
    objects += _uniques(driver)
    for kind, name, table, sql in driver.query(OTHERS):
        objects.append(SchemaObject(kind, name, normalise(sql), table if kind != "view" else ""))
    objects += _pragmas(driver)
    return make_snapshot("sqlite", objects)


def fingerprint(driver: Driver, before: object | None = None) -> tuple[object, ...]:
    """A cheap value that is equal for two states of one database only when their
    snapshots are equal (the snapshot is derived from these rows and pragmas)."""
    return (tuple(driver.query(FINGERPRINT)), *_pragma_values(driver))


def _pragma_values(driver: Driver) -> list[object]:
    values: list[object] = [driver.query(f"PRAGMA {name}")[0][0] for name in PRAGMAS]
    values.append(str(driver.query("PRAGMA journal_mode")[0][0]).lower() == "wal")
    return values


def _pragmas(driver: Driver) -> list[SchemaObject]:
    *values, wal = _pragma_values(driver)
    objects = [
        SchemaObject("pragma", name, str(value))
        for name, value in zip(PRAGMAS, values, strict=True)
        if value != PRAGMA_DEFAULTS[name]
    ]
    if wal:
        objects.append(SchemaObject("pragma", "journal_mode", "wal"))
    return objects


def _columns(driver: Driver) -> list[SchemaObject]:
    objects = []
    keys: dict[str, list[tuple[int, str]]] = {}
    positions: dict[str, int] = {}
    for table, column, type_, not_null, default, pk, hidden, _ in driver.query(COLUMNS):
        definition = " ".join(
            part
            for part in (
                type_ or "",
                "NOT NULL" if not_null else "",
                f"DEFAULT {default}" if default is not None else "",
                {2: "GENERATED VIRTUAL", 3: "GENERATED STORED"}.get(hidden, ""),
            )
            if part
        )
        positions[table] = positions.get(table, 0) + 1
        objects.append(
            SchemaObject("column", f"{table}.{column}", definition, table, positions[table])
        )
        if pk:
            keys.setdefault(table, []).append((pk, column))
    for table, columns in keys.items():
        names = ", ".join(column for _, column in sorted(columns))
        objects.append(SchemaObject("constraint", f"{table}.PRIMARY KEY", f"({names})", table))
    return objects


def _foreign_keys(driver: Driver) -> list[SchemaObject]:
    grouped: dict[tuple[str, int], list[tuple[str, ...]]] = {}
    for table, key, *parts in driver.query(FOREIGN_KEYS):
        grouped.setdefault((table, key), []).append(tuple(parts))
    objects = []
    for (table, _), parts in grouped.items():
        target, _, _, on_update, on_delete, match = parts[0]
        sources = ", ".join(p[1] for p in parts)
        targets = ", ".join(p[2] or "" for p in parts)
        # two keys may start from one column: the name carries the target too
        name = f"{table}.FOREIGN KEY ({sources}) REFERENCES {target} ({targets})"
        definition = f"ON UPDATE {on_update} ON DELETE {on_delete}" + (
            f" MATCH {match}" if match and match != "NONE" else ""
        )
        objects.append(SchemaObject("constraint", name, definition, table))
    return objects


def _uniques(driver: Driver) -> list[SchemaObject]:
    # auto-index names (sqlite_autoindex_t_2) shift when a table is rebuilt: name by columns
    grouped: dict[tuple[str, str], list[str]] = {}
    for table, index, column in driver.query(UNIQUES):
        grouped.setdefault((table, index), []).append(column)
    objects = []
    for (table, _), columns in grouped.items():
        name = f"{table}.UNIQUE ({', '.join(columns)})"
        objects.append(SchemaObject("constraint", name, "", table))
    return objects


_TOKENS = re.compile(r"""'[^']*(?:''[^']*)*'|"[^"]*(?:""[^"]*)*"|`[^`]*`|\[[^\]]*\]|[^'"`\[]+""")
_SPACE_AROUND = re.compile(r"\s*([(),])\s*")


def normalise(sql: str) -> str:
    """CREATE text with whitespace collapsed and no space around `(`, `)` and `,`, outside
    quoted strings and identifiers.

    >>> normalise('CREATE TABLE t (\\n  a INTEGER ,b  TEXT DEFAULT  \\'x  y\\'\\n)')
    "CREATE TABLE t(a INTEGER,b TEXT DEFAULT 'x  y')"
    """
    out = []
    for token in _TOKENS.findall(sql.strip()):
        if token[0] in "'\"`[":
            out.append(token)
        else:
            out.append(_SPACE_AROUND.sub(r"\1", re.sub(r"\s+", " ", token)))
    return "".join(out).strip().rstrip(";").rstrip()
