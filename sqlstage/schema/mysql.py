"""MySQL's and MariaDB's schema from information_schema, for the connected database only.

Objects are named as in the PostgreSQL reader (`users`, `users.email`, `users.users_email_key`,
`posts.posts_touch`); a table's definition holds its engine, charset, collation and its
columns in order, so a column added in the middle (`AFTER`) shows as a changed table. Views,
triggers, routines and events compare by the server's own normalised text, with the
database's name taken out so two databases built by the same migrations compare equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlstage.drivers.base import Driver
from sqlstage.schema import SchemaObject, Snapshot, make_snapshot

TABLES = """
SELECT t.TABLE_NAME, t.ENGINE, c.CHARACTER_SET_NAME, t.TABLE_COLLATION, t.TABLE_COMMENT
FROM information_schema.TABLES t
LEFT JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.TABLE_COLLATION
WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
"""
COLUMNS = """
SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.CHARACTER_SET_NAME, c.COLLATION_NAME,
       c.IS_NULLABLE, c.COLUMN_DEFAULT, c.EXTRA, c.GENERATION_EXPRESSION, c.COLUMN_COMMENT
FROM information_schema.COLUMNS c
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""
KEYS = """
SELECT tc.TABLE_NAME, tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE, k.COLUMN_NAME,
       k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE
FROM information_schema.TABLE_CONSTRAINTS tc
JOIN information_schema.KEY_COLUMN_USAGE k
  ON k.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND k.TABLE_NAME = tc.TABLE_NAME
 AND k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND r.TABLE_NAME = tc.TABLE_NAME
 AND r.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
WHERE tc.CONSTRAINT_SCHEMA = DATABASE()
  AND tc.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY')
ORDER BY tc.TABLE_NAME, tc.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""
# MySQL 8 has no CHECK_CONSTRAINTS.TABLE_NAME; TABLE_CONSTRAINTS has it on both servers
CHECKS = """
SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE
FROM information_schema.CHECK_CONSTRAINTS cc
JOIN information_schema.TABLE_CONSTRAINTS tc
  ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME
 AND tc.CONSTRAINT_TYPE = 'CHECK'
WHERE cc.CONSTRAINT_SCHEMA = DATABASE()
"""
# indexes that are a PRIMARY KEY or UNIQUE constraint are listed as that constraint
INDEXES = """
SELECT s.TABLE_NAME, s.INDEX_NAME, s.NON_UNIQUE, s.COLUMN_NAME, s.SUB_PART, s.COLLATION,
       s.INDEX_TYPE
FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA = DATABASE()
  AND NOT EXISTS (SELECT 1 FROM information_schema.TABLE_CONSTRAINTS tc
                  WHERE tc.CONSTRAINT_SCHEMA = s.TABLE_SCHEMA AND tc.TABLE_NAME = s.TABLE_NAME
                    AND tc.CONSTRAINT_NAME = s.INDEX_NAME
                    AND tc.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE'))
ORDER BY s.TABLE_NAME, s.INDEX_NAME, s.SEQ_IN_INDEX
"""
VIEWS = """
SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()
"""
TRIGGERS = """
SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT
FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
"""
ROUTINES = """
-- a function's parameters are all IN: MariaDB says so, MySQL leaves the mode NULL
SELECT r.ROUTINE_TYPE, r.ROUTINE_NAME, r.DTD_IDENTIFIER, r.IS_DETERMINISTIC,
       r.SQL_DATA_ACCESS, r.SECURITY_TYPE, r.ROUTINE_DEFINITION,
       (SELECT GROUP_CONCAT(CONCAT_WS(' ', IF(r.ROUTINE_TYPE = 'FUNCTION', NULL,
                                              p.PARAMETER_MODE),
                                      p.PARAMETER_NAME, p.DTD_IDENTIFIER)
                            ORDER BY p.ORDINAL_POSITION SEPARATOR ', ')
        FROM information_schema.PARAMETERS p
        WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.SPECIFIC_NAME
          AND p.ORDINAL_POSITION > 0)
FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = DATABASE()
"""
EVENTS = """
SELECT EVENT_NAME, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, STARTS, ENDS,
       STATUS, ON_COMPLETION, EVENT_DEFINITION
FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()
"""


def read(driver: Driver, owners: bool = True, grants: bool = True) -> Snapshot:
    """Every object of the connected database (sqlstage's own tables left out). Owners and
    grants are not read yet on MySQL: both switches change nothing."""
    database = str(driver.query("SELECT DATABASE()")[0][0])
    columns = _columns(driver.query(COLUMNS))
    objects = _tables(driver.query(TABLES), columns)
    objects += [column for column, _ in columns]
    objects += _keys(driver.query(KEYS))
    objects += [
        SchemaObject("constraint", f"{table}.{name}", f"CHECK ({clause})", table)
        for table, name, clause in driver.query(CHECKS)
    ]
    objects += _indexes(driver.query(INDEXES))
    objects += _server_text(driver, database)
    return make_snapshot("mysql", objects)


def _tables(
    rows: Iterable[tuple[Any, ...]], columns: list[tuple[SchemaObject, str]]
) -> list[SchemaObject]:
    order: dict[str, list[str]] = {}
    for column, name in columns:
        order.setdefault(column.table, []).append(name)
    objects = []
    for name, engine, charset, collation, comment in rows:
        parts = [f"ENGINE={engine}", f"DEFAULT CHARSET={charset}", f"COLLATE={collation}"]
        if comment:
            parts.append(f"COMMENT {_quote(comment)}")
        parts.append(f"columns ({', '.join(order.get(name, []))})")
        objects.append(SchemaObject("table", name, " ".join(parts)))
    return objects


def _columns(rows: Iterable[tuple[Any, ...]]) -> list[tuple[SchemaObject, str]]:
    """Each column with its type, charset and collation, nullability, default, extras."""
    objects = []
    for row in rows:
        table, name, type_, charset, collation, nullable, default, extra, generated, comment = row
        parts = [type_]
        if charset:
            parts.append(f"CHARACTER SET {charset} COLLATE {collation}")
        if nullable == "NO":
            parts.append("NOT NULL")
        if generated:
            kind = "STORED" if "STORED" in (extra or "").upper() else "VIRTUAL"
            parts.append(f"GENERATED ALWAYS AS ({generated}) {kind}")
        elif default is not None and not (nullable == "YES" and default == "NULL"):
            parts.append(f"DEFAULT {default}")
        leftover = (extra or "").replace("DEFAULT_GENERATED", "").strip()
        if leftover and not generated:
            parts.append(leftover)
        if comment:
            parts.append(f"COMMENT {_quote(comment)}")
        objects.append((SchemaObject("column", f"{table}.{name}", " ".join(parts), table), name))
    return objects


def _keys(rows: Iterable[tuple[Any, ...]]) -> list[SchemaObject]:
    grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault((row[0], row[1]), []).append(row)
    objects = []
    for (table, name), parts in grouped.items():
        kind = parts[0][2]
        columns = ", ".join(p[3] for p in parts)
        definition = f"{kind} ({columns})"
        if kind == "FOREIGN KEY":
            target = ", ".join(p[5] for p in parts)
            definition += (
                f" REFERENCES {parts[0][4]} ({target})"
                f" ON UPDATE {parts[0][6]} ON DELETE {parts[0][7]}"
            )
        objects.append(SchemaObject("constraint", f"{table}.{name}", definition, table))
    return objects


def _indexes(rows: Iterable[tuple[Any, ...]]) -> list[SchemaObject]:
    grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault((row[0], row[1]), []).append(row)
    objects = []
    for (table, name), parts in grouped.items():
        non_unique, index_type = parts[0][2], parts[0][6]
        columns = ", ".join(
            f"{column}{f'({sub})' if sub else ''}{' DESC' if order == 'D' else ''}"
            for _, _, _, column, sub, order, _ in parts
        )
        unique = "" if int(non_unique) else "UNIQUE "
        definition = f"{unique}INDEX ({columns}) USING {index_type}"
        objects.append(SchemaObject("index", f"{table}.{name}", definition, table))
    return objects


def _server_text(driver: Driver, database: str) -> list[SchemaObject]:
    """Views, triggers, routines and events, as the server normalised them."""

    def local(text: str | None) -> str:
        return (text or "").replace(f"`{database}`.", "").strip()

    objects = [
        SchemaObject("view", name, f"{local(body)} CHECK OPTION {check} SQL SECURITY {security}")
        for name, body, check, security in driver.query(VIEWS)
    ]
    objects += [
        SchemaObject(
            "trigger", f"{table}.{name}", f"{timing} {event} FOR EACH ROW {local(body)}", table
        )
        for table, name, timing, event, body in driver.query(TRIGGERS)
    ]
    for kind, name, returns, deterministic, access, security, body, params in driver.query(
        ROUTINES
    ):
        head = f"({params or ''})" + (f" RETURNS {returns}" if kind == "FUNCTION" else "")
        flags = f"{'' if deterministic == 'YES' else 'NOT '}DETERMINISTIC {access}"
        definition = f"{head} {flags} SQL SECURITY {security} {local(body)}"
        objects.append(SchemaObject(kind.lower(), name, definition))
    for row in driver.query(EVENTS):
        objects.append(SchemaObject("event", row[0], _event(row, local)))
    return objects


def _event(row: tuple[Any, ...], local: Any) -> str:
    _, kind, at, every, unit, starts, ends, status, completion, body = row
    if kind == "ONE TIME":
        schedule = f"AT '{at}'"
    else:
        schedule = f"EVERY {every} {unit} STARTS '{starts}'" + (f" ENDS '{ends}'" if ends else "")
    return f"{schedule} {status} ON COMPLETION {completion} DO {local(body)}"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def fingerprint(driver: Driver, before: object | None = None) -> object:
    """A value equal for two states of one database only when their snapshots are equal:
    the snapshot itself (MySQL has no cheaper catalog digest that sqlstage trusts yet)."""
    return read(driver)
