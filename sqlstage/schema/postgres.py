"""PostgreSQL's schema from pg_catalog: one query for every kind of object, whatever the size.

Aim: two databases give equal snapshots exactly when `pg_dump --schema-only` of their user
schemas is equal (ignoring order). So every object kind and attribute pg_dump emits is read:
schemas, extensions, types (enum, domain, composite, range, base), collations, sequences
(parameters and OWNED BY), tables (partitioning, inheritance, options, row-level security,
replica identity), columns (position, collation, storage, statistics), constraints, indexes,
triggers (enabled state), rules, policies, views and materialized views (options), functions,
procedures, aggregates, operators, operator classes and families, casts, event triggers,
publications, statistics objects, text search, foreign data wrappers, servers and user
mappings, comments, owners and grants (default privileges too).

Objects of every schema but the system ones are read; names outside `public` carry their
schema (`billing.invoices`). Objects that belong to an extension are left to the extension.

Every column of the query is `text`: a `name` column in the first branch of a UNION would make
the whole column `name`, cutting every name to 63 bytes (two constraints sharing 63 bytes then
collide). The query returns finished `(kind, name, definition, table, position)` rows,
normalised on the server, so a snapshot costs one round trip.
"""

from __future__ import annotations

from sqlstage.drivers.base import Driver
from sqlstage.schema import Row, SchemaObject, Snapshot, make_snapshot
from sqlstage.schema.pg_fingerprint import USER_OID, WITHOUT_JIT
from sqlstage.schema.pg_fingerprint import fingerprint as read_fingerprint

USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema') AND {n}.nspname NOT LIKE 'pg\\_%'"
)
#: a column option a server keeps for itself (`pg_attver=...`), which pg_dump does not write
SERVER_OPTION = "x NOT LIKE 'pg\\_%'"
#: Python's str.strip() for the whitespace PostgreSQL's deparsers emit
STRIP = "E' \\t\\n\\r\\f' || chr(11)"


def _qualified(namespace: str, name: str) -> str:
    return (
        f"(CASE WHEN {namespace}.nspname = 'public' THEN '' ELSE {namespace}.nspname::text "
        f"|| '.' END || {name}::text)"
    )


def _not_extension(catalog: str, oid: str, deptypes: str = "'e'") -> str:
    """Not a member of an extension (nor, with "'e', 'i'", made by the system as part of
    another object: a range type's constructor functions)."""
    return (
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = "
        f"'{catalog}'::regclass AND d.objid = {oid} AND d.deptype IN ({deptypes}))"
    )


def _sorted(array: str, separator: str = ", ", where: str = "true") -> str:
    """A text array as one string, sorted (reloptions keep the order they were set in)."""
    return (
        f"(SELECT string_agg(x, '{separator}' ORDER BY x) FROM unnest({array}::text[]) x "
        f"WHERE {where})"
    )


def _roles(array: str) -> str:
    return (
        "(SELECT string_agg(r, ', ' ORDER BY r) FROM (SELECT CASE WHEN o = 0 THEN 'PUBLIC' "
        f"ELSE pg_get_userbyid(o)::text END AS r FROM unnest({array}) o) x)"
    )


def _acl_items(acl: str) -> str:
    return (
        "SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee)::text END "
        "|| ' ' || e.privilege_type || CASE WHEN e.is_grantable THEN ' WITH GRANT OPTION' "
        f"ELSE '' END || ' (by ' || pg_get_userbyid(e.grantor) || ')' FROM aclexplode({acl}) e"
    )


def _acl_text(acl: str) -> str:
    return f"(SELECT string_agg(x, '; ' ORDER BY x) FROM ({_acl_items(acl)}) y(x))"


def _acl(acl: str, owner: str, kind: str, initial: str | None = None) -> str:
    """The privileges granted beyond the defaults and `revoked` from them, sorted; NULL when
    they are the defaults, which is when pg_dump writes no GRANT or REVOKE. `initial` is
    what initdb set, where that is not the default (schema public)."""
    default = f"acldefault({kind}, {owner})"
    if initial:
        default = f"COALESCE(({initial}), {default})"
    # a NULL acl (most objects) is the default: no privileges beyond it, nothing to explode
    return (
        f"CASE WHEN {acl} IS NOT NULL THEN (SELECT string_agg(x, '; ' ORDER BY x) FROM ("
        f"({_acl_items(acl)} EXCEPT {_acl_items(default)}) UNION ALL "
        f"(SELECT 'revoked ' || x FROM ({_acl_items(default)} EXCEPT {_acl_items(acl)}) r(x))"
        ") y(x)) END"
    )


def _options(array: str, word: str = "options") -> str:
    return f"'{word} (' || {_sorted(array)} || ')'"


SCHEMAS = f"""
SELECT 'schema', n.nspname::text, '', '', 0
FROM pg_namespace n
WHERE n.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")} AND n.nspname <> 'public'
  AND {_not_extension("pg_namespace", "n.oid")}
"""

EXTENSIONS = """
SELECT 'extension', e.extname::text, 'version ' || e.extversion || ' schema ' || n.nspname, '', 0
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""

USER_TYPE = f"""
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_type", "t.oid")}
"""

ENUMS = f"""
SELECT 'enum', {_qualified("n", "t.typname")},
       (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
        FROM pg_enum e WHERE e.enumtypid = t.oid), '', 0
{USER_TYPE} AND t.typtype = 'e'
"""

DOMAINS = f"""
SELECT 'domain', {_qualified("n", "t.typname")},
       concat_ws(' ', format_type(t.typbasetype, t.typtypmod),
                 CASE WHEN t.typcollation <> bt.typcollation
                      THEN 'COLLATE ' || t.typcollation::regcollation::text END,
                 CASE WHEN t.typnotnull THEN 'NOT NULL' END,
                 'DEFAULT ' || t.typdefault,
                 (SELECT string_agg('CONSTRAINT ' || quote_ident(co.conname) || ' '
                                    || pg_get_constraintdef(co.oid), ' ' ORDER BY co.conname)
                  FROM pg_constraint co WHERE co.contypid = t.oid)),
       '', 0
{USER_TYPE} AND t.typtype = 'd'
  AND EXISTS (SELECT 1 FROM pg_type bt0 WHERE bt0.oid = t.typbasetype)
"""
# the join to the base type, for its default collation
DOMAINS = DOMAINS.replace(
    "FROM pg_type t\n", "FROM pg_type t\nJOIN pg_type bt ON bt.oid = t.typbasetype\n"
)

COMPOSITES = f"""
SELECT 'composite type', {_qualified("n", "t.typname")},
       (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                          || CASE WHEN a.attcollation <> at.typcollation
                                  THEN ' COLLATE ' || a.attcollation::regcollation::text
                                  ELSE '' END, ', ' ORDER BY a.attnum)
        FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '', 0
{USER_TYPE} AND t.typtype = 'c'
  AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'
"""

RANGES = f"""
SELECT 'range type', {_qualified("n", "t.typname")},
       concat_ws(' ', 'subtype ' || format_type(r.rngsubtype, NULL),
                 'collation ' || NULLIF(r.rngcollation, 0)::regcollation::text,
                 'opclass ' || (SELECT opcname FROM pg_opclass WHERE oid = r.rngsubopc),
                 'canonical ' || NULLIF(r.rngcanonical, 0)::regproc::text,
                 'subdiff ' || NULLIF(r.rngsubdiff, 0)::regproc::text,
                 'multirange ' || format_type(r.rngmultitypid, NULL)), '', 0
{USER_TYPE.replace("WHERE", "JOIN pg_range r ON r.rngtypid = t.oid WHERE")} AND t.typtype = 'r'
"""

BASE_TYPES = f"""
SELECT 'type', {_qualified("n", "t.typname")},
       (to_jsonb(t) - ARRAY['oid', 'typnamespace', 'typowner', 'typrelid', 'typelem',
                            'typarray', 'typbasetype', 'typcollation', 'typacl', 'typname']
        || jsonb_build_object('element', format_type(NULLIF(t.typelem, 0), NULL),
                              'collation', NULLIF(t.typcollation, 0)::regcollation::text))::text,
       '', 0
{USER_TYPE} AND t.typtype IN ('b', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
"""

COLLATIONS = f"""
SELECT 'collation', {_qualified("n", "c.collname")},
       (to_jsonb(c) - ARRAY['oid', 'collnamespace', 'collowner', 'collname', 'collversion'])::text,
       '', 0
FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE c.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_collation", "c.oid")}
"""

# a serial or identity column's sequence belongs to its table
SEQUENCES = f"""
SELECT 'sequence', {_qualified("n", "c.relname")},
       format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
       || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache
       || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
       || CASE WHEN c.relpersistence = 'u' THEN ' unlogged' ELSE '' END
       || COALESCE(' owned by ' || o.owner_column, ''),
       COALESCE(o.owner_table, ''), 0
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT {_qualified("tn", "t.relname")} AS owner_table,
           {_qualified("tn", "t.relname")} || '.' || a.attname AS owner_column
    FROM pg_depend d
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_namespace tn ON tn.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LIMIT 1) o ON true
WHERE s.seqrelid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_class", "c.oid")}
"""

USER_RELATION = f"""
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_class", "c.oid")}
"""

#: what pg_dump writes after a table's or materialized view's columns
RELATION_OPTIONS = f"""
       CASE WHEN c.relpersistence = 'u' THEN 'unlogged' END,
       'with (' || {_sorted("c.reloptions")} || ')',
       'toast with (' || (SELECT {_sorted("tc.reloptions")}
                          FROM pg_class tc WHERE tc.oid = c.reltoastrelid) || ')',
       'using ' || (SELECT amname FROM pg_am WHERE oid = c.relam AND amname <> 'heap'),
       'tablespace ' || (SELECT spcname FROM pg_tablespace WHERE oid = c.reltablespace)
"""

TABLES = f"""
SELECT 'table', {_qualified("n", "c.relname")},
       concat_ws(' ', CASE c.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign' END,
                 'partition by ' || pg_get_partkeydef(c.oid),
                 (SELECT 'partition of ' || {_qualified("pn", "p.relname")} || ' '
                         || pg_get_expr(c.relpartbound, c.oid)
                  FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                  JOIN pg_namespace pn ON pn.oid = p.relnamespace
                  WHERE i.inhrelid = c.oid AND c.relispartition),
                 (SELECT 'inherits ' || string_agg({_qualified("pn", "p.relname")}, ', '
                                                   ORDER BY i.inhseqno)
                  FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                  JOIN pg_namespace pn ON pn.oid = p.relnamespace
                  WHERE i.inhrelid = c.oid AND NOT c.relispartition),
                 'of type ' || NULLIF(c.reloftype, 0)::regtype::text,
                 {RELATION_OPTIONS},
                 CASE WHEN c.relrowsecurity THEN 'row level security' END,
                 CASE WHEN c.relforcerowsecurity THEN 'forced row level security' END,
                 CASE c.relreplident WHEN 'n' THEN 'replica identity nothing'
                                     WHEN 'f' THEN 'replica identity full' END,
                 (SELECT 'server ' || s.srvname || COALESCE(' ' || {_options("ft.ftoptions")}, '')
                  FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
                  WHERE ft.ftrelid = c.oid)),
       '', 0
{USER_RELATION} AND c.relkind IN ('r', 'p', 'f')
"""

# a view's columns come with its definition; only what pg_dump sets apart (a default) is read
COLUMNS = f"""
SELECT 'column', {_qualified("n", "c.relname")} || '.' || a.attname,
       concat_ws(' ', format_type(a.atttypid, a.atttypmod),
                 CASE WHEN a.attcollation <> t.typcollation
                      THEN 'COLLATE ' || a.attcollation::regcollation::text END,
                 CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                 CASE WHEN a.attgenerated = 's'
                      THEN 'GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid)
                           || ') STORED'
                      ELSE 'DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid) END,
                 CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'
                                    WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END,
                 CASE WHEN a.attstorage <> t.typstorage THEN 'storage ' || a.attstorage::text END,
                 CASE WHEN a.attcompression <> ''::"char"
                      THEN 'compression ' || a.attcompression::text END,
                 CASE WHEN a.attstattarget >= 0 THEN 'statistics ' || a.attstattarget END,
                 'with (' || {_sorted("a.attoptions", where=SERVER_OPTION)} || ')',
                 {_options("a.attfdwoptions")},
                 CASE WHEN NOT a.attislocal AND NOT c.relispartition THEN 'inherited' END),
       {_qualified("n", "c.relname")},
       rank() OVER (PARTITION BY c.oid ORDER BY a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE c.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_class", "c.oid")}
  AND (c.relkind IN ('r', 'p', 'f') OR (c.relkind = 'v' AND a.atthasdef))
"""

#: what pg_dump writes about an index beyond its CREATE INDEX
INDEX_EXTRAS = f"""
concat_ws(' ', CASE WHEN i.indisclustered THEN 'clustered' END,
          CASE WHEN NOT i.indisvalid
               THEN 'INVALID (a failed CREATE INDEX CONCURRENTLY: drop it, build it again)' END,
          CASE WHEN i.indisreplident THEN 'replica identity' END,
          'tablespace ' || (SELECT spcname FROM pg_tablespace WHERE oid = ic.reltablespace),
          (SELECT 'statistics ' || string_agg(ia.attnum || '=' || ia.attstattarget, ', '
                                              ORDER BY ia.attnum)
           FROM pg_attribute ia WHERE ia.attrelid = ic.oid AND ia.attstattarget >= 0),
          (SELECT 'attached to ' || {_qualified("pn", "p.relname")}
           FROM pg_inherits ih JOIN pg_class p ON p.oid = ih.inhparent
           JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE ih.inhrelid = ic.oid))
"""

CONSTRAINTS = f"""
SELECT 'constraint', {_qualified("n", "c.relname")} || '.' || co.conname,
       concat_ws(' ', pg_get_constraintdef(co.oid),
                 (SELECT NULLIF({INDEX_EXTRAS}, '') FROM pg_index i
                  JOIN pg_class ic ON ic.oid = i.indexrelid
                  WHERE i.indexrelid = co.conindid AND co.contype IN ('p', 'u', 'x'))),
       {_qualified("n", "c.relname")}, 0
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE co.oid >= {USER_OID} AND co.contype <> 'n' AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_class", "c.oid")}
"""

# indexes that back a primary key, unique or exclusion constraint are that constraint
INDEXES = f"""
SELECT 'index', {_qualified("n", "ic.relname")},
       concat_ws(' ', pg_get_indexdef(i.indexrelid), NULLIF({INDEX_EXTRAS}, '')),
       {_qualified("n", "c.relname")}, 0
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indexrelid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_class", "c.oid")}
  AND NOT EXISTS (SELECT 1 FROM pg_constraint co
                  WHERE co.conindid = i.indexrelid AND co.contype IN ('p', 'u', 'x'))
"""

TRIGGERS = f"""
SELECT 'trigger', {_qualified("n", "c.relname")} || '.' || t.tgname,
       pg_get_triggerdef(t.oid, true)
       || CASE t.tgenabled WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (enabled replica)'
                           WHEN 'A' THEN ' (enabled always)' ELSE '' END,
       {_qualified("n", "c.relname")}, 0
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.oid >= {USER_OID} AND NOT t.tgisinternal AND {USER_SCHEMA.format(n="n")}
"""

RULES = f"""
SELECT 'rule', {_qualified("n", "c.relname")} || '.' || r.rulename,
       btrim(pg_get_ruledef(r.oid, true), {STRIP})
       || CASE r.ev_enabled WHEN 'D' THEN ' (disabled)' WHEN 'R' THEN ' (enabled replica)'
                            WHEN 'A' THEN ' (enabled always)' ELSE '' END,
       {_qualified("n", "c.relname")}, 0
FROM pg_rewrite r
JOIN pg_class c ON c.oid = r.ev_class
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.oid >= {USER_OID} AND r.rulename <> '_RETURN' AND {USER_SCHEMA.format(n="n")}
"""

POLICIES = f"""
SELECT 'policy', {_qualified("n", "c.relname")} || '.' || p.polname,
       concat_ws(' ', CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                 'for ' || CASE p.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert'
                                         WHEN 'w' THEN 'update' WHEN 'd' THEN 'delete'
                                         ELSE 'all' END,
                 'to ' || {_roles("p.polroles")},
                 'using (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                 'with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')'),
       {_qualified("n", "c.relname")}, 0
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {USER_SCHEMA.format(n="n")}
"""

VIEWS = f"""
SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END,
       {_qualified("n", "c.relname")},
       concat_ws(E'\\n', btrim(pg_get_viewdef(c.oid, true), {STRIP}),
                 NULLIF(concat_ws(' ', {RELATION_OPTIONS}), '')),
       '', 0
{USER_RELATION} AND c.relkind IN ('v', 'm')
"""

FUNCTIONS = f"""
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
       {_qualified("n", "p.proname")} || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       btrim(pg_get_functiondef(p.oid), {STRIP}), '', 0
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid >= {USER_OID} AND p.prokind <> 'a' AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_proc", "p.oid", "'e', 'i'")}
"""

AGGREGATES = f"""
SELECT 'aggregate',
       {_qualified("n", "p.proname")} || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       (to_jsonb(a) - ARRAY['aggfnoid', 'aggtranstype', 'aggmtranstype', 'aggsortop']
        || jsonb_build_object('stype', format_type(a.aggtranstype, NULL),
                              'mstype', format_type(NULLIF(a.aggmtranstype, 0), NULL),
                              'sortop', NULLIF(a.aggsortop, 0)::regoperator::text,
                              'returns', format_type(p.prorettype, NULL),
                              'parallel', p.proparallel, 'strict', p.proisstrict))::text,
       '', 0
FROM pg_proc p
JOIN pg_aggregate a ON a.aggfnoid = p.oid
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")} AND {_not_extension("pg_proc", "p.oid")}
"""

OPERATORS = f"""
SELECT 'operator', {_qualified("n", "o.oprname")} || '('
       || COALESCE(format_type(NULLIF(o.oprleft, 0), NULL), 'NONE') || ', '
       || format_type(o.oprright, NULL) || ')',
       (to_jsonb(o) - ARRAY['oid', 'oprname', 'oprnamespace', 'oprowner', 'oprleft', 'oprright',
                            'oprresult', 'oprcom', 'oprnegate']
        || jsonb_build_object('result', format_type(o.oprresult, NULL),
                              'commutator', NULLIF(o.oprcom, 0)::regoperator::text,
                              'negator', NULLIF(o.oprnegate, 0)::regoperator::text))::text,
       '', 0
FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
WHERE o.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_operator", "o.oid")}
"""

OPERATOR_FAMILIES = f"""
SELECT 'operator family', {_qualified("n", "f.opfname")} || ' using ' || am.amname,
       concat_ws('; ',
         (SELECT string_agg(x, '; ' ORDER BY x) FROM (
            SELECT 'operator ' || ao.amopstrategy || ' ' || ao.amopopr::regoperator::text
                   || ' (' || format_type(ao.amoplefttype, NULL) || ', '
                   || format_type(ao.amoprighttype, NULL) || ')'
                   || CASE WHEN ao.amoppurpose = 'o'
                           THEN ' for order by ' || ao.amopsortfamily::text ELSE '' END AS x
            FROM pg_amop ao WHERE ao.amopfamily = f.oid
            UNION ALL
            SELECT 'function ' || ap.amprocnum || ' (' || format_type(ap.amproclefttype, NULL)
                   || ', ' || format_type(ap.amprocrighttype, NULL) || ') '
                   || ap.amproc::regprocedure::text
            FROM pg_amproc ap WHERE ap.amprocfamily = f.oid) m)),
       '', 0
FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace
JOIN pg_am am ON am.oid = f.opfmethod
WHERE f.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_opfamily", "f.oid")}
"""

OPERATOR_CLASSES = f"""
SELECT 'operator class', {_qualified("n", "c.opcname")} || ' using ' || am.amname,
       concat_ws(' ', CASE WHEN c.opcdefault THEN 'default' END,
                 'for type ' || format_type(c.opcintype, NULL),
                 'family ' || (SELECT opfname FROM pg_opfamily WHERE oid = c.opcfamily),
                 'storage ' || format_type(NULLIF(c.opckeytype, 0), NULL)),
       '', 0
FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace
JOIN pg_am am ON am.oid = c.opcmethod
WHERE c.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
  AND {_not_extension("pg_opclass", "c.oid")}
"""

CASTS = f"""
SELECT 'cast', '(' || format_type(c.castsource, NULL) || ' AS '
       || format_type(c.casttarget, NULL) || ')',
       concat_ws(' ', CASE c.castmethod WHEN 'f' THEN 'with function '
                                        || c.castfunc::regprocedure::text
                                        WHEN 'i' THEN 'with inout' ELSE 'without function' END,
                 CASE c.castcontext WHEN 'i' THEN 'as implicit' WHEN 'a' THEN 'as assignment' END),
       '', 0
FROM pg_cast c
WHERE c.oid >= {USER_OID} AND {_not_extension("pg_cast", "c.oid", "'e', 'i'")}
"""

EVENT_TRIGGERS = f"""
SELECT 'event trigger', e.evtname::text,
       concat_ws(' ', 'on ' || e.evtevent, 'execute ' || e.evtfoid::regprocedure::text,
                 'when tag in (' || {_sorted("e.evttags")} || ')',
                 CASE e.evtenabled WHEN 'D' THEN '(disabled)' WHEN 'R' THEN '(enabled replica)'
                                   WHEN 'A' THEN '(enabled always)' END),
       '', 0
FROM pg_event_trigger e WHERE {_not_extension("pg_event_trigger", "e.oid")}
"""

PUBLICATIONS = """
SELECT 'publication', p.pubname::text,
       concat_ws(' ', CASE WHEN p.puballtables THEN 'for all tables' END,
                 (SELECT 'for table ' || string_agg(x, ', ' ORDER BY x) FROM (
                    SELECT pr.prrelid::regclass::text
                           || COALESCE(' (' || (SELECT string_agg(quote_ident(a.attname), ', '
                                                                  ORDER BY a.attnum)
                                                FROM pg_attribute a
                                                WHERE a.attrelid = pr.prrelid
                                                  AND a.attnum = ANY(pr.prattrs)) || ')', '')
                           || COALESCE(' where (' || pg_get_expr(pr.prqual, pr.prrelid) || ')', '')
                           AS x
                    FROM pg_publication_rel pr WHERE pr.prpubid = p.oid) r),
                 (SELECT 'for tables in schema ' || string_agg(pn.pnnspid::regnamespace::text, ', '
                                                              ORDER BY 1)
                  FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid),
                 'publish ' || concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END,
                                         CASE WHEN p.pubupdate THEN 'update' END,
                                         CASE WHEN p.pubdelete THEN 'delete' END,
                                         CASE WHEN p.pubtruncate THEN 'truncate' END),
                 CASE WHEN p.pubviaroot THEN 'via partition root' END),
       '', 0
FROM pg_publication p
"""

STATISTICS = f"""
SELECT 'statistics', {_qualified("n", "s.stxname")},
       pg_get_statisticsobjdef(s.oid)
       || CASE WHEN s.stxstattarget >= 0 THEN ' statistics ' || s.stxstattarget ELSE '' END,
       (SELECT {_qualified("tn", "t.relname")} FROM pg_class t
        JOIN pg_namespace tn ON tn.oid = t.relnamespace WHERE t.oid = s.stxrelid), 0
FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
WHERE {USER_SCHEMA.format(n="n")}
"""

TEXT_SEARCH = f"""
SELECT 'text search configuration', {_qualified("n", "c.cfgname")},
       'parser ' || c.cfgparser::regproc::text || COALESCE('; ' || (
         SELECT string_agg(m.maptokentype || ':' || m.mapseqno || '=' || m.mapdict::regdictionary,
                           ', ' ORDER BY m.maptokentype, m.mapseqno)
         FROM pg_ts_config_map m WHERE m.mapcfg = c.oid), ''),
       '', 0
FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
WHERE c.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
UNION ALL
SELECT 'text search dictionary', {_qualified("n", "d.dictname")},
       'template ' || d.dicttemplate::regproc::text
       || COALESCE(' (' || d.dictinitoption || ')', ''), '', 0
FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace
WHERE d.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
"""

FOREIGN = f"""
SELECT 'foreign data wrapper', w.fdwname::text,
       concat_ws(' ', 'handler ' || NULLIF(w.fdwhandler, 0)::regproc::text,
                 'validator ' || NULLIF(w.fdwvalidator, 0)::regproc::text,
                 {_options("w.fdwoptions")}), '', 0
FROM pg_foreign_data_wrapper w
WHERE w.oid >= {USER_OID} AND {_not_extension("pg_foreign_data_wrapper", "w.oid")}
UNION ALL
SELECT 'server', s.srvname::text,
       concat_ws(' ', 'type ' || s.srvtype, 'version ' || s.srvversion,
                 'wrapper ' || (SELECT fdwname FROM pg_foreign_data_wrapper WHERE oid = s.srvfdw),
                 {_options("s.srvoptions")}), '', 0
FROM pg_foreign_server s
UNION ALL
SELECT 'user mapping', 'for ' || CASE WHEN u.umuser = 0 THEN 'PUBLIC'
                                      ELSE pg_get_userbyid(u.umuser)::text END
       || ' server ' || u.srvname,
       -- option values may hold passwords: compared, never shown
       COALESCE('options (' || (SELECT string_agg(split_part(o, '=', 1) || ' md5:'
                                                  || left(md5(o), 12), ', ' ORDER BY o)
                                FROM unnest(u.umoptions) o) || ')', ''), '', 0
-- the view, not pg_user_mapping, which only a superuser may read (production's roles are
-- not); it shows the options to the mapping's user, the server's owner and superusers
FROM pg_user_mappings u
"""

LANGUAGES = f"""
SELECT 'language', l.lanname::text,
       concat_ws(' ', CASE WHEN l.lanpltrusted THEN 'trusted' END,
                 'handler ' || NULLIF(l.lanplcallfoid, 0)::regproc::text,
                 'inline ' || NULLIF(l.laninline, 0)::regproc::text,
                 'validator ' || NULLIF(l.lanvalidator, 0)::regproc::text), '', 0
FROM pg_language l
WHERE l.oid >= {USER_OID} AND {_not_extension("pg_language", "l.oid")}
"""

#: the table a comment's or owner's object hangs off, so a dropped table's are not listed again
_PARENT_TABLE = f"""
CASE WHEN {{cls}} = 'pg_class'::regclass THEN
       (SELECT {_qualified("tn", "t.relname")} FROM pg_class t
        JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE t.oid = {{oid}} AND t.relkind IN ('r', 'p', 'f'))
     WHEN {{cls}} = 'pg_constraint'::regclass THEN
       (SELECT {_qualified("tn", "t.relname")} FROM pg_constraint co
        JOIN pg_class t ON t.oid = co.conrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE co.oid = {{oid}})
     WHEN {{cls}} = 'pg_trigger'::regclass THEN
       (SELECT {_qualified("tn", "t.relname")} FROM pg_trigger tg
        JOIN pg_class t ON t.oid = tg.tgrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE tg.oid = {{oid}})
END
"""


def _described(kind: str, catalog: str, cls: str, oid: str, sub: str, value: str) -> str:
    """One row per entry of a catalog that describes other objects (comments, owners), named
    by what `pg_identify_object` calls the object (`table column public.users.email`)."""
    return f"""
SELECT '{kind}', o.type || ' ' || regexp_replace(o.identity, '(^|\\s)public\\.', '\\1', 'g'),
       {value},
       COALESCE({_PARENT_TABLE.format(cls=cls, oid=oid)}, ''), 0
FROM {catalog}, pg_identify_object({cls}, {oid}, {sub}) o
WHERE ({oid} >= {USER_OID} OR {cls} = 'pg_namespace'::regclass)
  AND ({oid} >= {USER_OID} OR o.identity = 'public')
  AND COALESCE(o.schema, '') NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND COALESCE(o.schema, '') NOT LIKE 'pg\\_temp%'
  AND o.type NOT IN ('toast table', 'toast table column', 'index column')
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {cls} AND e.objid = {oid}
                  AND e.deptype = 'e')
"""


# schema public's own comment is initdb's, not the user's (pg_dump leaves it out too)
COMMENTS = _described(
    "comment", "pg_description d", "d.classoid", "d.objoid", "d.objsubid", "d.description"
).replace("WHERE (", "WHERE d.description <> 'standard public schema' AND (")

# the bootstrap superuser's objects record no owner dependency: the absence means "postgres"
OWNERS = _described(
    "owner",
    "pg_shdepend s",
    "s.classid",
    "s.objid",
    "s.objsubid",
    "pg_get_userbyid(s.refobjid)::text",
).replace(
    "WHERE (",
    "WHERE s.deptype = 'o' AND s.dbid = (SELECT oid FROM pg_database "
    "WHERE datname = current_database()) AND (",
)

RELATION_ACL_KIND = "(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\""
_INITIAL = (
    "SELECT ip.initprivs FROM pg_init_privs ip WHERE ip.classoid = '{catalog}'::regclass "
    "AND ip.objoid = {oid} AND ip.objsubid = 0"
)
_PUBLIC_INITIAL = _INITIAL.format(catalog="pg_namespace", oid="n.oid")
GRANTS = f"""
SELECT * FROM (
  SELECT 'grant', CASE c.relkind WHEN 'S' THEN 'sequence ' ELSE 'table ' END
                  || {_qualified("n", "c.relname")},
         {_acl("c.relacl", "c.relowner", RELATION_ACL_KIND)} AS privileges,
         CASE WHEN c.relkind IN ('r', 'p', 'f') THEN {_qualified("n", "c.relname")} ELSE '' END,
         0
  {USER_RELATION} AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
  UNION ALL
  SELECT 'grant', 'column ' || {_qualified("n", "c.relname")} || '.' || a.attname,
         {_acl_text("a.attacl")}, {_qualified("n", "c.relname")}, 0
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE a.attrelid >= {USER_OID} AND a.attacl IS NOT NULL AND NOT a.attisdropped
    AND {USER_SCHEMA.format(n="n")}
  UNION ALL
  SELECT 'grant', 'schema ' || n.nspname,
         {_acl("n.nspacl", "n.nspowner", "'n'", _PUBLIC_INITIAL)}, '', 0
  FROM pg_namespace n
  WHERE (n.oid >= {USER_OID} OR n.nspname = 'public') AND {USER_SCHEMA.format(n="n")}
  UNION ALL
  SELECT 'grant', CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END
                  || {_qualified("n", "p.proname")} || '('
                  || pg_get_function_identity_arguments(p.oid) || ')',
         {_acl("p.proacl", "p.proowner", "'f'")}, '', 0
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE p.oid >= {USER_OID} AND {USER_SCHEMA.format(n="n")}
  UNION ALL
  SELECT 'grant', 'type ' || {_qualified("n", "t.typname")},
         {_acl("t.typacl", "t.typowner", "'T'")}, '', 0
  {USER_TYPE}
  UNION ALL
  SELECT 'grant', 'language ' || l.lanname, {_acl("l.lanacl", "l.lanowner", "'l'")}, '', 0
  FROM pg_language l
  UNION ALL
  SELECT 'grant', 'foreign data wrapper ' || w.fdwname,
         {_acl("w.fdwacl", "w.fdwowner", "'F'")}, '', 0
  FROM pg_foreign_data_wrapper w
  UNION ALL
  SELECT 'grant', 'server ' || s.srvname, {_acl("s.srvacl", "s.srvowner", "'S'")}, '', 0
  FROM pg_foreign_server s
  UNION ALL
  SELECT 'default privileges', 'for role ' || pg_get_userbyid(d.defaclrole)
         || COALESCE(' in schema ' || NULLIF(d.defaclnamespace, 0)::regnamespace::text, '')
         || ' on ' || CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'
                                          WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types'
                                          WHEN 'n' THEN 'schemas' END,
         CASE WHEN d.defaclnamespace = 0
              THEN {_acl("d.defaclacl", "d.defaclrole", "d.defaclobjtype")}
              ELSE COALESCE({_acl_text("d.defaclacl")}, 'none') END, '', 0
  FROM pg_default_acl d
) g WHERE g.privileges IS NOT NULL
"""

#: kinds that only `owners=False` / `grants=False` leave out (pg_dump --no-owner / --no-privileges)
OWNER_KINDS = frozenset({"owner"})
GRANT_KINDS = frozenset({"grant", "default privileges"})

_BRANCHES = [
    SCHEMAS,
    EXTENSIONS,
    ENUMS,
    DOMAINS,
    COMPOSITES,
    RANGES,
    BASE_TYPES,
    COLLATIONS,
    SEQUENCES,
    TABLES,
    COLUMNS,
    CONSTRAINTS,
    INDEXES,
    TRIGGERS,
    RULES,
    POLICIES,
    VIEWS,
    FUNCTIONS,
    AGGREGATES,
    OPERATORS,
    OPERATOR_FAMILIES,
    OPERATOR_CLASSES,
    CASTS,
    EVENT_TRIGGERS,
    PUBLICATIONS,
    STATISTICS,
    TEXT_SEARCH,
    FOREIGN,
    LANGUAGES,
    COMMENTS,
    OWNERS,
    GRANTS,
]
#: every object as (kind, name, definition, table, position), sqlstage's own tables left out
OBJECTS = f"""
SELECT o.kind, o.name, COALESCE(o.definition, ''), COALESCE(o.tbl, ''), o.position::int
FROM (
SELECT ''::text, ''::text, ''::text, ''::text, 0::bigint WHERE false
UNION ALL {" UNION ALL ".join(f"({branch})" for branch in _BRANCHES)}
) AS o(kind, name, definition, tbl, position)
"""


DIALECT = "postgresql"


def rows(driver: Driver, owners: bool = True, grants: bool = True) -> list[Row]:
    """Every object as the query gives it (sqlstage's own tables still in)."""
    left_out = (set() if owners else OWNER_KINDS) | (set() if grants else GRANT_KINDS)
    return [row for row in driver.query(WITHOUT_JIT + OBJECTS) if row[0] not in left_out]


def read(driver: Driver, owners: bool = True, grants: bool = True) -> Snapshot:
    objects = [SchemaObject(*row) for row in rows(driver, owners, grants)]
    return make_snapshot(DIALECT, objects)


def fingerprint(driver: Driver, before: object | None = None) -> object:
    """See `sqlstage.schema.pg_fingerprint.fingerprint`."""
    return read_fingerprint(driver, before)
