"""One parse of a migration's SQL with PostgreSQL's own grammar (pglast), shared.

The statement splitter, the check for statements that cannot run in a transaction and lint
all read the same parse tree, so each migration's text is parsed once per run:

    >>> [s.sql for s in statements("create table a (x int);\\n-- note\\ninsert into a values (1);")]
    ['create table a (x int)', 'insert into a values (1)']
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
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


@dataclass(frozen=True)
class ParsedStatement:
    """One statement of a parse: its kind (`"IndexStmt"` and the like), where it is (UTF-8
    byte offsets, as pglast gives them: `start` at its first token, `end` after its last, before
    the `;`) and its node, decoded from pglast's JSON the first time it is read.

    Most statements of a migration are never looked at (no rule reads an `INSERT`), and
    decoding the JSON costs more than the parse itself.
    """

    kind: str
    start: int
    end: int
    node_json: str = field(repr=False)  # `{"IndexStmt":{...}}`

    @cached_property
    def node(self) -> Node:
        """pglast's JSON node of the statement (the JSON leaves out fields at their default)."""
        node: Node = json.loads(self.node_json)[self.kind]
        return node


@lru_cache(maxsize=4096)
def parse(text: str) -> tuple[ParsedStatement, ...]:
    """The statements of `text` as PostgreSQL's grammar reads them; raises pglast's ParseError.

    Cached by text (the splitter, the no-transaction check and lint share it):

        >>> [(s.kind, s.start, s.end) for s in parse("select 1;\\n  vacuum t")]
        [('SelectStmt', 0, 8), ('VacuumStmt', 12, 20)]
    """
    from pglast.parser import parse_sql_json

    tree = parse_sql_json(text)
    size = len(text) if text.isascii() else len(text.encode("utf-8"))
    return _cut(tree, size) or _decoded(tree, size)


#: where a statement's JSON starts: only a RawStmt has a `stmt` key, and inside a JSON string
#: every `"` is escaped, so a string literal cannot look like one
_RAW_STMT = re.compile(r'\{"stmt":\{"(\w+)":')
#: what follows a statement's node in its RawStmt (the JSON leaves out zeros)
_EXTENT = re.compile(r'(?:,"stmt_location":(\d+))?(?:,"stmt_len":(\d+))?')


def _cut(tree: str, size: int) -> tuple[ParsedStatement, ...] | None:
    """The statements of pglast's JSON `tree`, each node left undecoded; None when the tree
    is not shaped as expected (`{"version":N,"stmts":[{"stmt":{...},...},...]}`)."""
    starts = [(found.start(), found[1]) for found in _RAW_STMT.finditer(tree)]
    if not tree.endswith("]}"):
        return None
    out = []
    for index, (begin, kind) in enumerate(starts):
        # the RawStmt ends before the `,` of the next one, or before the closing `]}`
        end = starts[index + 1][0] - 1 if index + 1 < len(starts) else len(tree) - 2
        close = tree.rfind("}", begin, end - 1) + 1  # after the statement's node
        extent = _EXTENT.fullmatch(tree, close, end - 1)
        if tree[end] not in ",]" or tree[end - 1] != "}" or extent is None:
            return None
        start, length = int(extent[1] or 0), int(extent[2] or 0)
        end_offset = start + length if length else size
        out.append(ParsedStatement(kind, start, end_offset, tree[begin + 8 : close]))
    return tuple(out)


def _decoded(tree: str, size: int) -> tuple[ParsedStatement, ...]:
    """The statements of pglast's JSON `tree`, decoded whole: what `_cut` must agree with."""
    out = []
    for raw in json.loads(tree).get("stmts", ()):
        start = raw.get("stmt_location", 0)  # the JSON leaves out zeros
        length = raw.get("stmt_len", 0)  # 0: up to the end of the text
        ((kind, node),) = raw["stmt"].items()
        node_json = json.dumps({kind: node})
        out.append(ParsedStatement(kind, start, start + length if length else size, node_json))
    return tuple(out)


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
    for parsed in parse(text):
        sql = text[char(parsed.start) : char(parsed.end)]
        stripped = sql.lstrip()
        begin = char(parsed.start) + len(sql) - len(stripped)
        statement = Statement(stripped.rstrip(), line_of(text, begin))
        out.append((statement, no_transaction_reason(parsed), transaction_control(parsed)))
    return out


def no_transaction_reason(statement: ParsedStatement) -> str | None:
    """What keeps a statement out of a transaction block (`CREATE INDEX CONCURRENTLY`), or
    None when it can run inside one (its node is read only for the kinds that can be)."""
    kind = statement.kind
    if kind in _ALWAYS_OUTSIDE:
        return _ALWAYS_OUTSIDE[kind]
    if kind not in _OUTSIDE_BY_OPTION:
        return None
    node = statement.node
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


#: statements that some of their options keep out of a transaction block
_OUTSIDE_BY_OPTION = {"IndexStmt", "DropStmt", "ReindexStmt", "VacuumStmt", "AlterTableStmt"}

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


def transaction_control(statement: ParsedStatement) -> str | None:
    """`COMMIT` for a statement that begins or ends a transaction, else None (savepoints are
    fine inside a migration's transaction).

    >>> [transaction_control(s) for s in parse("commit; savepoint a")]
    ['COMMIT', None]
    """
    if statement.kind != "TransactionStmt":
        return None
    return _ENDS_TRANSACTION.get(str(statement.node.get("kind")))


def controls(text: str) -> list[str | None]:
    """`transaction_control` of each statement of `text`, in order."""
    return [transaction_control(statement) for statement in parse(text)]


def reasons(text: str) -> list[str | None]:
    """`no_transaction_reason` of each statement of `text`, in order."""
    return [no_transaction_reason(statement) for statement in parse(text)]


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
    # `in` over a lowered copy is ~15x cheaper than the regex; both t and d fold only from
    # T and D, so no text the regex matches is missed
    if "td" not in text.lower() or not _CLIENT_STREAM.search(text):
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
        parsed = parse(sql)
    except ParseError:
        match = _COPY_BY_TEXT.match(sql)
        return None if match is None else _copy_name(bool(match["stdin"]))
    if len(parsed) != 1 or parsed[0].kind != "CopyStmt" or parsed[0].node.get("filename"):
        return None
    return _copy_name(bool(parsed[0].node.get("is_from")))


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
        parsed = parse(sql)
    except ParseError:
        return None
    if len(parsed) != 1 or parsed[0].kind != "IndexStmt":
        return None
    node = parsed[0].node
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
