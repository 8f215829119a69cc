"""`sqlstage lint` and the findings in `apply`'s plan, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Database, ProjectDir

SAFE = """
    CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);
    CREATE INDEX users_email_idx ON users (email);
    """
DANGEROUS = """
    SET LOCAL lock_timeout = '2s';
    CREATE INDEX users_created_idx ON users (email);
    """


def add_lint_config(project: ProjectDir, text: str) -> None:
    config = project.root / "sqlstage.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[lint]\n" + text, encoding="utf-8")


def test_lint_files_reports_location_why_and_safe_sql(project: ProjectDir) -> None:
    project.configure(dev={"url": "env:DATABASE_URL"})
    path = project.write("002_index.sql", DANGEROUS)
    result = project.run("lint", str(path))
    assert result.exit_code == 1, result.output
    assert "002_index.sql:2:35: error create-index-without-concurrently" in result.output
    assert "why: Takes a SHARE lock" in result.output
    assert "CREATE INDEX CONCURRENTLY users_created_idx ON users (email);" in result.output
    assert "1 error, 0 warnings in 1 file" in result.output


def test_lint_passes_with_warnings_only(project: ProjectDir) -> None:
    project.configure(dev={"url": "env:DATABASE_URL"})
    path = project.write("001_users.sql", "CREATE TABLE users (id serial PRIMARY KEY);\n")
    result = project.run("lint", str(path))
    assert result.exit_code == 0, result.output
    assert "warning prefer-bigint-identity" in result.output


def test_lint_json_shape_is_stable(project: ProjectDir) -> None:
    project.configure(dev={"url": "env:DATABASE_URL"})
    path = project.write("002_index.sql", DANGEROUS)
    result = project.run("lint", "--json", str(path))
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert set(report) == {
        *("schemaVersion", "command", "ok", "error"),  # every --json document has them
        *("version", "dialect", "files", "findings", "summary"),
    }
    assert (report["command"], report["ok"], report["error"]["exitCode"]) == ("lint", False, 1)
    assert (report["version"], report["dialect"]) == (1, "postgresql")
    assert report["summary"] == {"errors": 1, "warnings": 0, "waived": 0}
    (finding,) = report["findings"]
    assert set(finding) == {
        "rule",
        "severity",
        "file",
        "line",
        "column",
        "message",
        "statement",
        "why",
        "safe_alternative",
        "waived",
    }
    assert finding["statement"] == "CREATE INDEX users_created_idx ON users (email)"
    assert finding["file"].endswith("002_index.sql")


def test_lint_github_annotations(project: ProjectDir) -> None:
    project.configure(dev={"url": "env:DATABASE_URL"})
    path = project.write("002_index.sql", DANGEROUS)
    result = project.run("lint", "--format", "github", str(path))
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith("::error file=")
    assert ",line=2,col=35,title=sqlstage create-index-without-concurrently::" in line
    assert "%0AInstead:%0A" in line


def test_lint_without_files_takes_what_an_environment_still_lacks(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write("001_users.sql", SAFE + "TRUNCATE users;\n")
    assert project.run("apply", "dev", "--yes").exit_code == 0  # not protected: warns, applies
    project.write("002_index.sql", DANGEROUS)
    result = project.run("lint")
    assert result.exit_code == 1, result.output
    assert "002_index.sql" in result.output
    assert "001_users.sql" not in result.output


def test_sqlite_project_has_no_postgresql_findings(project: ProjectDir, tmp_path: Path) -> None:
    project.configure(dev={"url": f"sqlite:///{tmp_path / 'dev.db'}"}, pro={"url": "prompt"})
    project.write("001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, at timestamp);")
    result = project.run("lint")
    assert result.exit_code == 0
    assert result.output.strip() == "0 errors, 0 warnings in 1 file"
    forced = project.run("lint", "--dialect", "postgresql")
    assert "prefer-timestamptz" in forced.output


def test_example_project_lints_clean(tmp_path: Path) -> None:
    root = ProjectDir(tmp_path / "demo")
    assert root.run("init", "--example").exit_code == 0
    result = root.run("lint")
    assert result.exit_code == 0
    assert result.output.strip() == "0 errors, 0 warnings in 3 files"


def test_lint_config_disable_warn_and_version(project: ProjectDir) -> None:
    project.configure(dev={"url": "env:DATABASE_URL"})
    path = project.write("002_enum.sql", "ALTER TYPE mood ADD VALUE 'elated';\nTRUNCATE x;\n")
    add_lint_config(
        project, 'disable = ["missing-lock-timeout"]\nwarn = ["truncate"]\npg_version = 11\n'
    )
    result = project.run("lint", str(path))
    assert result.exit_code == 1
    assert "error alter-enum-add-value-in-transaction" in result.output
    assert "warning truncate" in result.output
    assert "missing-lock-timeout" not in result.output


def test_lint_config_errors_exit_2(project: ProjectDir) -> None:
    project.configure(dev={"url": "env:DATABASE_URL"})
    path = project.write("001_x.sql", "SELECT 1;")
    add_lint_config(project, 'disable = ["no-such-rule"]\n')
    result = project.run("lint", str(path))
    assert result.exit_code == 2
    assert "unknown rule 'no-such-rule'" in result.stderr


def test_lint_file_error_exits_2(tmp_path: Path, project: ProjectDir) -> None:
    bad = tmp_path / "001_bad.sql"
    bad.write_bytes(b"SELECT '\xff';")
    result = project.run("lint", str(bad))  # no sqlstage.toml: defaults apply
    assert result.exit_code == 2
    assert "not valid UTF-8" in result.stderr


def protected(project: ProjectDir, url: str) -> None:
    project.configure(pro={"url": url, "protected": True, "allow_non_interactive": True})


def with_users(project: ProjectDir, url: str) -> None:
    """pro has run 001_users: its table exists before 002 indexes it (a table created
    earlier in the same plan is new, and nothing is found for it)."""
    protected(project, url)
    project.write("001_users.sql", SAFE)
    assert project.run("apply", "pro", "--yes").exit_code == 0


def test_protected_apply_refuses_lint_errors(project: ProjectDir, pg_database: Database) -> None:
    with_users(project, pg_database.url)
    project.write("002_index.sql", DANGEROUS)
    result = project.run("apply", "pro", "--yes")
    assert result.exit_code == 3, result.output
    assert "Lint: 1 error, 0 warnings in 1 file" in result.output
    assert "CREATE INDEX CONCURRENTLY users_created_idx" in result.output
    assert "--allow-lint create-index-without-concurrently" in result.stderr
    assert pg_database.history() == ["001_users"]


def test_allow_lint_applies_and_is_logged(project: ProjectDir, pg_database: Database) -> None:
    with_users(project, pg_database.url)
    project.write("002_index.sql", DANGEROUS)
    result = project.run(
        "apply", "pro", "--yes", "--allow-lint", "create-index-without-concurrently"
    )
    assert result.exit_code == 0, result.output
    assert pg_database.history() == ["001_users", "002_index"]
    log = project.logs()[-1].read_text(encoding="utf-8")
    allowed = "lint allowed (--allow-lint): create-index-without-concurrently at 002_index.sql:2"
    assert allowed in log


def test_in_file_waiver_lets_protected_apply_run(
    project: ProjectDir, pg_database: Database
) -> None:
    with_users(project, pg_database.url)
    project.write(
        "002_index.sql",
        """
        SET LOCAL lock_timeout = '2s';
        -- sqlstage:allow create-index-without-concurrently users has 40 rows
        CREATE INDEX users_created_idx ON users (email);
        """,
    )
    result = project.run("apply", "pro", "--yes")
    assert result.exit_code == 0, result.output
    assert "waived create-index-without-concurrently (users has 40 rows)" in result.output


def test_unknown_allow_lint_rule_is_a_usage_error(
    project: ProjectDir, pg_database: Database
) -> None:
    protected(project, pg_database.url)
    project.write("001_users.sql", SAFE)
    result = project.run("apply", "pro", "--yes", "--allow-lint", "nope")
    assert result.exit_code == 2
    assert pg_database.history() == []


def test_dry_run_shows_findings_without_refusing(
    project: ProjectDir, pg_database: Database
) -> None:
    protected(project, pg_database.url)
    project.write("001_users.sql", "CREATE TABLE t (id bigint);\nTRUNCATE t;\nDELETE FROM t;\n")
    project.write("002_drop.sql", "DROP TABLE t CASCADE;")
    result = project.run("apply", "pro", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "002_drop.sql:1:1: error drop-cascade" in result.output
    assert "dry run: nothing was changed" in result.output
