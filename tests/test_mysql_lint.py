"""MySQL lint rules (sqlstage.lint.rules_mysql), with the server as the judge of what an ALTER
costs: a change said to be INSTANT must run with ALGORITHM=INSTANT, one said to be INPLACE
with ALGORITHM=INPLACE, LOCK=NONE, and one said to copy must be refused with ALGORITHM=INPLACE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver, StatementError
from sqlstage.lint.rules_mysql import Algorithm, classify, lint_mysql
from sqlstage.urls import parse_url
from tests.conftest import Database, ProjectDir

TABLES = """
CREATE TABLE parents (id INT PRIMARY KEY);
CREATE TABLE t (
  id INT PRIMARY KEY, parent_id INT, name VARCHAR(100), body TEXT, score INT, old INT,
  spare INT,
  KEY t_old (old), CONSTRAINT t_parent FOREIGN KEY (parent_id) REFERENCES parents (id)
) DEFAULT CHARSET=latin1;
INSERT INTO parents VALUES (1);
INSERT INTO t VALUES (1, 1, 'a', 'b', 3, 4, 5);
"""
CHANGES = {
    "ADD COLUMN bio VARCHAR(200)": Algorithm.INSTANT,
    "ADD COLUMN first_one INT FIRST": Algorithm.INSTANT,
    "DROP COLUMN spare": Algorithm.INSTANT,
    "RENAME COLUMN score TO points": Algorithm.INSTANT,
    "ALTER COLUMN score SET DEFAULT 0": Algorithm.INSTANT,
    "ADD INDEX t_name (name)": Algorithm.INPLACE,
    "ADD UNIQUE KEY t_name_u (name)": Algorithm.INPLACE,
    "DROP INDEX t_old": Algorithm.INPLACE,
    "DROP FOREIGN KEY t_parent": Algorithm.INPLACE,
    "MODIFY name VARCHAR(100) COMMENT 'the name'": Algorithm.INPLACE,
    "ADD FULLTEXT INDEX t_body (body)": Algorithm.INPLACE_SHARED,
    "CONVERT TO CHARACTER SET utf8mb4": Algorithm.COPY,
    "ADD CONSTRAINT t_parent2 FOREIGN KEY (score) REFERENCES parents (id)": Algorithm.COPY,
    "DROP PRIMARY KEY": Algorithm.COPY,
}
CLAUSE = {
    Algorithm.INSTANT: "ALGORITHM=INSTANT",
    Algorithm.INPLACE: "ALGORITHM=INPLACE, LOCK=NONE",
    Algorithm.INPLACE_SHARED: "ALGORITHM=INPLACE, LOCK=SHARED",
}


@pytest.fixture
def driver(mysql_database: Database, tmp_path: Path) -> Iterator[Driver]:
    with connect(parse_url(mysql_database.url, tmp_path, "dev")) as opened:
        for statement in opened.statements(TABLES):
            opened.execute(statement.sql)
        yield opened


@pytest.mark.parametrize("change", CHANGES)
def test_what_an_alter_costs_is_what_the_server_says(driver: Driver, change: str) -> None:
    expected = CHANGES[change]
    found = classify(change)
    assert found is not None and found.algorithm == expected
    if expected == Algorithm.COPY:
        with pytest.raises(StatementError, match="not supported"):
            driver.execute(f"ALTER TABLE t {change}, ALGORITHM=INPLACE")
    else:
        driver.execute(f"ALTER TABLE t {change}, {CLAUSE[expected]}")


def test_a_copying_alter_is_an_error_that_names_the_online_tool() -> None:
    [finding] = lint_mysql(
        "SELECT 1;\nALTER TABLE users MODIFY id BIGINT, CONVERT TO CHARACTER SET utf8mb4;"
    )
    assert (finding.rule, finding.severity, finding.line) == (
        "mysql-alter-copies-table",
        "error",
        2,
    )
    assert "CONVERT TO CHARACTER SET utf8mb4" in finding.message
    assert "pt-online-schema-change" in finding.safe and "gh-ost" in finding.safe


def test_an_alter_that_could_be_instant_is_told_to_say_so(driver: Driver) -> None:
    [finding] = lint_mysql("ALTER TABLE t ADD COLUMN bio TEXT;")
    assert (finding.rule, finding.severity) == ("mysql-alter-without-algorithm", "warning")
    assert finding.safe == "ALTER TABLE t ADD COLUMN bio TEXT, ALGORITHM=INSTANT;"
    driver.execute(finding.safe.rstrip(";"))  # the safe SQL runs on the server


def test_a_column_change_is_told_to_say_inplace_so_the_server_refuses_a_copy(
    driver: Driver,
) -> None:
    [finding] = lint_mysql("ALTER TABLE t MODIFY score BIGINT;")
    assert finding.rule == "mysql-alter-without-algorithm"
    assert "copies the table if the column's type changes" in finding.message
    assert finding.safe == "ALTER TABLE t MODIFY score BIGINT, ALGORITHM=INPLACE, LOCK=NONE;"
    with pytest.raises(StatementError, match="not supported"):
        driver.execute(finding.safe.rstrip(";"))  # refused, instead of copying silently


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE t ADD COLUMN bio TEXT, ALGORITHM=INSTANT;",
        "ALTER TABLE t ADD INDEX i (name), ALGORITHM=INPLACE, LOCK=NONE;",
        "CREATE TABLE fresh (id INT);\nALTER TABLE fresh MODIFY id BIGINT;",
        "INSERT INTO t VALUES (2, 1, 'x', 'y', 1, 1, 1);\nUPDATE t SET score = 2;",
    ],
)
def test_safe_migrations_have_no_findings(sql: str) -> None:
    assert lint_mysql(sql) == []


def test_ddl_mixed_with_dml_is_a_warning_at_the_dml() -> None:
    sql = "CREATE TABLE tags (id INT PRIMARY KEY);\n\nINSERT INTO tags VALUES (1);\n"
    [finding] = lint_mysql(sql)
    assert (finding.rule, finding.line, finding.severity) == (
        "mysql-ddl-mixed-with-dml",
        3,
        "warning",
    )
    assert "line 1: CREATE TABLE" in finding.message and "migration of its own" in finding.safe


def test_a_compound_statement_without_delimiter_is_an_error_with_the_delimiter_form() -> None:
    sql = "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    findings = [f for f in lint_mysql(sql) if f.rule == "mysql-compound-without-delimiter"]
    assert [(f.line, f.severity) for f in findings] == [(1, "error")]
    assert "DELIMITER $$" in findings[0].safe


def test_sqlstage_lint_dialect_mysql_reports_and_fails_on_a_copying_alter(
    project: ProjectDir,
) -> None:
    path = project.write("001_convert.sql", "ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4;\n")
    result = project.run("lint", "--dialect", "mysql", str(path))
    assert result.exit_code == 1, result.output
    assert "001_convert.sql:1" in result.output and "mysql-alter-copies-table" in result.output
    as_postgres = project.run("lint", "--dialect", "postgresql", str(path))
    assert "mysql-alter-copies-table" not in as_postgres.output


def test_a_mysql_project_lints_as_mysql_and_honours_a_waiver(
    project: ProjectDir, mysql_database: Database
) -> None:
    project.configure(dev={"url": mysql_database.url})
    path = project.write(
        "001_convert.sql",
        "-- sqlstage:allow mysql-alter-copies-table the table has 12 rows\n"
        "ALTER TABLE users CONVERT TO CHARACTER SET utf8mb4;\n",
    )
    result = project.run("lint", str(path))
    assert result.exit_code == 0, result.output
    assert "12 rows" in result.output or "waived" in result.output.lower()


def test_the_rule_list_holds_the_mysql_rules(project: ProjectDir) -> None:
    result = project.run("lint", "--rules")
    assert result.exit_code == 0
    for rule in ("mysql-alter-copies-table", "mysql-compound-without-delimiter"):
        assert rule in result.output


def test_transaction_control_is_an_error_in_the_words_apply_uses(
    project: ProjectDir, mysql_database: Database
) -> None:
    sql = "CREATE TABLE t1 (id INT);\nSTART TRANSACTION;\nINSERT INTO t1 VALUES (1);\nCOMMIT;\n"
    found = [(f.rule, f.line, f.message.split(":")[0]) for f in lint_mysql(sql)]
    assert ("transaction-control", 2, "START TRANSACTION in a migration") in found
    assert ("transaction-control", 4, "COMMIT in a migration") in found
    assert not [
        f
        for f in lint_mysql("-- sqlstage:no-transaction\n" + sql)
        if f.line > 1 and f.rule == "transaction-control"
    ]
    project.configure(dev={"url": mysql_database.url})
    project.write("001_t1.sql", sql)
    applied = project.run("apply", "dev", "--yes")
    assert applied.exit_code == 2
    assert "001_t1.sql:2: START TRANSACTION in a migration: sqlstage runs each" in applied.stderr
