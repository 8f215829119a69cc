"""One parse per migration, shared by the splitter, the no-transaction check and lint."""

from __future__ import annotations

import pytest
from pglast import split

from sqlstage import commands, pgparse
from sqlstage.project import Project
from tests.conftest import Database, ProjectDir

TEXTS = [
    "-- héllo ünï\nCREATE TABLE a (x int); /* c */\n\nCREATE FUNCTION f() RETURNS int AS $$ "
    "select 1; -- rollback\n $$ LANGUAGE sql;\nINSERT INTO a VALUES ('é;')",
    "select 1",
    "VACUUM (ANALYZE) t; REINDEX DATABASE x; reindex (concurrently) table t;",
]


@pytest.mark.parametrize("text", TEXTS)
def test_statements_are_pglasts_own_split(text: str) -> None:
    assert [s.sql for s in pgparse.statements(text)] == list(split(text))


def test_lines_count_from_the_first_token_after_comments() -> None:
    assert [s.line for s in pgparse.statements(TEXTS[0])] == [2, 4, 6]


def test_reasons_per_statement() -> None:
    assert pgparse.reasons(TEXTS[2]) == ["VACUUM", "REINDEX DATABASE", "REINDEX CONCURRENTLY"]


def test_plan_lint_and_apply_parse_each_migration_once(
    four: ProjectDir, pg_database: Database
) -> None:
    four.configure(dev={"url": pg_database.url})
    project = Project.load(four.root)
    pgparse.parse.cache_clear()
    result = commands.apply(project, "dev", commands.ApplyOptions(yes=True))  # lints too

    assert result.plan.findings == ()  # the seed's files: nothing worth saying (issue 14)

    assert pg_database.history()[-1] == "004_add_status_column"
    # each forward section once (split, transaction check, lint), each rollback once (lint)
    assert pgparse.parse.cache_info().misses == 8


# texts whose JSON tree could fool a cut made by looking at the text: string literals shaped
# like pglast's own JSON, non-ASCII text, no final `;`, empty statements, comments only
CUT_TEXTS = [
    *TEXTS,
    "",
    "-- only a comment",
    ";;",
    'select \'{"stmt":{"X":1}},"stmt_len":3}\' ; select 2;',
    'create table "{""stmt"":{""Y"":" (x int default \'"},{"stmt":{"\');',
    "insert into t values ('é', $$ }]} $$); commit",
    "/* é */ create index concurrently i on t (x);\nvacuum full t\n-- trailing",
    "begin; savepoint a; rollback to a; commit;",
]


@pytest.mark.parametrize("text", CUT_TEXTS)
def test_the_cut_tree_is_the_decoded_tree(text: str) -> None:
    from pglast.parser import parse_sql_json

    tree = parse_sql_json(text)
    size = len(text.encode("utf-8"))
    cut = pgparse._cut(tree, size)

    assert cut is not None
    decoded = pgparse._decoded(tree, size)
    assert [(s.kind, s.start, s.end) for s in cut] == [(s.kind, s.start, s.end) for s in decoded]
    assert [s.node for s in cut] == [s.node for s in decoded]


def test_a_tree_of_another_shape_is_decoded_whole() -> None:
    assert pgparse._cut('{"version":1,"stmts":[{"stmt":{"X":{}},"other":1}]}', 9) is None
    assert pgparse._cut('{"stmts":[{"stmt":{"X":{}}}],"version":1}', 9) is None


def test_nodes_are_decoded_only_when_read() -> None:
    """Issue 15: a statement's tree is decoded only where a rule or the no-transaction check
    looks (the parse is cached, so what lint decoded stays decoded)."""
    from pathlib import Path

    from sqlstage.lint import LintOptions, lint_text

    text = "create table t (x int);\ninsert into t values (1);\ncreate index i on t (x);\n"
    lint_text(Path("001_a.sql"), text, LintOptions())
    create, insert, index = pgparse.parse(text)

    assert pgparse.reasons(text) == [None, None, None]
    assert "node" not in vars(insert)  # no rule nor check looks into an INSERT
    assert "node" in vars(create) and index.node["idxname"] == "i"
