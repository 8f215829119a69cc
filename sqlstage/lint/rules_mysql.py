"""Lint rules for MySQL and MariaDB: pure functions over a migration's text and statements.

The rules that matter there, each with the safe alternative:

- `mysql-alter-copies-table` (error): an ALTER TABLE on an existing table that the server can
  only do by copying the table (ALGORITHM=COPY: writes blocked until every row is copied), or
  an ALTER that says `ALGORITHM=COPY`. Safe: an online schema-change tool for a big table.
- `mysql-alter-without-algorithm` (warning): an ALTER that can run `ALGORITHM=INSTANT` or
  `INPLACE, LOCK=NONE` but does not say so, so the server would silently fall back to copying
  the table when it cannot (an older version, a table it must rebuild).
- `mysql-ddl-mixed-with-dml` (warning): DDL commits itself, so a file holding DDL and DML cannot
  be undone as a unit (sqlstage runs it statement by statement; a failure midway leaves the
  statements before it applied).
- `mysql-compound-without-delimiter` (error): a BEGIN ... END body with `;` inside and no
  DELIMITER line before it; the client (and sqlstage) would cut it at its first `;`.

    >>> [f.rule for f in lint_mysql("ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4;")]
    ['mysql-alter-copies-table']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from sqlstage.lint.catalogue import MYSQL_RULES, Rule, Severity
from sqlstage.lint.catalogue import RULES as CATALOGUE
from sqlstage.migration import (
    NO_TRANSACTION_DIRECTIVE,
    TRANSACTION_CONTROL,
    TRANSACTION_CONTROL_FIX,
)
from sqlstage.mysql_statements import implicit_commit, split_mysql, transaction_control
from sqlstage.sqltext import Statement

RULES = MYSQL_RULES
_SEVERITY: dict[str, Severity] = {rule.id: rule.severity for rule in RULES}
_WHY = {rule.id: rule.why for rule in RULES}
_ONLINE_TOOL = (
    "for a big table run it with an online schema-change tool (pt-online-schema-change or "
    "gh-ost), which copies in the background and swaps at the end; for a small one, say "
    "ALGORITHM=COPY and accept the write pause"
)


@dataclass(frozen=True)
class MysqlFinding:
    """One hit, shaped like lint.engine.Finding without the file (the caller adds it)."""

    rule: str
    severity: Severity
    line: int
    message: str
    statement: str
    why: str
    safe: str


class Algorithm(IntEnum):
    """The cheapest way the server can run a change, best first."""

    INSTANT = 0
    INPLACE = 1  # LOCK=NONE: reads and writes go on
    INPLACE_SHARED = 2  # LOCK=SHARED: reads go on, writes wait (FULLTEXT, SPATIAL)
    COPY = 3


@dataclass(frozen=True)
class Change:
    """One comma-separated part of an ALTER TABLE and what it costs."""

    text: str
    algorithm: Algorithm
    note: str = ""


def lint_mysql(text: str) -> list[MysqlFinding]:
    """Findings for one migration's forward SQL, in file order."""
    split = split_mysql(text)
    findings = [
        MysqlFinding(
            "mysql-compound-without-delimiter",
            "error",
            problem.line,
            problem.message,
            "",
            _WHY["mysql-compound-without-delimiter"],
            problem.fix,
        )
        for problem in split.compounds_without_delimiter
    ]
    created: set[str] = set()
    for statement in split.statements:
        findings += _alter_findings(statement, created)
        name = _created_table(statement.sql)
        if name:
            created.add(name)
    findings += _mixed(split.statements)
    if text.split("\n", 1)[0].strip().lower() != NO_TRANSACTION_DIRECTIVE:
        findings += _transaction_control(split.statements)
    return sorted(findings, key=lambda f: f.line)


def _transaction_control(statements: Sequence[Statement]) -> list[MysqlFinding]:
    """What apply refuses before anything runs, in its words."""
    return [
        MysqlFinding(
            "transaction-control",
            "error",
            statement.line,
            TRANSACTION_CONTROL.format(control=control),
            statement.sql,
            CATALOGUE["transaction-control"].why,
            f"-- {TRANSACTION_CONTROL_FIX}",
        )
        for statement in statements
        if (control := transaction_control(statement.sql))
    ]


# -- ALTER TABLE ------------------------------------------------------------------------
_ALTER = re.compile(
    r"\s*ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?P<table>`[^`]+`|\S+)\s+",
    re.I,
)
_CREATE_TABLE = re.compile(
    r"\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<table>`[^`]+`|[^\s(]+)",
    re.I,
)
_ALGORITHM = re.compile(r"\bALGORITHM\s*=?\s*(?P<value>\w+)", re.I)


def _name(raw: str) -> str:
    return raw.strip("`").split(".")[-1].strip("`").lower()


def _created_table(sql: str) -> str | None:
    found = _CREATE_TABLE.match(sql)
    return _name(found["table"]) if found else None


def _alter_findings(statement: Statement, created: set[str]) -> list[MysqlFinding]:
    found = _ALTER.match(statement.sql)
    if found is None or _name(found["table"]) in created:
        return []  # a table made in this migration is empty: any algorithm is instant
    table = found["table"]
    changes = [c for c in map(classify, _parts(statement.sql[found.end() :])) if c is not None]
    said = _ALGORITHM.search(statement.sql)
    if said and said["value"].upper() in ("INSTANT", "INPLACE", "NOCOPY"):
        return []  # the server refuses rather than copy
    worst = max(changes, key=lambda c: c.algorithm, default=None)
    if said and said["value"].upper() == "COPY":
        worst = Change("ALGORITHM=COPY", Algorithm.COPY)
    if worst is None:
        return []
    if worst.algorithm == Algorithm.COPY:
        return [_copies(statement, table, worst)]
    return [_unsaid(statement, table, worst)]


def _copies(statement: Statement, table: str, change: Change) -> MysqlFinding:
    detail = f" ({change.note})" if change.note else ""
    return MysqlFinding(
        "mysql-alter-copies-table",
        "error",
        statement.line,
        f"ALTER TABLE {table}: `{_short(change.text)}` copies the whole table{detail}; "
        "writes wait until every row is copied",
        statement.sql,
        _WHY["mysql-alter-copies-table"],
        _ONLINE_TOOL,
    )


def _unsaid(statement: Statement, table: str, change: Change) -> MysqlFinding:
    clause = {
        Algorithm.INSTANT: "ALGORITHM=INSTANT",
        Algorithm.INPLACE: "ALGORITHM=INPLACE, LOCK=NONE",
        Algorithm.INPLACE_SHARED: "ALGORITHM=INPLACE, LOCK=SHARED",
    }[change.algorithm]
    return MysqlFinding(
        "mysql-alter-without-algorithm",
        "warning",
        statement.line,
        f"ALTER TABLE {table} can run {clause} but does not say so"
        + (f" ({change.note})" if change.note else "")
        + "; without it the server copies the table when it cannot",
        statement.sql,
        _WHY["mysql-alter-without-algorithm"],
        f"{statement.sql.rstrip().rstrip(';')}, {clause};",
    )


def classify(part: str) -> Change | None:
    """What one ALTER TABLE part costs on InnoDB (MariaDB 10.4+, MySQL 8.0+).

    >>> classify("ADD COLUMN bio TEXT").algorithm.name, classify("ADD INDEX i (x)").algorithm.name
    ('INSTANT', 'INPLACE')
    """
    words = [w.upper() for w in re.findall(r"[A-Za-z_]+", part)[:6]]
    if not words or words[0] in ("ALGORITHM", "LOCK"):
        return None
    first, rest = words[0], words[1:]
    if first == "ADD":
        return _add(part, rest)
    if first == "DROP":
        if rest[:2] == ["PRIMARY", "KEY"]:
            return Change(part, Algorithm.COPY, "a table without its primary key is rebuilt")
        kind = rest[0] if rest else ""
        if kind in ("INDEX", "KEY", "FOREIGN", "CONSTRAINT", "CHECK"):
            return Change(part, Algorithm.INPLACE)
        return Change(part, Algorithm.INSTANT)  # DROP [COLUMN] x: instant since 10.4 / 8.0.29
    if first in ("MODIFY", "CHANGE"):
        # without the old definition we cannot tell: a new type copies, a longer VARCHAR
        # within the same length bytes or a new comment does not; the clause makes it safe
        return Change(part, Algorithm.INPLACE, "it copies the table if the column's type changes")
    if first in ("ALTER", "RENAME"):
        return Change(part, Algorithm.INSTANT)
    if first == "CONVERT":
        return Change(part, Algorithm.COPY, "every text column is rewritten")
    if first == "ENGINE":
        return Change(part, Algorithm.COPY, "unless the table already uses that engine")
    if first == "ORDER":
        return Change(part, Algorithm.COPY)
    return Change(part, Algorithm.INPLACE)  # table options: COMMENT, AUTO_INCREMENT, ...


def _add(part: str, rest: list[str]) -> Change:
    kind = rest[0] if rest else ""
    if kind == "CONSTRAINT":
        kind = next((w for w in rest[1:] if w in ("FOREIGN", "CHECK", "UNIQUE", "PRIMARY")), "")
    if kind == "FOREIGN":
        return Change(part, Algorithm.COPY, "unless foreign_key_checks = 0")
    if kind == "CHECK":
        return Change(part, Algorithm.COPY, "every row is checked")
    if kind in ("FULLTEXT", "SPATIAL"):
        return Change(part, Algorithm.INPLACE_SHARED)
    if kind in ("INDEX", "KEY", "UNIQUE", "PRIMARY"):
        return Change(part, Algorithm.INPLACE)
    return Change(part, Algorithm.INSTANT)  # ADD [COLUMN]


def _parts(text: str) -> list[str]:
    """ALTER TABLE's comma-separated changes (commas inside parentheses and quotes kept)."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip().rstrip(";"))
    return [p for p in parts if p]


# -- DDL and DML in one file ------------------------------------------------------------
_DML = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"})


def _mixed(statements: Sequence[Statement]) -> list[MysqlFinding]:
    ddl = next(((s, k) for s in statements if (k := implicit_commit(s.sql))), None)
    dml = next((s for s in statements if _first_word(s.sql) in _DML), None)
    if ddl is None or dml is None:
        return []
    first_ddl, kind = ddl
    return [
        MysqlFinding(
            "mysql-ddl-mixed-with-dml",
            _SEVERITY["mysql-ddl-mixed-with-dml"],
            dml.line,
            f"this migration mixes DDL (line {first_ddl.line}: {kind}) with DML (line "
            f"{dml.line}: {_first_word(dml.sql)}); MySQL commits the DDL on its own, so the "
            "migration cannot be undone as a unit (sqlstage runs it statement by statement)",
            dml.sql,
            _WHY["mysql-ddl-mixed-with-dml"],
            "move the data change to a migration of its own: DML alone runs in one transaction "
            "with its history row, and the DDL migration before it runs statement by statement",
        )
    ]


def _first_word(sql: str) -> str:
    words = _words(sql)
    return words[0] if words else ""


def _words(sql: str) -> list[str]:
    return [w.upper() for w in re.findall(r"[A-Za-z_]+", sql[:80])]


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def rules() -> Iterable[Rule]:
    """The catalogue entries (kept in lint.catalogue with the others)."""
    return RULES
