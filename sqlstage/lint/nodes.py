"""Small readers over pglast's JSON parse tree (`parse_sql_json`): plain dicts and lists.

The JSON form leaves out fields at their default (`concurrent` is absent when false), so every
reader uses `.get`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from sqlstage.pgparse import ParsedStatement, no_transaction_reason

Node = dict[str, Any]

_SIMPLE_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


def table(range_var: Node | None) -> str:
    """The relation's name as PostgreSQL resolves it (unquoted names are already folded)."""
    return str(range_var.get("relname", "")) if range_var else ""


def ident(name: str) -> str:
    """An identifier ready to paste into SQL: `users` stays, `User Table` gets quotes."""
    return name if _SIMPLE_IDENT.match(name) else '"' + name.replace('"', '""') + '"'


def strings(items: list[Node] | None) -> list[str]:
    """`[{"String": {"sval": "a"}}, ...]` -> `["a", ...]`"""
    return [item["String"].get("sval", "") for item in items or () if "String" in item]


def type_name(column: Node) -> str:
    """The column's type as the parser names it: `int4`, `varchar`, `serial`, `timestamptz`."""
    names = strings(column.get("typeName", {}).get("names"))
    return names[-1] if names else ""


def has_length(column: Node) -> bool:
    return bool(column.get("typeName", {}).get("typmods"))


def constraints(column: Node) -> list[Node]:
    return [c["Constraint"] for c in column.get("constraints", ()) if "Constraint" in c]


def contype(constraint: Node) -> str:
    return str(constraint.get("contype", "")).removeprefix("CONSTR_")


def function_names(node: Any) -> Iterator[str]:
    """Every function called anywhere inside an expression: `nextval`, `random`, ..."""
    if isinstance(node, dict):
        call = node.get("FuncCall")
        if call is not None:
            names = strings(call.get("funcname"))
            if names:
                yield names[-1]
        for value in node.values():
            yield from function_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from function_names(value)


def column_defs(elements: list[Node] | None) -> list[Node]:
    return [e["ColumnDef"] for e in elements or () if "ColumnDef" in e]


def table_constraints(elements: list[Node] | None) -> list[Node]:
    return [e["Constraint"] for e in elements or () if "Constraint" in e]


def alter_commands(statement: Node) -> list[Node]:
    return [c["AlterTableCmd"] for c in statement.get("cmds", ()) if "AlterTableCmd" in c]


def subtype(command: Node) -> str:
    return str(command.get("subtype", "")).removeprefix("AT_")


def drop_names(statement: Node) -> list[str]:
    """The last name part of each object a DROP names: `DROP TABLE a.b, c` -> `["b", "c"]`."""
    names = []
    for item in statement.get("objects", ()):
        parts = strings(item["List"].get("items")) if "List" in item else strings([item])
        if parts:
            names.append(parts[-1])
    return names


def needs_no_transaction(statement: ParsedStatement) -> bool:
    """True for a statement PostgreSQL refuses inside a transaction block."""
    return no_transaction_reason(statement) is not None


def rewrite(sql: str, change: Callable[[Any], Any]) -> str:
    """Parse one statement into pglast's object tree, let `change` edit it (or return a part
    of it to print instead), and print the result back as SQL. Only used for findings."""
    from pglast import parse_sql
    from pglast.stream import RawStream

    node: Any = parse_sql(sql)[0].stmt
    picked = change(node)
    return str(RawStream()(node if picked is None else picked))
