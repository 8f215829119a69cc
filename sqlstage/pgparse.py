"""One parse of a migration's SQL with PostgreSQL's own grammar (pglast), shared.

The statement splitter, the check for statements that cannot run in a transaction and lint
all read the same parse tree, so each migration's text is parsed once per run:

    >>> [s.sql for s in statements("create table a (x int);\\n-- note\\ninsert into a values (1);")]
    ['create table a (x int)', 'insert into a values (1)']
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from sqlstage.sqltext import Statement, line_of, split_statements

Node = dict[str, Any]

#: statements PostgreSQL refuses inside a transaction block whatever their options
_ALWAYS_OUTSIDE = {
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
}


@lru_cache(maxsize=4096)
def parse_tree(text: str) -> Node:
    """pglast's JSON parse tree of `text` (`{"stmts": [...]}`); raises pglast's ParseError.

    Cached by text: callers must not change what it returns.
    """
    from pglast.parser import parse_sql_json

    tree: Node = json.loads(parse_sql_json(text))
    return tree


def statement_nodes(text: str) -> list[tuple[str, Node, int, int]]:
    """`(kind, node, start, end)` per statement; start and end are UTF-8 byte offsets, as
    pglast gives them (`kind` is `"IndexStmt"` and the like)."""
    size = len(text.encode("utf-8")) if not text.isascii() else len(text)
    out = []
    for raw in parse_tree(text).get("stmts", ()):
        start = raw.get("stmt_location", 0)  # the JSON leaves out zeros
        length = raw.get("stmt_len", 0)  # 0: up to the end of the text
        ((kind, node),) = raw["stmt"].items()
        out.append((kind, node, start, start + length if length else size))
    return out


def statements(text: str) -> list[Statement]:
    """The statements of `text`, as written, each with the line it starts on (leading
    comments and the closing `;` left out)."""
    return [statement for statement, _reason, _control in annotated(text)]


def annotated(text: str) -> list[tuple[Statement, str | None, str | None]]:
    """Each statement of `text` (as `statements` gives it) with its `no_transaction_reason`
    and its `transaction_control`, from one walk over the parse."""
    data = None if text.isascii() else text.encode("utf-8")

    def char(offset: int) -> int:
        return offset if data is None else len(data[:offset].decode("utf-8", "replace"))

    out = []
    for kind, node, start, end in statement_nodes(text):
        sql = text[char(start) : char(end)]
        stripped = sql.lstrip()
        begin = char(start) + len(sql) - len(stripped)
        statement = Statement(stripped.rstrip(), line_of(text, begin))
        out.append((statement, no_transaction_reason(kind, node), transaction_control(kind, node)))
    return out


def no_transaction_reason(kind: str, node: Node) -> str | None:
    """What keeps a statement out of a transaction block (`CREATE INDEX CONCURRENTLY`), or
    None when it can run inside one."""
    if kind in _ALWAYS_OUTSIDE:
        return _ALWAYS_OUTSIDE[kind]
    if kind == "IndexStmt" and node.get("concurrent"):
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and node.get("concurrent"):
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt":
        options = {p.get("DefElem", {}).get("defname") for p in node.get("params", ())}
        if "concurrently" in options:
            return "REINDEX CONCURRENTLY"
        if node.get("kind") in {"REINDEX_OBJECT_DATABASE", "REINDEX_OBJECT_SYSTEM"}:
            return "REINDEX DATABASE"
        return None
    if kind == "VacuumStmt" and node.get("is_vacuumcmd"):
        return "VACUUM"
    if kind == "AlterTableStmt":
        for wrapper in node.get("cmds", ()):
            command = wrapper.get("AlterTableCmd", {})
            partition = command.get("def", {}).get("PartitionCmd", {})
            if command.get("subtype") == "AT_DetachPartition" and partition.get("concurrent"):
                return "DETACH PARTITION CONCURRENTLY"
    return None


#: transaction control that would end the transaction sqlstage runs a migration in
_ENDS_TRANSACTION = {
    "TRANS_STMT_BEGIN": "BEGIN",
    "TRANS_STMT_START": "START TRANSACTION",
    "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK",
    "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED",
    "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}


def transaction_control(kind: str, node: Node) -> str | None:
    """`COMMIT` for a statement that begins or ends a transaction, else None (savepoints are
    fine inside a migration's transaction).

    >>> [transaction_control(k, n) for k, n, _, _ in statement_nodes("commit; savepoint a")]
    ['COMMIT', None]
    """
    if kind != "TransactionStmt":
        return None
    return _ENDS_TRANSACTION.get(str(node.get("kind")))


def controls(text: str) -> list[str | None]:
    """`transaction_control` of each statement of `text`, in order."""
    return [transaction_control(kind, node) for kind, node, _, _ in statement_nodes(text)]


def reasons(text: str) -> list[str | None]:
    """`no_transaction_reason` of each statement of `text`, in order."""
    return [no_transaction_reason(kind, node) for kind, node, _, _ in statement_nodes(text)]


def postgres_reason(sql: str) -> str | None:
    """The name of what keeps this statement out of a transaction block, or None.

    >>> postgres_reason("create index concurrently i on t (x)")
    'CREATE INDEX CONCURRENTLY'
    """
    from pglast.parser import ParseError

    try:
        return next((reason for reason in reasons(sql) if reason), None)
    except ParseError:
        return None  # the server will say what is wrong with it


#: cheap test before a parse: most migrations never mention the client's streams
_CLIENT_STREAM = re.compile(r"\b(?:stdin|stdout)\b", re.IGNORECASE)
_COPY_BY_TEXT = re.compile(
    r"copy\b.*\b(?:(?P<stdin>from\s+stdin)|to\s+stdout)\b", re.IGNORECASE | re.DOTALL
)


def client_copy(text: str) -> tuple[Statement, str] | None:
    """The first `COPY ... FROM STDIN` or `COPY ... TO STDOUT` of `text` and which of the two
    it is, or None.

    Such a COPY streams its data through the client (pg_dump writes the rows inline, ended
    by a `\\.` line), which a migration run does not do:

        >>> statement, kind = client_copy("create table t (x int);\\ncopy t from stdin;\\n1\\n")
        >>> statement.line, kind
        (2, 'COPY ... FROM STDIN')
    """
    if not _CLIENT_STREAM.search(text):
        return None
    # the data lines after the COPY do not confuse the split: they come after its `;`
    for statement in split_statements(text):
        kind = client_copy_kind(statement.sql)
        if kind:
            return statement, kind
    return None


def client_copy_kind(sql: str) -> str | None:
    """`COPY ... FROM STDIN` / `COPY ... TO STDOUT` for one statement that is one, else None;
    read from the parse tree (a string that mentions stdin is not one), from the text when
    the statement does not parse."""
    if sql[:4].lower() != "copy":
        return None
    from pglast.parser import ParseError

    try:
        nodes = statement_nodes(sql)
    except ParseError:
        match = _COPY_BY_TEXT.match(sql)
        return None if match is None else _copy_name(bool(match["stdin"]))
    if len(nodes) != 1 or nodes[0][0] != "CopyStmt" or nodes[0][1].get("filename"):
        return None
    return _copy_name(bool(nodes[0][1].get("is_from")))


def _copy_name(from_client: bool) -> str:
    return "COPY ... FROM STDIN" if from_client else "COPY ... TO STDOUT"


_CONCURRENT_INDEX = re.compile(r"\s*create\s+(?:unique\s+)?index\s+concurrently\b", re.IGNORECASE)
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_$]*$")


def invalid_index_hint(sql: str) -> str | None:
    """What to do after a failed or interrupted `CREATE INDEX CONCURRENTLY`: PostgreSQL keeps
    the index it was building, INVALID (unused by queries, still updated by every write), and
    a plain re-run then fails on its name; None for any other statement.

    >>> invalid_index_hint("CREATE INDEX CONCURRENTLY users_email_idx ON app.users (email)")
    'a failed CREATE INDEX CONCURRENTLY leaves its index app.users_email_idx behind, INVALID: drop it with `DROP INDEX CONCURRENTLY IF EXISTS app.users_email_idx;`'
    """  # noqa: E501 - a doctest's expected line
    if not _CONCURRENT_INDEX.match(sql):
        return None
    from pglast.parser import ParseError

    try:
        nodes = statement_nodes(sql)
    except ParseError:
        return None
    if len(nodes) != 1 or nodes[0][0] != "IndexStmt":
        return None
    node = nodes[0][1]
    if not node.get("idxname"):
        return (
            "a failed CREATE INDEX CONCURRENTLY leaves the index PostgreSQL named for it "
            "behind, INVALID (`sqlstage schema` marks it): drop it with "
            "`DROP INDEX CONCURRENTLY IF EXISTS <name>;`"
        )
    schema = node.get("relation", {}).get("schemaname")
    name = ".".join(_quoted(part) for part in (schema, node["idxname"]) if part)
    return (
        f"a failed CREATE INDEX CONCURRENTLY leaves its index {name} behind, INVALID: drop it "
        f"with `DROP INDEX CONCURRENTLY IF EXISTS {name};`"
    )


def _quoted(name: str) -> str:
    return name if _PLAIN_NAME.match(name) else '"' + name.replace('"', '""') + '"'
