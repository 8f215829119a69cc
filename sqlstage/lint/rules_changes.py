"""Rules on changes running code notices: renames, drops, CASCADE, TRUNCATE, whole-table DML."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlstage.lint.context import Check, Context, Hit, Statement, for_kinds
from sqlstage.lint.nodes import alter_commands, drop_names, ident, rewrite, subtype, table

BATCH = "WHERE ctid IN (SELECT ctid FROM {t} WHERE <not yet done> LIMIT 10000)"


@for_kinds("RenameStmt")
def renames(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    if statement.kind != "RenameStmt":
        return
    old, new = table(node.get("relation")), node.get("newname", "")
    if not old or not context.existing(old):
        return
    t = ident(old)
    if node.get("renameType") == "OBJECT_COLUMN" and node.get("relationType") == "OBJECT_TABLE":
        col, new_col = ident(node.get("subname", "")), ident(new)
        yield Hit(
            "rename-column",
            f"renaming {t}.{col} to {new_col} breaks code that still uses {col}",
            f"-- migration 1 (expand); deploy code that writes both columns\n"
            f"ALTER TABLE {t} ADD COLUMN {new_col} <type of {col}>;\n"
            f"-- migrations 2..n: backfill in batches\n"
            f"UPDATE {t} SET {new_col} = {col}\n"
            f" WHERE ctid IN (SELECT ctid FROM {t} WHERE {new_col} IS NULL LIMIT 10000);\n"
            f"-- last migration (contract), once the deployed code reads only {new_col}:\n"
            f"ALTER TABLE {t} DROP COLUMN {col};",
        )
    elif node.get("renameType") == "OBJECT_TABLE" and old not in context.created_views:
        yield Hit(
            "rename-table",
            f"renaming {t} to {ident(new)} breaks code that still uses {t}",
            f"ALTER TABLE {t} RENAME TO {ident(new)};\n"
            f"CREATE VIEW {t} AS SELECT * FROM {ident(new)};  -- same migration: old code "
            "keeps reading and writing\n"
            f"-- a later migration, once no deployed code uses {t}:\n"
            f"DROP VIEW {t};",
        )


@for_kinds("DropStmt", "AlterTableStmt")
def drops(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    if statement.kind == "DropStmt" and node.get("removeType") == "OBJECT_TABLE":
        for name in drop_names(node):
            if context.existing(name):
                yield Hit(
                    "drop-table",
                    f"dropping {ident(name)} breaks code deployed before this migration",
                    _three_steps(f"{ident(name)}", f"DROP TABLE {ident(name)};"),
                )
    elif statement.kind == "AlterTableStmt" and context.existing(table(node.get("relation"))):
        t = ident(table(node.get("relation")))
        for command in alter_commands(node):
            if subtype(command) == "DropColumn":
                col = ident(command.get("name", ""))
                yield Hit(
                    "drop-column",
                    f"dropping {t}.{col} breaks code deployed before this migration",
                    _three_steps(
                        f"{t}.{col}",
                        f"ALTER TABLE {t} DROP COLUMN {col};",
                        f"ALTER TABLE {t} ALTER COLUMN {col} DROP NOT NULL;",
                    ),
                )


def _three_steps(what: str, drop: str, relax: str | None = None) -> str:
    steps = f"-- 1. deploy code that no longer reads or writes {what}\n"
    if relax:
        steps += f"-- 2. so that old code keeps inserting meanwhile, if it is NOT NULL:\n{relax}\n"
    last = 3 if relax else 2
    return steps + f"-- {last}. a later migration, once that code is live everywhere:\n{drop}"


@for_kinds("DropStmt", "AlterTableStmt", "TruncateStmt")
def cascade(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    behaviours = [node.get("behavior")] + [c.get("behavior") for c in alter_commands(node)]
    if statement.kind not in {"DropStmt", "AlterTableStmt", "TruncateStmt"}:
        return
    if "DROP_CASCADE" not in behaviours:
        return

    def restrict(tree: Any) -> None:
        from pglast.enums import DropBehavior

        for part in (tree, *(getattr(tree, "cmds", None) or ())):
            if getattr(part, "behavior", None) is not None:
                part.behavior = DropBehavior.DROP_RESTRICT

    yield Hit(
        "drop-cascade",
        "CASCADE also drops every object that depends on it, unnamed",
        "-- drop or change the dependents by name first, then:\n"
        f"{rewrite(context.sql(statement), restrict)};",
    )


@for_kinds("TruncateStmt")
def truncate(statement: Statement, context: Context) -> Iterator[Hit]:
    if statement.kind != "TruncateStmt":
        return
    names = [table(r.get("RangeVar")) for r in statement.node.get("relations", ())]
    for name in names:
        if context.existing(name):
            yield Hit(
                "truncate",
                f"TRUNCATE {ident(name)} empties it under ACCESS EXCLUSIVE",
                f"-- delete in batches so other sessions keep working:\n"
                f"DELETE FROM {ident(name)}\n {BATCH.format(t=ident(name))};\n"
                f"-- or, if emptying it is the point (a cache), waive it on the line above:\n"
                f"-- sqlstage:allow truncate <why it is safe>",
            )


@for_kinds("UpdateStmt", "DeleteStmt")
def whole_table_dml(statement: Statement, context: Context) -> Iterator[Hit]:
    node = statement.node
    if statement.kind not in {"UpdateStmt", "DeleteStmt"}:
        return
    name = table(node.get("relation"))
    if not context.existing(name):
        return
    t = ident(name)
    if statement.kind == "UpdateStmt" and name in context.ddl_tables:
        yield Hit(
            "backfill-with-ddl",
            f"UPDATE of {t} in the same migration as ALTER TABLE {t} holds its lock "
            "for the whole backfill",
            "-- this migration: the ALTER TABLE only\n"
            "-- next migration(s): the UPDATE, in batches, e.g.\n"
            f"UPDATE {t} SET ...\n {BATCH.format(t=t)};",
        )
    elif statement.kind == "UpdateStmt" and not node.get("whereClause"):
        yield Hit(
            "update-without-where",
            f"UPDATE {t} without WHERE rewrites every row in one transaction",
            f"UPDATE {t} SET ...\n {BATCH.format(t=t)};  -- one batch per migration or run",
        )
    elif statement.kind == "DeleteStmt" and not node.get("whereClause"):
        yield Hit(
            "delete-without-where",
            f"DELETE FROM {t} without WHERE deletes every row",
            f"DELETE FROM {t} WHERE <condition>;\n"
            f"-- or, if every row must go, waive it on the line above:\n"
            f"-- sqlstage:allow delete-without-where <why>",
        )


CHECKS: tuple[Check, ...] = (renames, drops, cascade, truncate, whole_table_dml)
