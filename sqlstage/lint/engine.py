"""Parse a migration once, run the rules over its statements, and turn hits into findings.

    ALTER TABLE posts ADD COLUMN status text NOT NULL;

gives one `Finding(rule="add-column-not-null-no-default", severity="error", line=1, column=26,
...)` whose `safe` holds the SQL to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlstage.lint import rules_changes, rules_locks, rules_tables
from sqlstage.lint.catalogue import RULES, Severity
from sqlstage.lint.context import (
    Check,
    Context,
    Created,
    Hit,
    LintOptions,
    Source,
    Statement,
    checks_for,
)
from sqlstage.lint.nodes import Node, needs_no_transaction, table

if TYPE_CHECKING:
    from sqlstage.migration import Migration

DIALECTS = ("postgresql", "sqlite", "mysql")
NO_TRANSACTION = re.compile(r"^\s*--\s*sqlstage:no-transaction\b", re.IGNORECASE)
WAIVER = re.compile(
    r"^\s*--\s*sqlstage:allow\s+(?P<rules>[\w-]+(?:\s*,\s*[\w-]+)*)(?P<reason>.*)$", re.IGNORECASE
)


@dataclass(frozen=True)
class Finding:
    """One dangerous statement: where it is, why it hurts, and the SQL to write instead."""

    rule: str
    severity: Severity
    path: Path
    line: int
    column: int
    message: str
    statement: str
    why: str
    safe: str
    waived: str | None = None  # the reason given in an in-file waiver

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and self.waived is None

    def as_dict(self, file: str) -> dict[str, Any]:
        """The stable `--json` shape of a finding (docs/lint.md)."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "file": file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "statement": self.statement,
            "why": self.why,
            "safe_alternative": self.safe,
            "waived": self.waived,
        }


def lint_text(
    path: Path, text: str, options: LintOptions, earlier: Created | None = None
) -> list[Finding]:
    """Findings for one migration's forward SQL, in file order; `earlier` holds what the
    plan's earlier migrations created, and learns what this one creates. MySQL has its own
    rules (rules_mysql); SQLite has none yet and returns nothing."""
    if options.dialect == "mysql":
        return _mysql_findings(path, text, options)
    if options.dialect != "postgresql":
        return []
    found = _parsed(path, text)
    if isinstance(found, list):
        return found
    source, statements = found
    # the context adds what this migration creates to `earlier`'s own sets: copying them
    # for each file made a plan of 1,000 files quadratic
    context = _context(options, source, statements, earlier or Created())
    hits: list[tuple[int, Hit]] = []
    for index, statement in enumerate(statements):
        for check in _checks(statement.kind):
            for hit in check(statement, context):
                hits.append((index, hit))
        _learn(statement, context)
    return _findings(path, context, hits)


def lint_rollback(migration: Migration, options: LintOptions) -> list[Finding]:
    """Findings for the migration's rollback section: what would make it fail when it is
    needed, a syntax error or a statement the run refuses. Its DROPs are the point of it, so
    the lock rules stay quiet. Lines are the file's."""
    text, first_line = migration.rollback, migration.rollback_line
    if options.dialect != "postgresql" or not text or first_line is None:
        return []
    path = migration.path
    found = _parsed(path, text)
    if not isinstance(found, list):
        source, statements = found
        context = _context(options, source, statements, Created())
        if migration.no_transaction:  # the file's first line speaks for both sections
            context.wrapped, context.directive = False, True
        hits = [
            (index, hit)
            for index, statement in enumerate(statements)
            for check in rules_locks.ROLLBACK_CHECKS
            for hit in check(statement, context)
        ]
        found = _findings(path, context, hits)
    return [replace(f, line=f.line + first_line) for f in found]


def lint_plan(migrations: Sequence[Migration], options: LintOptions) -> list[Finding]:
    """Findings for the migrations one run applies, in order: each forward section knows
    what the earlier ones created, and each rollback section is checked too."""
    _check_rule_names(options)
    earlier = Created()
    findings: list[Finding] = []
    for migration in migrations:
        findings.extend(lint_text(migration.path, migration.forward, options, earlier))
        findings.extend(lint_rollback(migration, options))
    return findings


def _parsed(path: Path, text: str) -> tuple[Source, list[Statement]] | list[Finding]:
    """The text's statements, or the syntax-error finding when it does not parse."""
    from pglast.parser import ParseError

    from sqlstage.pgparse import parse

    source = Source(text)
    try:
        statements = parse(text)  # shared with the runner's splitter (cached)
    except ParseError as error:
        return _syntax_error(path, source, error)
    return source, list(statements)


def _mysql_findings(path: Path, text: str, options: LintOptions) -> list[Finding]:
    """rules_mysql's hits as findings, with `--disable`/`--warn` and the waiver line right
    above a statement (`-- sqlstage:allow RULE reason`) honoured."""
    from sqlstage.lint.rules_mysql import lint_mysql

    lines = text.split("\n")
    findings = []
    for hit in lint_mysql(text):
        if hit.rule in options.disable:
            continue
        severity: Severity = "warning" if hit.rule in options.warn else hit.severity
        waived = None
        above = WAIVER.match(lines[hit.line - 2]) if hit.line >= 2 else None
        if above and hit.rule in re.split(r"\s*,\s*", above["rules"]) and above["reason"].strip():
            waived = above["reason"].strip()
        findings.append(
            Finding(
                hit.rule,
                severity,
                path,
                hit.line,
                1,
                hit.message,
                hit.statement,
                hit.why,
                hit.safe,
                waived,
            )
        )
    return sorted(findings, key=lambda f: (f.line, f.column, f.rule))


@cache
def _checks(kind: str) -> tuple[Check, ...]:
    """The checks for a statement of `kind`, in the order their findings are listed."""
    every = (*rules_tables.CHECKS, *rules_locks.CHECKS, *rules_changes.CHECKS)
    return checks_for(kind, every)


def _context(
    options: LintOptions, source: Source, statements: list[Statement], earlier: Created
) -> Context:
    text, newline = source.text, source.text.find("\n")
    directive = NO_TRANSACTION.match(text, 0, newline if newline >= 0 else len(text)) is not None
    only_outside = all(needs_no_transaction(s) for s in statements)
    context = Context(
        options,
        source,
        statements,
        wrapped=not (directive or only_outside),
        directive=directive,
        created_tables=earlier.tables,
        created_indexes=earlier.indexes,
        created_views=earlier.views,
    )
    created: set[str] = set()  # so far in this file
    for statement in statements:  # a node is decoded only for the kinds looked at
        if statement.kind in _CREATES_TABLE:
            created.add(_created_table(statement.node))
        elif statement.kind == "ViewStmt":
            context.created_views.add(table(statement.node.get("view")))
        elif statement.kind == "AlterTableStmt":
            name = table(statement.node.get("relation"))
            if name not in created and name not in earlier.tables:
                context.ddl_tables.add(name)
    return context


_CREATES_TABLE = {"CreateStmt", "CreateTableAsStmt"}
_BEGINS = {"TRANS_STMT_BEGIN", "TRANS_STMT_START"}


def _created_table(node: Node) -> str:
    return table(node.get("relation") or node.get("into", {}).get("rel"))


def _learn(statement: Statement, context: Context) -> None:
    """Remember what this statement created or set, for the statements after it."""
    from sqlstage.lint.nodes import alter_commands, subtype

    kind = statement.kind
    if kind in _CREATES_TABLE:
        context.created_tables.add(_created_table(statement.node))
    elif kind == "IndexStmt" and statement.node.get("idxname"):
        context.created_indexes.add(statement.node["idxname"])
    elif kind == "AlterTableStmt":
        name = table(statement.node.get("relation"))
        for command in alter_commands(statement.node):
            if subtype(command) == "ValidateConstraint":
                context.validated_tables.add(name)
            elif subtype(command) == "AddConstraint":
                context.constrained_tables.add(name)
    elif kind == "VariableSetStmt" and statement.node.get("name") == "lock_timeout":
        context.lock_timeout = True
    elif kind == "TransactionStmt":
        context.explicit_transaction = statement.node.get("kind") in _BEGINS


def _findings(path: Path, context: Context, hits: list[tuple[int, Hit]]) -> list[Finding]:
    options = context.options
    findings: list[Finding] = []
    waivers: dict[int, dict[str, str]] = {}
    for index, hit in hits:
        if hit.rule in options.disable:
            continue
        if index not in waivers:
            waivers[index] = _waivers_for(path, context, index, findings)
        statement = context.statements[index]
        rule = RULES[hit.rule]
        line, column = context.source.position(
            statement.start if hit.location is None else hit.location
        )
        severity: Severity = "warning" if hit.rule in options.warn else rule.severity
        findings.append(
            Finding(
                hit.rule,
                severity,
                path,
                line,
                column,
                hit.message,
                context.sql(statement),
                rule.why,
                hit.safe,
                waivers[index].get(hit.rule),
            )
        )
    return sorted(findings, key=lambda f: (f.line, f.column, f.rule))


def _waivers_for(
    path: Path, context: Context, index: int, findings: list[Finding]
) -> dict[str, str]:
    """`-- sqlstage:allow RULE[, RULE] reason` lines between the previous statement and this
    one: rule id -> reason. Waivers that name unknown rules or give no reason are findings."""
    source = context.source
    first_line = source.position(context.statements[index].start)[0]
    previous_end = source.position(context.statements[index - 1].end)[0] + 1 if index else 1
    lines = source.text.split("\n")
    waived: dict[str, str] = {}
    for number in range(previous_end, first_line):
        match = WAIVER.match(lines[number - 1])
        if match is None:
            continue
        reason = match.group("reason").strip()
        rules = [r.strip().lower() for r in match.group("rules").split(",")]
        problem = _waiver_problem(rules, reason)
        if problem:
            if "bad-waiver" not in context.options.disable:
                findings.append(_bad_waiver(path, number, lines[number - 1], problem))
            continue
        waived.update(dict.fromkeys(rules, reason))
    return waived


def _waiver_problem(rules: list[str], reason: str) -> str | None:
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        return f"unknown rule '{unknown[0]}' in the waiver"
    if not reason:
        return "the waiver gives no reason, so it is ignored"
    return None


def _bad_waiver(path: Path, line: int, text: str, problem: str) -> Finding:
    rule = RULES["bad-waiver"]
    return Finding(
        rule.id,
        rule.severity,
        path,
        line,
        1,
        problem,
        text.strip(),
        rule.why,
        "-- sqlstage:allow RULE[, RULE] why this is safe here",
    )


def _syntax_error(path: Path, source: Source, error: Exception) -> list[Finding]:
    # pglast's ParseError carries (message, 0-based character index)
    message = error.args[0] if error.args else "syntax error"
    offset = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else 0
    text = source.text
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    rule = RULES["syntax-error"]
    return [
        Finding(
            rule.id,
            rule.severity,
            path,
            line,
            column,
            str(message),
            text.split("\n")[line - 1].strip(),
            rule.why,
            "Fix the statement; `psql -f` on a scratch database shows the server's own message.",
        )
    ]


def lint_all(items: Sequence[tuple[Path, str]], options: LintOptions) -> list[Finding]:
    """Findings for several migrations (path, forward SQL), each parsed once, in order, each
    on its own (as if every earlier one had been applied long ago)."""
    _check_rule_names(options)
    findings: list[Finding] = []
    for path, text in items:
        findings.extend(lint_text(path, text, options))
    return findings


def _check_rule_names(options: LintOptions) -> None:
    unknown = sorted((options.disable | options.warn) - RULES.keys())
    if unknown:
        from sqlstage.errors import ConfigError

        raise ConfigError(
            f"[lint] names unknown rule '{unknown[0]}'",
            "the rule ids are listed by `sqlstage lint --rules` and in docs/lint.md",
        )
