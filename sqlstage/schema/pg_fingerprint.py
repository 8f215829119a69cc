"""A cheap fingerprint of a PostgreSQL database's catalogs, for `verify`: equal fingerprints
of two states of one database mean equal snapshots, without deparsing anything.

Every user row of every catalog the snapshot reads is named by its position (ctid) and its
content hash; only rows the open transaction wrote (`age(xmin) <= 0`) are hashed on the
server, the others are looked up in the state the transaction started from. Columns that
change without the schema changing (statistics, flags PostgreSQL sets and never clears) are
left out of the content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlstage.drivers.base import Driver

#: FirstNormalObjectId: initdb made everything below it, so the planner can skip the built-in
#: rows through the OID indexes instead of scanning thousands of them in every snapshot
USER_OID = 16384
#: put before a catalog query, in the same message (one implicit transaction, or the open
#: one). The snapshot's and the fingerprint's queries are large: once autovacuum has analysed
#: the catalogs of ~2,000 tables their estimated cost passes `jit_above_cost`, and compiling
#: them took 0.6 s where running them takes 0.17 s. JIT never changes what a query returns.
WITHOUT_JIT = "SET LOCAL jit = off;\n"

#: catalog columns that change without the schema changing (statistics, storage, flags
#: PostgreSQL sets and never clears), left out of the fingerprint
_VOLATILE = {
    "pg_class": [
        "relpages",
        "reltuples",
        "relallvisible",
        "relfrozenxid",
        "relminmxid",
        "relfilenode",
        "reltoastrelid",
        "relhasindex",
        "relnatts",
        "relhastriggers",
        "relhassubclass",
        "relhasrules",
        "relrewrite",
        "relispopulated",
    ],
    "pg_attribute": ["atthasmissing", "attmissingval"],
    "pg_index": ["indcheckxmin"],
}
#: (catalog, which rows): every catalog the snapshot reads, for the rows users make
_FINGERPRINTED = [
    ("pg_namespace", "true"),
    ("pg_extension", "true"),
    ("pg_language", "true"),
    ("pg_class", f"x.oid >= {USER_OID} AND x.relnamespace <> 'pg_toast'::regnamespace"),
    (
        "pg_attribute",
        f"x.attrelid >= {USER_OID} AND NOT x.attisdropped AND x.attrelid IN "
        "(SELECT oid FROM pg_class WHERE relnamespace <> 'pg_toast'::regnamespace)",
    ),
    ("pg_attrdef", f"x.oid >= {USER_OID}"),
    ("pg_constraint", f"x.oid >= {USER_OID}"),
    (
        "pg_index",
        f"x.indexrelid >= {USER_OID} AND x.indrelid IN "
        "(SELECT oid FROM pg_class WHERE relnamespace <> 'pg_toast'::regnamespace)",
    ),
    ("pg_trigger", f"x.oid >= {USER_OID}"),
    ("pg_rewrite", f"x.oid >= {USER_OID}"),
    ("pg_policy", "true"),
    ("pg_proc", f"x.oid >= {USER_OID}"),
    ("pg_aggregate", f"x.aggfnoid >= {USER_OID}"),
    # a table's or view's row type (and any array type) changes only with its relation
    (
        "pg_type",
        f"x.oid >= {USER_OID} AND x.typcategory <> 'A' AND (x.typrelid = 0 OR "
        "(SELECT relkind FROM pg_class WHERE oid = x.typrelid) = 'c')",
    ),
    ("pg_enum", f"x.enumtypid >= {USER_OID}"),
    ("pg_range", f"x.rngtypid >= {USER_OID}"),
    ("pg_collation", f"x.oid >= {USER_OID}"),
    ("pg_sequence", f"x.seqrelid >= {USER_OID}"),
    ("pg_inherits", "true"),
    ("pg_partitioned_table", "true"),
    ("pg_operator", f"x.oid >= {USER_OID}"),
    ("pg_opfamily", f"x.oid >= {USER_OID}"),
    ("pg_opclass", f"x.oid >= {USER_OID}"),
    ("pg_amop", f"x.oid >= {USER_OID}"),
    ("pg_amproc", f"x.oid >= {USER_OID}"),
    ("pg_cast", f"x.oid >= {USER_OID}"),
    ("pg_event_trigger", "true"),
    ("pg_publication", "true"),
    ("pg_publication_rel", "true"),
    ("pg_publication_namespace", "true"),
    ("pg_statistic_ext", "true"),
    ("pg_ts_config", f"x.oid >= {USER_OID}"),
    ("pg_ts_config_map", f"x.mapcfg >= {USER_OID}"),
    ("pg_ts_dict", f"x.oid >= {USER_OID}"),
    ("pg_foreign_data_wrapper", "true"),
    ("pg_foreign_server", "true"),
    ("pg_user_mapping", "true"),
    ("pg_foreign_table", "true"),
    ("pg_default_acl", "true"),
    ("pg_init_privs", "true"),
    (
        "pg_depend",
        # what the snapshot reads of dependencies: extension members, OWNED BY, internal
        f"x.deptype IN ('e', 'a', 'i') AND (x.objid >= {USER_OID} OR x.refobjid >= {USER_OID}) "
        "AND NOT (x.classid = "
        "'pg_class'::regclass AND x.objid IN (SELECT oid FROM pg_class "
        "WHERE relnamespace = 'pg_toast'::regnamespace))",
    ),
    (
        "pg_description",
        f"x.objoid >= {USER_OID} OR (x.classoid = 'pg_namespace'::regclass)",
    ),
    ("pg_shdepend", "x.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"),
]


def _fingerprint_branch(catalog: str, rows: str, kept: dict[str, list[str]]) -> str:
    if catalog in kept:  # a row of the columns kept (to_jsonb(x) - ... costs 10x more)
        row = f"ROW({', '.join(f'x.{column}' for column in kept[catalog])})::text"
    else:
        row = "x::text"
    # age() <= 0: the row was written by the transaction we are in (or one of its savepoints)
    return (
        f"SELECT '{catalog}', x.ctid::text, CASE WHEN {{every}} OR age(x.xmin) <= 0 "
        f"THEN hashtextextended('{catalog}' || {row}, 0) END FROM {catalog} x WHERE {rows}"
    )


_COLUMNS = """
SELECT attrelid::regclass::text, attname FROM pg_attribute
WHERE attrelid = ANY(%s::regclass[]) AND attnum > 0 AND NOT attisdropped ORDER BY attrelid, attnum
"""
#: the fingerprint query for each server version (catalog columns differ between versions)
#: and each answer to "hash every row?"; no parameters, so the plan is made once and kept
_FINGERPRINT_QUERIES: dict[tuple[str, bool], str] = {}


def fingerprint_query(driver: Driver, every: bool) -> str:
    """Every user row of every catalog the snapshot reads, as (catalog, position, hash of its
    content), plus the reloptions of toast tables (a table's `toast.*` parameters). The hash
    is computed only for rows the current transaction wrote, unless the parameter asks for
    every row: the others are known from the state before."""
    version = str(driver.info().version)
    if (version, every) not in _FINGERPRINT_QUERIES:
        kept: dict[str, list[str]] = {}
        for catalog, column in driver.query(_COLUMNS, [list(_VOLATILE)]):
            if column not in _VOLATILE[catalog]:
                kept.setdefault(catalog, []).append(column)
        branches = " UNION ALL ".join(_fingerprint_branch(c, w, kept) for c, w in _FINGERPRINTED)
        _FINGERPRINT_QUERIES[version, every] = f"""
{branches.format(every=str(every).lower())}
UNION ALL SELECT 'toast', relname::text, hashtextextended(reloptions::text, 0) FROM pg_class
WHERE relnamespace = 'pg_toast'::regnamespace AND reloptions IS NOT NULL
"""
    return _FINGERPRINT_QUERIES[version, every]


@dataclass(frozen=True)
class CatalogState:
    """The user rows of the catalogs: their content hashes, by row position. Two states of
    one database are equal when the same contents are there, wherever they sit."""

    rows: dict[tuple[str, str], int] = field(compare=False, hash=False)
    contents: tuple[int, ...]


def fingerprint(driver: Driver, before: object | None = None) -> CatalogState:
    """The state of the catalogs, cheaply: only rows written by the open transaction are
    hashed on the server; the rest are looked up in `before` (a state of the same database
    this transaction started from). Equal states mean equal snapshots; unequal ones may
    still be equal snapshots (an index dropped and made again has a new id)."""
    known = before.rows if isinstance(before, CatalogState) else None
    rows: dict[tuple[str, str], int] = {}
    query = WITHOUT_JIT + fingerprint_query(driver, known is None)
    for catalog, position, content in driver.query(query):
        if content is None:
            assert known is not None
            content = known.get((catalog, position))
            if content is None:  # not a state this one grew from: read every row
                return fingerprint(driver)
        rows[(catalog, position)] = content
    return CatalogState(rows, tuple(sorted(rows.values())))
