"""Rules on locks and transactions: indexes, CONCURRENTLY, VACUUM FULL, CLUSTER, lock_timeout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlstage.lint.context import Check, Context, Hit, Statement, for_kinds
from sqlstage.lint.nodes import (
    Node,
    alter_commands,
    drop_names,
    ident,
    needs_no_transaction,
    rewrite,
    strings,
    table,
)
from sqlstage.lint.rules_tables import CONCURRENT_NOTE
from sqlstage.migration import TRANSACTION_CONTROL, TRANSACTION_CONTROL_FIX
from sqlstage.pgparse import transaction_control as control_of


def _concurrently(sql: str) -> str:
    def change(node: Any) -> None:
        node.concurrent = True

    return rewrite(sql, change)


def _partitioned_note(sql: str, node: Node) -> str:
    """PostgreSQL refuses CONCURRENTLY on a partitioned table: the steps that work there."""
    index = ident(node.get("idxname") or "the_index")
    parent = ident(table(node.get("relation")))

    def only(statement: Any) -> None:
        statement.relation.inh = False  # ON ONLY: the parent's index, built on no partition

    return (
        f"-- if {parent} is partitioned, CONCURRENTLY is refused there; instead:\n"
        f"-- {rewrite(sql, only)};\n"
        f"-- then for each partition, in migrations of their own:\n"
        f"--   CREATE INDEX CONCURRENTLY <partition_index> ON <partition> (...);\n"
        f"--   ALTER INDEX {index} ATTACH PARTITION <partition_index>;"
    )


@for_kinds("IndexStmt")
def create_index(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    name = table(node.get("relation"))
    if statement.kind != "IndexStmt" or node.get("concurrent") or not context.existing(name):
        return
    yield Hit(
        "create-index-without-concurrently",
        f"CREATE INDEX on {ident(name)} blocks its writes until the index is built",
        f"{CONCURRENT_NOTE}\n{_concurrently(context.sql(statement))};\n"
        f"{_partitioned_note(context.sql(statement), node)}",
        node.get("relation", {}).get("location"),
    )


@for_kinds("IndexStmt")
def concurrent_if_not_exists(statement: Statement, context: Context) -> Iterator[Hit]:
    """An interrupted CREATE INDEX CONCURRENTLY leaves its index INVALID; IF NOT EXISTS then
    skips it on the next run, and the migration is recorded applied without a usable index."""
    node = statement.node
    if statement.kind != "IndexStmt" or not (node.get("concurrent") and node.get("if_not_exists")):
        return
    name = ident(node.get("idxname") or "the_index")

    def plain(tree: Any) -> None:
        tree.if_not_exists = False

    yield Hit(
        "concurrently-if-not-exists",
        f"IF NOT EXISTS skips {name} when an interrupted build left it INVALID, and the "
        "migration is then recorded applied without a usable index",
        f"{rewrite(context.sql(statement), plain)};\n"
        f"-- a re-run after a failure then stops and names the INVALID index; drop it with\n"
        f"-- DROP INDEX CONCURRENTLY IF EXISTS {name};",
    )


@for_kinds("TransactionStmt")
def transaction_control(statement: Statement, context: Context) -> Iterator[Hit]:
    found = control_of(statement)
    if found is None or context.directive:
        return
    yield Hit(
        "transaction-control",
        TRANSACTION_CONTROL.format(control=found),
        f"-- {TRANSACTION_CONTROL_FIX}",
    )


@for_kinds("DropStmt")
def drop_index(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    if statement.kind != "DropStmt" or node.get("removeType") != "OBJECT_INDEX":
        return
    names = [n for n in drop_names(node) if n not in context.created_indexes]
    if node.get("concurrent") or not names:
        return
    yield Hit(
        "drop-index-without-concurrently",
        f"DROP INDEX {', '.join(ident(n) for n in names)} takes ACCESS EXCLUSIVE on its table",
        f"{CONCURRENT_NOTE}\n{_concurrently(context.sql(statement))};",
    )


def outside_transaction(statement: Statement, context: Context) -> Iterator[Hit]:
    if not needs_no_transaction(statement) or not context.in_transaction():
        return
    sql = context.sql(statement)
    first = sql.split("\n")[0]
    yield Hit(
        "concurrently-in-transaction",
        f"'{first[:60]}' cannot run inside a transaction, and this migration runs in one",
        "-- move it to a migration file of its own, which then runs outside a transaction:\n"
        f"{sql};\n"
        "-- or, when every statement here is safe to run one by one without a transaction,\n"
        "-- make the file's first line: -- sqlstage:no-transaction",
    )


@for_kinds("AlterEnumStmt")
def enum_add_value(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    if statement.kind != "AlterEnumStmt" or node.get("oldVal") or not node.get("newVal"):
        return
    if context.options.pg_version >= 12 or not context.in_transaction():
        return
    type_name = ".".join(ident(n) for n in strings(node.get("typeName")))
    yield Hit(
        "alter-enum-add-value-in-transaction",
        f"ALTER TYPE {type_name} ADD VALUE fails inside a transaction on PostgreSQL "
        f"{context.options.pg_version}",
        "-- a migration file of its own, whose first line is:\n"
        "-- sqlstage:no-transaction\n"
        f"{context.sql(statement)};",
    )


@for_kinds("ClusterStmt", "VacuumStmt")
def vacuum_full_or_cluster(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    if statement.kind == "ClusterStmt":
        target = ident(table(node.get("relation"))) or "every clustered table"
        yield Hit(
            "cluster",
            f"CLUSTER rewrites {target} under ACCESS EXCLUSIVE",
            f"-- outside migrations, online: pg_repack --table={target} --order-by=<columns>",
        )
    elif statement.kind == "VacuumStmt" and any(
        option.get("DefElem", {}).get("defname") == "full" for option in node.get("options", ())
    ):
        rels = [table(r["VacuumRelation"].get("relation")) for r in node.get("rels", ())]
        target = ", ".join(ident(r) for r in rels if r) or "every table"
        yield Hit(
            "vacuum-full",
            f"VACUUM FULL rewrites {target} under ACCESS EXCLUSIVE",
            f"-- outside migrations: plain VACUUM, which takes no blocking lock\n"
            f"VACUUM (ANALYZE) {target if rels else ''};\n"
            f"-- or an online rewrite: pg_repack --table={rels[0] if rels else '<table>'}",
        )


_STRONG = {"AlterTableStmt", "RenameStmt", "ClusterStmt", "CreateTrigStmt"}
_LOCKING = {*_STRONG, "IndexStmt", "TruncateStmt", "DropStmt"}


def _locked_table(statement: Statement, context: Context) -> str | None:
    """The existing table a statement takes a strong lock on, if any."""
    name = statement.kind
    if name not in _LOCKING:
        return None  # and its node stays undecoded
    node = statement.node
    if name in _STRONG or (name == "IndexStmt" and not node.get("concurrent")):
        target = table(node.get("relation"))
    elif name == "TruncateStmt":
        target = next((table(r.get("RangeVar")) for r in node.get("relations", ())), "")
    elif (
        name == "DropStmt"
        and not node.get("concurrent")
        and node.get("removeType") in {"OBJECT_TABLE", "OBJECT_INDEX"}
    ):
        target = next(iter(drop_names(node)), "")
    else:
        return None
    if name == "AlterTableStmt" and not alter_commands(node):
        return None
    if name == "DropStmt" and node.get("removeType") == "OBJECT_INDEX":
        return None if target in context.created_indexes else target
    return target if target and context.existing(target) else None


def lock_timeout(statement: Statement, context: Context) -> Iterator[Hit]:
    if context.options.tool_lock_timeout or context.lock_timeout or context.lock_timeout_warned:
        return
    target = _locked_table(statement, context)
    if target is None:
        return
    context.lock_timeout_warned = True  # once per migration: the fix is one line at the top
    set_it = "SET LOCAL lock_timeout" if context.in_transaction() else "SET lock_timeout"
    yield Hit(
        "missing-lock-timeout",
        f"this migration locks {ident(target)} and sets no lock_timeout, nor does "
        "sqlstage.toml for every environment (every protected one, when there are)",
        "-- sqlstage sets it for every migration it runs: in sqlstage.toml, for each\n"
        '-- [environments.KEY]: lock_timeout = "5s"\n'
        f"-- or, as the first statement of this migration:\n{set_it} = '5s';",
    )


CHECKS: tuple[Check, ...] = (
    transaction_control,
    create_index,
    concurrent_if_not_exists,
    drop_index,
    outside_transaction,
    enum_add_value,
    vacuum_full_or_cluster,
    lock_timeout,
)
#: what a rollback section is checked for: statements the run would refuse or that fail
ROLLBACK_CHECKS: tuple[Check, ...] = (transaction_control, outside_transaction)
