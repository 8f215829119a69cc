"""Rules on columns, their types and constraints: what ALTER TABLE adds or changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlstage.lint.context import Check, Context, Hit, Statement, for_kinds
from sqlstage.lint.nodes import (
    Node,
    alter_commands,
    column_defs,
    constraints,
    contype,
    function_names,
    has_length,
    ident,
    rewrite,
    strings,
    subtype,
    table,
    table_constraints,
    type_name,
)

VOLATILE = {
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "random_normal",
}
SERIAL = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}
#: the integer type under each serial type
SERIAL_BASE = {
    "serial": "integer",
    "serial4": "integer",
    "bigserial": "bigint",
    "serial8": "bigint",
    "smallserial": "smallint",
    "serial2": "smallint",
}
SMALL_INTEGERS = {"int2", "int4", "serial", "serial4", "smallserial", "serial2"}
CONCURRENT_NOTE = "-- in a migration file of its own: CONCURRENTLY cannot run in a transaction"


def _added_columns(statement: Statement) -> Iterator[tuple[str, Node]]:
    if statement.kind != "AlterTableStmt":
        return
    name = table(statement.node.get("relation"))
    for command in alter_commands(statement.node):
        if subtype(command) == "AddColumn" and "ColumnDef" in command.get("def", {}):
            yield name, command["def"]["ColumnDef"]


@for_kinds("AlterTableStmt")
def not_null_without_default(statement: Statement, context: Context) -> Iterator[Hit]:
    for name, column in _added_columns(statement):
        kinds = {contype(c) for c in constraints(column)}
        if not context.existing(name) or not kinds & {"NOTNULL", "PRIMARY"}:
            continue
        if kinds & {"DEFAULT", "IDENTITY", "GENERATED"} or type_name(column) in SERIAL:
            continue
        col, tbl, typ = ident(column["colname"]), ident(name), _type(context, statement, column)
        yield Hit(
            "add-column-not-null-no-default",
            f"column {col} is added to {tbl} as NOT NULL without a default",
            f"-- a constant default fills existing rows without a rewrite (PostgreSQL 11+):\n"
            f"ALTER TABLE {tbl} ADD COLUMN {col} {typ} NOT NULL DEFAULT <value>;\n"
            f"-- or add it nullable, backfill in batches, then see rule set-not-null:\n"
            f"ALTER TABLE {tbl} ADD COLUMN {col} {typ};",
            column.get("location"),
        )


@for_kinds("AlterTableStmt")
def volatile_default(statement: Statement, context: Context) -> Iterator[Hit]:
    old_server = context.options.pg_version < 11
    for name, column in _added_columns(statement):
        if not context.existing(name):
            continue
        reason = _rewrite_reason(column, old_server)
        if reason is None:
            continue
        col, tbl, typ = ident(column["colname"]), ident(name), _type(context, statement, column)
        sequence = ""
        if type_name(column) in SERIAL:  # serial is integer + a sequence + a nextval() default
            typ = SERIAL_BASE[type_name(column)]
            seq = f"{name}_{column['colname']}_seq"
            sequence = f"CREATE SEQUENCE {ident(seq)} OWNED BY {tbl}.{col};\n"
            expr = f"nextval('{seq}')"
        else:
            expr = _default(context, statement, column)
        yield Hit(
            "add-column-volatile-default",
            f"adding {col} to {tbl} with {reason} rewrites the whole table",
            f"ALTER TABLE {tbl} ADD COLUMN {col} {typ};  -- instant\n"
            f"{sequence}"
            f"ALTER TABLE {tbl} ALTER COLUMN {col} SET DEFAULT {expr};  -- new rows only\n"
            f"-- next migrations: backfill existing rows in batches, e.g.\n"
            f"UPDATE {tbl} SET {col} = {expr}\n"
            f" WHERE ctid IN (SELECT ctid FROM {tbl} WHERE {col} IS NULL LIMIT 10000);",
            column.get("location"),
        )


def _rewrite_reason(column: Node, old_server: bool) -> str | None:
    if type_name(column) in SERIAL:
        return f"type {type_name(column)} (a nextval() default)"
    for constraint in constraints(column):
        kind, expr = contype(constraint), constraint.get("raw_expr", {})
        if kind == "GENERATED":
            return "a STORED generated value"
        if kind != "DEFAULT":
            continue
        volatile = sorted(set(function_names(expr)) & VOLATILE)
        if volatile:
            return f"a volatile default ({volatile[0]}())"
        if old_server and not expr.get("A_Const", {}).get("isnull"):
            return "a default (PostgreSQL 10 and older)"
    return None


def _default(context: Context, statement: Statement, column: Node) -> str:
    """The column's DEFAULT expression as SQL, or a placeholder."""
    colname = column.get("colname")

    def pick(node: Any) -> Any:
        for command in node.cmds:
            if getattr(command.def_, "colname", None) == colname:
                for constraint in command.def_.constraints or ():
                    if getattr(constraint, "raw_expr", None) is not None:
                        return constraint.raw_expr
        return None

    sql = rewrite(context.sql(statement), pick)
    return "<expression>" if sql.upper().startswith("ALTER") else sql


@for_kinds("AlterTableStmt")
def set_not_null(statement: Statement, context: Context) -> Iterator[Hit]:
    if statement.kind != "AlterTableStmt":
        return
    name = table(statement.node.get("relation"))
    if not context.existing(name):
        return
    checked_first = (
        context.options.pg_version >= 12
        and name in context.validated_tables
        and name not in context.constrained_tables
    )
    for command in alter_commands(statement.node):
        if subtype(command) != "SetNotNull" or checked_first:
            continue
        col, tbl = ident(command.get("name", "")), ident(name)
        check = ident(f"{name}_{command.get('name', '')}_not_null")
        yield Hit(
            "set-not-null",
            f"SET NOT NULL on {tbl}.{col} scans the table under ACCESS EXCLUSIVE",
            f"-- migration 1: instant, checks new rows only\n"
            f"ALTER TABLE {tbl} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID;\n"
            f"-- migration 2: scans without blocking reads or writes\n"
            f"ALTER TABLE {tbl} VALIDATE CONSTRAINT {check};\n"
            f"-- migration 3: no scan on PostgreSQL 12+, the valid check proves it\n"
            f"ALTER TABLE {tbl} ALTER COLUMN {col} SET NOT NULL;\n"
            f"ALTER TABLE {tbl} DROP CONSTRAINT {check};",
        )


def _added_constraints(statement: Statement) -> Iterator[tuple[int, Node]]:
    if statement.kind != "AlterTableStmt":
        return
    for index, command in enumerate(alter_commands(statement.node)):
        if subtype(command) == "AddConstraint" and "Constraint" in command.get("def", {}):
            yield index, command["def"]["Constraint"]


@for_kinds("AlterTableStmt")
def constraint_without_not_valid(statement: Statement, context: Context) -> Iterator[Hit]:
    name = table(statement.node.get("relation"))
    for index, constraint in _added_constraints(statement):
        kind = contype(constraint)
        if kind not in {"FOREIGN", "CHECK"} or constraint.get("skip_validation"):
            continue
        if not context.existing(name):
            continue
        conname = constraint.get("conname") or _default_name(name, constraint)
        added = _only_command(context.sql(statement), index, conname)
        yield Hit(
            "add-constraint-without-not-valid",
            f"{'FOREIGN KEY' if kind == 'FOREIGN' else 'CHECK'} constraint on {ident(name)} "
            "validates every existing row under a lock",
            f"-- migration 1: instant, checks new rows only\n{added};\n"
            f"-- migration 2: checks existing rows without blocking writes\n"
            f"ALTER TABLE {ident(name)} VALIDATE CONSTRAINT {ident(conname)};",
            constraint.get("location"),
        )


def _default_name(name: str, constraint: Node) -> str:
    if contype(constraint) == "FOREIGN":
        return f"{name}_{'_'.join(strings(constraint.get('fk_attrs')))}_fkey"
    return f"{name}_check"


def _only_command(sql: str, index: int, conname: str) -> str:
    def change(node: Any) -> None:
        node.cmds = (node.cmds[index],)
        constraint = node.cmds[0].def_
        constraint.skip_validation = True
        constraint.initially_valid = False
        constraint.conname = conname

    return rewrite(sql, change)


@for_kinds("AlterTableStmt")
def unique_without_index(statement: Statement, context: Context) -> Iterator[Hit]:
    name = table(statement.node.get("relation"))
    if statement.kind != "AlterTableStmt" or not context.existing(name):
        return
    found = [c for _, c in _added_constraints(statement)]
    for _, column in _added_columns(statement):
        for constraint in constraints(column):
            found.append({**constraint, "keys": [{"String": {"sval": column["colname"]}}]})
    for constraint in found:
        kind = contype(constraint)
        if kind not in {"PRIMARY", "UNIQUE"} or constraint.get("indexname"):
            continue
        keys = strings(constraint.get("keys"))
        cols = ", ".join(ident(k) for k in keys)
        suffix = "pkey" if kind == "PRIMARY" else f"{'_'.join(keys)}_key"
        conname = constraint.get("conname") or f"{name}_{suffix}"
        words = "PRIMARY KEY" if kind == "PRIMARY" else "UNIQUE"
        yield Hit(
            "add-unique-without-index",
            f"{words} on {ident(name)} builds its index under ACCESS EXCLUSIVE",
            f"{CONCURRENT_NOTE}\n"
            f"CREATE UNIQUE INDEX CONCURRENTLY {ident(conname)} ON {ident(name)} ({cols});\n"
            f"-- next migration: attaches the built index instantly\n"
            f"ALTER TABLE {ident(name)} ADD CONSTRAINT {ident(conname)} {words} "
            f"USING INDEX {ident(conname)};",
            constraint.get("location"),
        )


@for_kinds("AlterTableStmt")
def alter_column_type(statement: Statement, context: Context) -> Iterator[Hit]:
    if statement.kind != "AlterTableStmt":
        return
    name = table(statement.node.get("relation"))
    if not context.existing(name):
        return
    for index, command in enumerate(alter_commands(statement.node)):
        if subtype(command) != "AlterColumnType":
            continue
        col, tbl = command.get("name", ""), ident(name)
        new = ident(f"{col}_new")
        typ = rewrite(context.sql(statement), _pick_type(index))
        yield Hit(
            "alter-column-type",
            f"changing the type of {tbl}.{ident(col)} rewrites the table under ACCESS EXCLUSIVE",
            f"-- migration 1 (expand): the app writes both columns from now on\n"
            f"ALTER TABLE {tbl} ADD COLUMN {new} {typ};\n"
            f"-- migrations 2..n: backfill in batches\n"
            f"UPDATE {tbl} SET {new} = {ident(col)}::{typ}\n"
            f" WHERE ctid IN (SELECT ctid FROM {tbl} WHERE {new} IS NULL LIMIT 10000);\n"
            f"-- last migration (contract), once the deployed code reads only {new}:\n"
            f"ALTER TABLE {tbl} DROP COLUMN {ident(col)};",
        )


def _pick_type(index: int) -> Callable[[Any], Any]:
    return lambda node: node.cmds[index].def_.typeName


@for_kinds("CreateStmt", "AlterTableStmt")
def column_types(statement: Statement, context: Context) -> Iterator[Hit]:
    """prefer-text, prefer-timestamptz and prefer-bigint-identity, on any table."""
    name = table(statement.node.get("relation"))
    columns: list[Node] = []
    primary: set[str] = set()
    if statement.kind == "CreateStmt":
        columns = column_defs(statement.node.get("tableElts"))
        for constraint in table_constraints(statement.node.get("tableElts")):
            if contype(constraint) == "PRIMARY" and len(constraint.get("keys", ())) == 1:
                primary.update(strings(constraint.get("keys")))
    else:
        columns = [column for _, column in _added_columns(statement)]
        if statement.kind == "AlterTableStmt":
            columns += [
                {**c["def"]["ColumnDef"], "colname": c.get("name", "")}
                for c in alter_commands(statement.node)
                if subtype(c) == "AlterColumnType" and "ColumnDef" in c.get("def", {})
            ]
    for column in columns:
        if any(contype(c) == "PRIMARY" for c in constraints(column)):
            primary.add(column.get("colname", ""))
        yield from _type_hits(name, column, column.get("colname", "") in primary)


def _type_hits(name: str, column: Node, is_primary: bool) -> Iterator[Hit]:
    typ, col, tbl = type_name(column), ident(column.get("colname", "")), ident(name)
    where = column.get("location")
    if typ in {"varchar", "bpchar"} and has_length(column):
        length = column["typeName"]["typmods"][0].get("A_Const", {}).get("ival", {}).get("ival")
        label = "varchar" if typ == "varchar" else "char"
        yield Hit(
            "prefer-text",
            f"{tbl}.{col} is {label}({length}); text with a CHECK avoids rewrites",
            f"{col} text CHECK (char_length({col}) <= {length})",
            where,
        )
    if typ == "timestamp":
        yield Hit(
            "prefer-timestamptz",
            f"{tbl}.{col} is timestamp without time zone",
            f"{col} timestamptz",
            where,
        )
    if is_primary and typ in SMALL_INTEGERS and _counted(column):
        label = {"int4": "integer", "int2": "smallint"}.get(typ, typ)
        bits = 16 if typ in {"int2", "smallserial", "serial2"} else 32
        yield Hit(
            "prefer-bigint-identity",
            f"primary key {tbl}.{col} is {label}, a {bits}-bit counter",
            f"{col} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
            where,
        )


def _counted(column: Node) -> bool:
    """Whether the column's values come from a sequence (a serial type, an identity, a
    nextval() default): a counter that runs out. A key the application assigns does not."""
    if type_name(column) in SERIAL:
        return True
    return any(
        contype(c) == "IDENTITY"
        or (contype(c) == "DEFAULT" and "nextval" in function_names(c.get("raw_expr", {})))
        for c in constraints(column)
    )


def _type(context: Context, statement: Statement, column: Node) -> str:
    """The column's type as SQL, printed back from the parse tree."""
    sql = context.sql(statement)
    colname = column.get("colname")

    def pick(node: Any) -> Any:
        for command in node.cmds:
            if getattr(command.def_, "colname", None) == colname:
                return command.def_.typeName
        return None

    return rewrite(sql, pick)


CHECKS: tuple[Check, ...] = (
    not_null_without_default,
    volatile_default,
    set_not_null,
    constraint_without_not_valid,
    unique_without_index,
    alter_column_type,
    column_types,
)
