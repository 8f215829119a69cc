"""PostgreSQL's schema from pg_catalog: one query per kind of object, whatever the size.

Objects of every schema but the system ones are read; names outside `public` carry their
schema (`billing.invoices`). Objects that belong to an extension are left to the extension.
"""

from __future__ import annotations

from sqlstage.drivers.base import Driver
from sqlstage.schema import SchemaObject, Snapshot, make_snapshot

USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema') AND {n}.nspname NOT LIKE 'pg\\_%'"
)


def _qualified(namespace: str, name: str) -> str:
    return f"CASE WHEN {namespace}.nspname = 'public' THEN '' ELSE {namespace}.nspname || '.' END || {name}"  # noqa: E501


def _not_extension(catalog: str, oid: str) -> str:
    return (
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = "
        f"'{catalog}'::regclass AND d.objid = {oid} AND d.deptype = 'e')"
    )


TABLES = f"""
SELECT {_qualified("n", "c.relname")}, c.relkind, c.relpersistence, a.attname,
       format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
       a.attidentity, a.attgenerated
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'f') AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_class", "c.oid")}
"""

CONSTRAINTS = f"""
SELECT {_qualified("n", "c.relname")}, co.conname, pg_get_constraintdef(co.oid)
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE co.contype <> 'n' AND {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_class", "c.oid")}
"""

# indexes that back a primary key, unique or exclusion constraint are that constraint
INDEXES = f"""
SELECT {_qualified("n", "ic.relname")}, {_qualified("n", "c.relname")},
       pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_class", "c.oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint co
                  WHERE co.conindid = i.indexrelid AND co.contype IN ('p', 'u', 'x'))
"""

VIEWS = f"""
SELECT {_qualified("n", "c.relname")}, c.relkind, pg_get_viewdef(c.oid, true)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_class", "c.oid")}
"""

# a serial or identity column's sequence belongs to its table
SEQUENCES = f"""
SELECT {_qualified("n", "c.relname")},
       format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
       || ' min ' || s.seqmin || ' max ' || s.seqmax
       || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END,
       COALESCE((SELECT {_qualified("tn", "t.relname")}
                 FROM pg_depend d
                 JOIN pg_class t ON t.oid = d.refobjid
                 JOIN pg_namespace tn ON tn.oid = t.relnamespace
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                 LIMIT 1), '')
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_class", "c.oid")}
"""

FUNCTIONS = f"""
SELECT {_qualified("n", "p.proname")} || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       p.prokind,
       CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE '' END
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_proc", "p.oid")}
"""

TRIGGERS = f"""
SELECT {_qualified("n", "c.relname")}, t.tgname, pg_get_triggerdef(t.oid, true)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal AND {USER_SCHEMA.format(n="n")}
"""

TYPES = f"""
SELECT {_qualified("n", "t.typname")}, t.typtype,
       CASE WHEN t.typtype = 'e' THEN
         (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
          FROM pg_enum e WHERE e.enumtypid = t.oid)
       ELSE format_type(t.typbasetype, t.typtypmod)
            || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
            || COALESCE(' DEFAULT ' || t.typdefault, '')
            || COALESCE((SELECT ' ' || string_agg(pg_get_constraintdef(co.oid), ' '
                                                  ORDER BY co.conname)
                         FROM pg_constraint co WHERE co.contypid = t.oid), '')
       END
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd') AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_type", "t.oid")}
"""

SCHEMAS = f"""
SELECT n.nspname FROM pg_namespace n
WHERE {USER_SCHEMA.format(n="n")} AND n.nspname <> 'public'
  AND {_not_extension("pg_namespace", "n.oid")}
"""

EXTENSIONS = "SELECT extname, extversion FROM pg_extension"

TABLE_KINDS = {"r": "", "p": "partitioned", "f": "foreign"}
ROUTINE_KINDS = {"f": "function", "p": "procedure", "a": "function", "w": "function"}


def read(driver: Driver) -> Snapshot:
    objects: list[SchemaObject] = []
    objects += [SchemaObject("schema", name, "") for (name,) in driver.query(SCHEMAS)]
    objects += [SchemaObject("extension", n, f"version {v}") for n, v in driver.query(EXTENSIONS)]
    for name, typtype, definition in driver.query(TYPES):
        objects.append(SchemaObject("enum" if typtype == "e" else "domain", name, definition))
    for name, definition, table in driver.query(SEQUENCES):
        objects.append(SchemaObject("sequence", name, definition, table))
    objects += _tables(driver)
    for table, name, definition in driver.query(CONSTRAINTS):
        objects.append(SchemaObject("constraint", f"{table}.{name}", definition, table))
    for name, table, definition in driver.query(INDEXES):
        objects.append(SchemaObject("index", name, definition, table))
    for table, name, definition in driver.query(TRIGGERS):
        objects.append(SchemaObject("trigger", f"{table}.{name}", definition, table))
    for name, relkind, definition in driver.query(VIEWS):
        kind = "view" if relkind == "v" else "materialized view"
        objects.append(SchemaObject(kind, name, definition.strip()))
    for name, prokind, definition in driver.query(FUNCTIONS):
        kind = ROUTINE_KINDS.get(prokind, "function")
        objects.append(SchemaObject(kind, name, definition.strip() or "aggregate"))
    return make_snapshot("postgresql", objects)


def _tables(driver: Driver) -> list[SchemaObject]:
    objects: dict[tuple[str, str], SchemaObject] = {}
    for row in driver.query(TABLES):
        table, relkind, persistence, column, type_, not_null, default, identity, generated = row
        words = [TABLE_KINDS.get(relkind, relkind), "unlogged" if persistence == "u" else ""]
        objects[("table", table)] = SchemaObject("table", table, " ".join(w for w in words if w))
        if column is None:  # a table with no columns
            continue
        definition = type_ + (" NOT NULL" if not_null else "")
        if generated == "s":
            definition += f" GENERATED ALWAYS AS ({default}) STORED"
        elif default is not None:
            definition += f" DEFAULT {default}"
        if identity:
            definition += " GENERATED " + ("ALWAYS" if identity == "a" else "BY DEFAULT")
            definition += " AS IDENTITY"
        name = f"{table}.{column}"
        objects[("column", name)] = SchemaObject("column", name, definition, table)
    return list(objects.values())
