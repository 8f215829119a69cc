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
    pgparse.parse_tree.cache_clear()
    result = commands.apply(project, "dev", commands.ApplyOptions(yes=True))  # lints too

    assert result.plan.findings == ()  # the seed's files: nothing worth saying (issue 14)

    assert pg_database.history()[-1] == "004_add_status_column"
    # each forward section once (split, transaction check, lint), each rollback once (lint)
    assert pgparse.parse_tree.cache_info().misses == 8
