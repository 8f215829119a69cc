"""SQLite's schema from sqlite_master and the table-valued pragmas, one query per kind.

Columns, primary keys, foreign keys and unique constraints come from the pragmas, so a table
rebuilt or altered back to the same shape compares equal even when its stored CREATE text
differs. Indexes, views and triggers compare by their CREATE text, whitespace collapsed.
CHECK constraints live only in the CREATE TABLE text and are not compared.
"""

from __future__ import annotations

from sqlstage.drivers.base import Driver
from sqlstage.schema import SchemaObject, Snapshot, make_snapshot

USER_TABLES = "m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"

TABLES = f"SELECT m.name, m.sql FROM sqlite_master m WHERE {USER_TABLES}"
COLUMNS = f"""
SELECT m.name, p.name, p.type, p."notnull", p.dflt_value, p.pk, p.hidden
FROM sqlite_master m JOIN pragma_table_xinfo(m.name) p
WHERE {USER_TABLES}
ORDER BY m.name, p.cid
"""
FOREIGN_KEYS = f"""
SELECT m.name, f.id, f."table", f."from", f."to", f.on_update, f.on_delete
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


def read(driver: Driver) -> Snapshot:
    objects: list[SchemaObject] = []
    for name, sql in driver.query(TABLES):
        virtual = (sql or "").lstrip().upper().startswith("CREATE VIRTUAL")
        objects.append(SchemaObject("table", name, _collapse(sql) if virtual else ""))
    objects += _columns(driver)
    objects += _foreign_keys(driver)
    objects += _uniques(driver)
    for kind, name, table, sql in driver.query(OTHERS):
        objects.append(SchemaObject(kind, name, _collapse(sql), table if kind != "view" else ""))
    return make_snapshot("sqlite", objects)


def _columns(driver: Driver) -> list[SchemaObject]:
    objects = []
    keys: dict[str, list[tuple[int, str]]] = {}
    for table, column, type_, not_null, default, pk, hidden in driver.query(COLUMNS):
        definition = " ".join(
            part
            for part in (
                type_ or "",
                "NOT NULL" if not_null else "",
                f"DEFAULT {default}" if default is not None else "",
                "GENERATED" if hidden in (2, 3) else "",
            )
            if part
        )
        objects.append(SchemaObject("column", f"{table}.{column}", definition, table))
        if pk:
            keys.setdefault(table, []).append((pk, column))
    for table, columns in keys.items():
        names = ", ".join(column for _, column in sorted(columns))
        objects.append(SchemaObject("constraint", f"{table}.PRIMARY KEY", f"({names})", table))
    return objects


def _foreign_keys(driver: Driver) -> list[SchemaObject]:
    grouped: dict[tuple[str, int], list[tuple[str, str, str, str, str]]] = {}
    for table, key, target, source, to, on_update, on_delete in driver.query(FOREIGN_KEYS):
        grouped.setdefault((table, key), []).append((target, source, to, on_update, on_delete))
    objects = []
    for (table, _), parts in grouped.items():
        target, _, _, on_update, on_delete = parts[0]
        sources = ", ".join(p[1] for p in parts)
        targets = ", ".join(p[2] or "" for p in parts)
        definition = f"REFERENCES {target} ({targets}) ON UPDATE {on_update} ON DELETE {on_delete}"
        name = f"{table}.FOREIGN KEY ({sources})"
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


def _collapse(sql: str) -> str:
    return " ".join(sql.split())
