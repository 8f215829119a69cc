"""Issue 14, one gate rehearsed: dev meets the lint gate production applies, a waiver written
in the file is no edit, and `lint`, `apply dev` and `apply pro` find the same things."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tests.conftest import FOUR_MIGRATIONS, Database, ProjectDir

USERS = "CREATE TABLE users (id bigserial PRIMARY KEY, email text);\n"
UNIQUE = """
    UPDATE users SET email = lower(email);
    ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);

    -- rollback
    -- ALTER TABLE users DROP CONSTRAINT users_email_key;
    """
WAIVED = """
    -- sqlstage:allow backfill-with-ddl users has 12 rows
    UPDATE users SET email = lower(email);
    -- sqlstage:allow add-unique-without-index users has 12 rows
    ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);

    -- rollback
    -- ALTER TABLE users DROP CONSTRAINT users_email_key;
    """


@pytest.fixture
def dev_pro(project: ProjectDir, pg_database: Database, pg_database2: Database) -> ProjectDir:
    """dev and a protected pro that requires it, both at 001_users."""
    project.configure(
        dev={"url": pg_database.url},
        pro={
            "url": pg_database2.url,
            "protected": True,
            "allow_non_interactive": True,
            "requires": "dev",
        },
    )
    project.write("001_users.sql", USERS)
    for env in ("dev", "pro"):
        assert project.run("apply", env, "--yes").exit_code == 0
    return project


def rows(url_db: Database) -> list[tuple[str, str]]:
    return [
        (r[0], r[1])
        for r in url_db.query("SELECT migration, checksum FROM sqlstage_history ORDER BY 1")
        if r[0] != "__sqlstage_marker__"
    ]


def test_blocking_findings_stop_dev_too_then_the_waiver_goes_to_pro_without_repair(
    dev_pro: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    dev_pro.write("002_unique.sql", UNIQUE)
    before = dev_pro.status_file.read_text(encoding="utf-8")
    stopped = dev_pro.run("apply", "dev", "--yes")
    assert stopped.exit_code == 3, stopped.output
    # every blocking finding at once, and one command line that allows them all
    assert (
        "dev: the plan has 2 lint errors, the gate every environment applies: "
        "backfill-with-ddl at 002_unique.sql:1, add-unique-without-index at 002_unique.sql:2"
    ) in stopped.stderr
    assert "'-- sqlstage:allow RULE <why it is safe>'" in stopped.stderr
    assert stopped.stderr.rstrip().endswith(
        "sqlstage apply dev --yes --allow-lint backfill-with-ddl "
        "--allow-lint add-unique-without-index"
    )
    assert pg_database.history() == ["001_users"]
    assert dev_pro.status_file.read_text(encoding="utf-8") == before

    dev_pro.write("002_unique.sql", WAIVED)
    dev = dev_pro.run("apply", "dev", "--yes")
    assert dev.exit_code == 0, dev.output
    assert "waived backfill-with-ddl (users has 12 rows)" in dev.output
    pro = dev_pro.run("apply", "pro", "--yes")
    assert pro.exit_code == 0, pro.output
    assert pg_database2.history() == ["001_users", "002_unique"]
    assert dev_pro.run("status", "--live", "dev").exit_code == 0
    assert dev_pro.run("status").exit_code == 0


def test_the_refusals_command_line_applies_and_a_later_waiver_is_no_edit(
    dev_pro: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    """Allowed for the run in dev (before the waiver existed), then waived in the file: dev
    still reads the file as unchanged and pro takes it as rehearsed."""
    dev_pro.write("002_unique.sql", UNIQUE)
    command = dev_pro.run("apply", "dev", "--yes").stderr.rstrip().rsplit(": ", 1)[1]
    args = command.removeprefix("sqlstage ").split()
    assert dev_pro.run(*args).exit_code == 0
    dev_pro.write("002_unique.sql", WAIVED)
    live = dev_pro.run("status", "--live", "dev")
    assert live.exit_code == 0, live.output
    assert "edited" not in live.output + live.stderr
    pro = dev_pro.run("apply", "pro", "--yes")
    assert pro.exit_code == 0, pro.output
    assert rows(pg_database) == rows(pg_database2)


def test_a_checksum_recorded_over_the_whole_file_still_reads_as_unchanged(
    dev_pro: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    """Databases applied before directive lines left the checksum hold the whole section's:
    both are accepted (apply, status, the rehearsal check), nothing is rewritten."""
    path = dev_pro.write("002_unique.sql", WAIVED)
    assert dev_pro.run("apply", "dev", "--yes").exit_code == 0
    forward = path.read_text(encoding="utf-8").split("-- rollback")[0]
    old = hashlib.sha256((forward.rstrip() + "\n").encode()).hexdigest()  # the 0.x checksum
    pg_database.query(
        f"UPDATE sqlstage_history SET checksum = '{old}' WHERE migration = '002_unique'"
    )
    status = dev_pro.status_json()
    status["environments"]["dev"]["applied"]["002_unique"]["checksum"] = old
    dev_pro.status_file.write_text(json.dumps(status), encoding="utf-8")

    assert dev_pro.run("status").exit_code == 0
    assert dev_pro.run("status", "--live", "dev").exit_code == 0
    again = dev_pro.run("apply", "dev", "--yes")
    assert again.exit_code == 0, again.output
    assert "dev is up to date" in again.output
    pro = dev_pro.run("apply", "pro", "--yes")
    assert pro.exit_code == 0, pro.output
    assert rows(pg_database)[-1] == ("002_unique", old)


def test_the_same_findings_in_lint_apply_dev_and_apply_pro(dev_pro: ProjectDir) -> None:
    """dev has no lock_timeout of its own and pro does: missing-lock-timeout is about what
    sqlstage sets, so it is the same (here: silent) everywhere."""
    dev_pro.write(
        "002_profile.sql",
        """
        ALTER TABLE users ADD COLUMN bio varchar(200);
        CREATE INDEX users_email_idx ON users (email);
        """,
    )
    found = re.compile(r"^\S+\.sql:\d+:\d+: (?:error|warning) \S+", re.MULTILINE)
    lint = found.findall(dev_pro.run("lint").output)
    dev = found.findall(dev_pro.run("apply", "dev", "--dry-run").output)
    pro = found.findall(dev_pro.run("apply", "pro", "--dry-run").output)
    assert lint == dev == pro
    assert [line.split(": ", 1)[1] for line in lint] == [
        "warning prefer-text",
        "error create-index-without-concurrently",
    ]


def test_an_index_on_a_table_made_earlier_in_the_plan_does_not_block_the_first_deploy(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(
        pro={"url": pg_database.url, "protected": True, "allow_non_interactive": True}
    )
    project.write("001_users.sql", USERS)
    project.write("002_index.sql", "CREATE INDEX users_email_idx ON users (email);\n")
    lint = project.run("lint")
    assert lint.exit_code == 0, lint.output
    assert "0 errors, 0 warnings in 2 files" in lint.output
    applied = project.run("apply", "pro", "--yes")
    assert applied.exit_code == 0, applied.output
    # once pro has the table, the same index in a new file blocks
    project.write("003_index.sql", "CREATE INDEX users_id_email_idx ON users (id, email);\n")
    lint = project.run("lint")
    assert lint.exit_code == 1
    assert re.search(r"003_index\.sql:1:\d+: error create-index-without-concurrently", lint.output)
    assert project.run("apply", "pro", "--yes").exit_code == 3


def test_a_rollback_section_is_parsed_and_linted(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write(
        "001_t1.sql",
        """
        CREATE TABLE t1 (id bigint);

        -- rollback
        -- DROPP TABLE t1;
        """,
    )
    lint = project.run("lint")
    assert lint.exit_code == 1
    assert re.search(r"001_t1\.sql:4:\d+: error syntax-error", lint.output), lint.output
    applied = project.run("apply", "dev", "--yes")
    assert applied.exit_code == 3
    assert "syntax-error at 001_t1.sql:4" in applied.stderr
    assert pg_database.history() == []


def test_transaction_control_is_a_lint_error_in_the_words_apply_uses(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write(
        "001_t1.sql",
        """
        CREATE TABLE t1 (id bigint);
        COMMIT;

        -- rollback
        -- BEGIN;
        -- DROP TABLE t1;
        """,
    )
    words = (
        "COMMIT in a migration: sqlstage runs each migration in a transaction of its own, "
        "which this would end early"
    )
    lint = project.run("lint")
    assert lint.exit_code == 1
    assert "001_t1.sql:2:1: error transaction-control" in lint.output
    assert "001_t1.sql:5:1: error transaction-control" in lint.output
    assert words in lint.output
    applied = project.run("apply", "dev", "--yes")
    assert applied.exit_code == 2
    assert f"001_t1.sql:2: {words}" in applied.stderr
    assert pg_database.history() == []


def test_a_failed_create_index_concurrently_names_its_invalid_index(
    project: ProjectDir, pg_database: Database
) -> None:
    project.configure(dev={"url": pg_database.url})
    project.write("001_t.sql", "CREATE TABLE t (x int);\nINSERT INTO t VALUES (1), (1);\n")
    project.write("002_idx.sql", "CREATE UNIQUE INDEX CONCURRENTLY t_x_key ON t (x);\n")
    failed = project.run("apply", "dev", "--yes")
    assert failed.exit_code == 1
    drop = "DROP INDEX CONCURRENTLY IF EXISTS t_x_key;"
    assert f"leaves its index t_x_key behind, INVALID: drop it with `{drop}`" in failed.stderr
    schema = project.run("schema", "dev")
    assert "index t_x_key: CREATE UNIQUE INDEX t_x_key ON public.t USING btree (x) INVALID" in (
        schema.output
    )
    again = project.run("repair", "dev", "002_idx", "--resume", "--yes")
    assert again.exit_code == 1  # the name is taken by the INVALID index
    assert drop in again.stderr
    pg_database.query(drop)
    pg_database.query("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
    resumed = project.run("repair", "dev", "002_idx", "--resume", "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert "INVALID" not in project.run("schema", "dev").output


def test_the_seed_migrations_lint_and_apply_with_one_finding_at_most(
    four: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    four.configure(
        dev={"url": pg_database.url},
        pro={
            "url": pg_database2.url,
            "protected": True,
            "allow_non_interactive": True,
            "requires": "dev",
        },
    )
    lint = four.run("lint", "--dialect", "postgresql")
    assert lint.exit_code == 0
    assert re.search(r"^[0-1] errors?, [0-1] warnings? in 4 files$", lint.output, re.M), lint.output
    for env in ("dev", "pro"):
        applied = four.run("apply", env, "--yes")
        assert applied.exit_code == 0, applied.output
        assert "Lint:" not in applied.output
    assert len(FOUR_MIGRATIONS) == 4
