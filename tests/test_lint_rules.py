"""Each lint rule fires on the dangerous form and stays quiet on its safe form.

Pure parsing: no database is involved, so these run on the engine directly.
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

from sqlstage.lint import RULES, LintOptions, lint_all
from tests.conftest import Database

PATH = Path("004_change.sql")


def rules_of(sql: str, **options: object) -> set[str]:
    text = textwrap.dedent(sql).lstrip("\n")
    return {f.rule for f in lint_all([(PATH, text)], LintOptions(**options))}  # type: ignore[arg-type]


# rule id -> (SQL that fires it, SQL of the safe form that must not)
CASES: dict[str, tuple[str, str]] = {
    "add-column-not-null-no-default": (
        "ALTER TABLE users ADD COLUMN plan text NOT NULL;",
        "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';",
    ),
    "add-column-volatile-default": (
        "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        "ALTER TABLE users ADD COLUMN token uuid;\n"
        "ALTER TABLE users ALTER COLUMN token SET DEFAULT gen_random_uuid();",
    ),
    "set-not-null": (
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        "ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;\n"
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
    ),
    "add-constraint-without-not-valid": (
        "ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) "
        "REFERENCES users (id);",
        "ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) "
        "REFERENCES users (id) NOT VALID;",
    ),
    "add-unique-without-index": (
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
    ),
    "create-index-without-concurrently": (
        "CREATE INDEX posts_user_id_idx ON posts (user_id);",
        "CREATE INDEX CONCURRENTLY posts_user_id_idx ON posts (user_id);",
    ),
    "drop-index-without-concurrently": (
        "DROP INDEX posts_user_id_idx;",
        "DROP INDEX CONCURRENTLY posts_user_id_idx;",
    ),
    "concurrently-in-transaction": (
        "SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY posts_user_id_idx ON posts (user_id);",
        "-- sqlstage:no-transaction\nSET lock_timeout = '5s';\n"
        "CREATE INDEX CONCURRENTLY posts_user_id_idx ON posts (user_id);",
    ),
    "alter-column-type": (
        "ALTER TABLE users ALTER COLUMN id TYPE bigint;",
        "ALTER TABLE users ADD COLUMN id_new bigint;",
    ),
    "rename-column": (
        "ALTER TABLE users RENAME COLUMN email TO email_address;",
        "ALTER TABLE users ADD COLUMN email_address text;",
    ),
    "rename-table": (
        "ALTER TABLE users RENAME TO accounts;",
        "ALTER TABLE users RENAME TO accounts;\nCREATE VIEW users AS SELECT * FROM accounts;",
    ),
    "drop-column": (
        "ALTER TABLE users DROP COLUMN legacy;",
        "CREATE TABLE tmp (id bigint, legacy text);\nALTER TABLE tmp DROP COLUMN legacy;",
    ),
    "drop-table": (
        "DROP TABLE legacy_sessions;",
        "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;",
    ),
    "drop-cascade": (
        "DROP VIEW active_users CASCADE;",
        "DROP VIEW active_users;",
    ),
    "truncate": (
        "TRUNCATE sessions;",
        "DELETE FROM sessions WHERE ctid IN (SELECT ctid FROM sessions LIMIT 10000);",
    ),
    "update-without-where": (
        "UPDATE users SET plan = 'free';",
        "UPDATE users SET plan = 'free' WHERE id BETWEEN 1 AND 10000;",
    ),
    "delete-without-where": (
        "DELETE FROM sessions;",
        "DELETE FROM sessions WHERE expires_at < now();",
    ),
    "backfill-with-ddl": (
        "ALTER TABLE users ADD COLUMN plan text;\n"
        "UPDATE users SET plan = 'free' WHERE plan IS NULL;",
        "UPDATE users SET plan = 'free' WHERE plan IS NULL;",
    ),
    "alter-enum-add-value-in-transaction": (
        "ALTER TYPE mood ADD VALUE 'elated';",
        "-- sqlstage:no-transaction\nALTER TYPE mood ADD VALUE 'elated';",
    ),
    "vacuum-full": ("VACUUM FULL users;", "VACUUM (ANALYZE) users;"),
    "cluster": ("CLUSTER users USING users_pkey;", "ANALYZE users;"),
    "missing-lock-timeout": (
        "ALTER TABLE users ADD COLUMN bio text;",
        "SET LOCAL lock_timeout = '5s';\nALTER TABLE users ADD COLUMN bio text;",
    ),
    "prefer-bigint-identity": (
        "CREATE TABLE users (id serial PRIMARY KEY);",
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);",
    ),
    "prefer-text": (
        "CREATE TABLE users (id bigint, email varchar(255));",
        "CREATE TABLE users (id bigint, email text CHECK (char_length(email) <= 255));",
    ),
    "prefer-timestamptz": (
        "CREATE TABLE events (id bigint, at timestamp);",
        "CREATE TABLE events (id bigint, at timestamptz);",
    ),
    "syntax-error": ("CREATE TABEL users (id bigint);", "CREATE TABLE users (id bigint);"),
    "transaction-control": (
        "BEGIN;\nALTER TABLE users ADD COLUMN bio text;\nCOMMIT;",
        "-- sqlstage:no-transaction\nBEGIN;\nALTER TABLE users ADD COLUMN bio text;\nCOMMIT;",
    ),
    "concurrently-if-not-exists": (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email);",
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);",
    ),
    "bad-waiver": (
        "-- sqlstage:allow truncate\nTRUNCATE sessions;",
        "-- sqlstage:allow truncate the cache is refilled on start\nTRUNCATE sessions;",
    ),
}
VERSION_SPECIFIC = {"alter-enum-add-value-in-transaction": {"pg_version": 11}}


def test_every_rule_has_a_case() -> None:
    """PostgreSQL's rules here; the mysql-* ones have theirs in test_mysql_lint.py."""
    assert set(CASES) == {rule for rule in RULES if not rule.startswith("mysql-")}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires_on_the_dangerous_form(rule: str) -> None:
    assert rule in rules_of(CASES[rule][0], **VERSION_SPECIFIC.get(rule, {}))


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_is_quiet_on_the_safe_form(rule: str) -> None:
    assert rule not in rules_of(CASES[rule][1], **VERSION_SPECIFIC.get(rule, {}))


def test_a_table_created_in_the_same_migration_raises_nothing() -> None:
    sql = """
        CREATE TABLE posts (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id bigint NOT NULL,
            title text NOT NULL
        );
        CREATE INDEX posts_user_id_idx ON posts (user_id);
        ALTER TABLE posts ADD COLUMN status text NOT NULL;
        ALTER TABLE posts ALTER COLUMN title SET NOT NULL;
        ALTER TABLE posts ADD CONSTRAINT posts_title_check CHECK (title <> '');
        ALTER TABLE posts ADD CONSTRAINT posts_title_key UNIQUE (title);
        INSERT INTO posts (user_id, title, status) VALUES (1, 'a', 'draft');
        UPDATE posts SET status = 'published';
        DROP INDEX posts_user_id_idx;
    """
    assert rules_of(sql) == set()


def test_a_dollar_quoted_body_with_drop_table_raises_nothing() -> None:
    sql = """
        CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $body$
        BEGIN
            DROP TABLE users CASCADE;
            TRUNCATE sessions;
            EXECUTE 'DELETE FROM posts';
        END
        $body$;
        DO $$ BEGIN DROP TABLE legacy; END $$;
        SELECT 'DROP TABLE users; TRUNCATE x;' AS text_only;
    """
    assert rules_of(sql) == set()


def test_the_example_migrations_as_postgresql_give_one_warning_at_most() -> None:
    """They are SQLite-flavoured (`INTEGER PRIMARY KEY`, a key the application assigns); the
    example project lints as SQLite (test_lint_cli), and forced to PostgreSQL the one thing
    left is the lock_timeout that no environment sets here (LintOptions() says so)."""
    from sqlstage.scaffold import EXAMPLES

    findings = lint_all([(Path(n), sql) for n, sql in EXAMPLES.items()], LintOptions())
    assert {(f.path.name, f.rule, f.severity) for f in findings} == {
        ("003_add_user_profile.sql", "missing-lock-timeout", "warning"),
    }
    sqlstage_sets_it = LintOptions(tool_lock_timeout=True)
    assert lint_all([(Path(n), sql) for n, sql in EXAMPLES.items()], sqlstage_sets_it) == []


def test_volatile_defaults_depend_on_the_server_version() -> None:
    constant = "ALTER TABLE users ADD COLUMN plan text DEFAULT 'free';"
    assert "add-column-volatile-default" not in rules_of(constant, pg_version=11)
    assert "add-column-volatile-default" in rules_of(constant, pg_version=10)


def test_set_not_null_after_validate_fires_on_servers_before_12() -> None:
    assert "set-not-null" in rules_of(CASES["set-not-null"][1], pg_version=11)


def test_the_tool_s_own_lock_timeout_silences_the_rule() -> None:
    sql = CASES["missing-lock-timeout"][0]
    assert "missing-lock-timeout" not in rules_of(sql, tool_lock_timeout=True)


def test_sqlite_has_no_rules_yet() -> None:
    assert rules_of("TRUNCATE sessions; DROP TABLE users CASCADE;", dialect="sqlite") == set()


def test_disable_and_warn() -> None:
    sql = "TRUNCATE sessions;"
    options = LintOptions(disable=frozenset({"missing-lock-timeout"}), warn=frozenset({"truncate"}))
    (finding,) = lint_all([(PATH, sql)], options)
    assert (finding.rule, finding.severity, finding.blocking) == ("truncate", "warning", False)


def test_line_and_column_count_characters_after_non_ascii_text() -> None:
    sql = "-- Größe, café, 日本語\nSET lock_timeout = '1s'; /* é */ CREATE INDEX ix ON posts (x);\n"
    (finding,) = lint_all([(PATH, sql)], LintOptions())
    assert (finding.line, finding.column) == (2, 53)  # at `posts`
    assert finding.statement == "CREATE INDEX ix ON posts (x)"
    assert "CREATE INDEX CONCURRENTLY ix ON posts (x);" in finding.safe


def test_a_waiver_covers_only_the_next_statement_and_its_rules() -> None:
    sql = (
        "SET lock_timeout = '1s';\n"
        "-- sqlstage:allow truncate, delete-without-where cache tables, refilled on start\n"
        "TRUNCATE cache;\n"
        "TRUNCATE sessions;\n"
    )
    findings = lint_all([(PATH, sql)], LintOptions())
    assert [(f.line, f.rule, f.waived) for f in findings] == [
        (3, "truncate", "cache tables, refilled on start"),
        (4, "truncate", None),
    ]


def test_the_safe_alternative_is_concrete_sql() -> None:
    (finding,) = lint_all(
        [(PATH, "SET lock_timeout = '1s';\nALTER TABLE users ADD CHECK (age >= 0);")], LintOptions()
    )
    added = "ALTER TABLE users ADD CONSTRAINT users_check CHECK (age >= 0) NOT VALID;"
    assert added in finding.safe
    assert "ALTER TABLE users VALIDATE CONSTRAINT users_check;" in finding.safe


def test_unknown_rule_in_config_is_a_config_error() -> None:
    from sqlstage.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown rule 'trunc'"):
        lint_all([(PATH, "SELECT 1;")], LintOptions(disable=frozenset({"trunc"})))


def test_serial_column_gets_steps_that_do_not_rewrite(pg_database: Database) -> None:
    """The safe form for a serial column is not the same statement again, and it runs."""
    [finding] = [
        f
        for f in lint_all(
            [(Path("x.sql"), "ALTER TABLE users ADD COLUMN n bigserial;")],
            LintOptions(dialect="postgresql"),
        )
        if f.rule == "add-column-volatile-default"
    ]
    assert "bigserial" not in finding.safe and "<expression>" not in finding.safe
    pg_database.query("CREATE TABLE users (id int); INSERT INTO users VALUES (1), (2)")
    pg_database.query(finding.safe)  # the steps, backfill included, as one script
    assert pg_database.query("SELECT n FROM users ORDER BY n") == [(1,), (2,)]


@pytest.mark.parametrize(
    ("sql", "fires"),
    [
        ("CREATE TABLE t (id bigserial PRIMARY KEY);", False),
        ("CREATE TABLE t (id serial8 PRIMARY KEY);", False),
        ("CREATE TABLE t (id integer PRIMARY KEY);", False),  # the application assigns it
        ("CREATE TABLE t (id smallserial PRIMARY KEY);", True),
        ("CREATE TABLE t (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY);", True),
        ("CREATE TABLE t (id int DEFAULT nextval('s') PRIMARY KEY);", True),
    ],
)
def test_prefer_bigint_identity_is_about_counters_that_run_out(sql: str, fires: bool) -> None:
    assert ("prefer-bigint-identity" in rules_of(sql)) is fires


def plan_of(**files: str) -> list[tuple[str, int, str]]:
    from sqlstage.lint import lint_plan
    from sqlstage.migration import parse_text

    migrations = [
        parse_text(number, name, Path(f"{name}.sql"), textwrap.dedent(sql).lstrip("\n"))
        for number, (name, sql) in enumerate(files.items(), start=1)
    ]
    return [(f.path.name, f.line, f.rule) for f in lint_plan(migrations, LintOptions())]


def test_objects_created_earlier_in_the_plan_are_new() -> None:
    assert plan_of(
        m001="CREATE TABLE t (id bigint, x text);\nCREATE INDEX t_x ON t (x);\n",
        m002="CREATE INDEX t_id ON t (id);\nALTER TABLE t ADD COLUMN y text NOT NULL;\n",
        m003="DROP INDEX t_x;\nUPDATE u SET x = 'a';\n",
    ) == [("m003.sql", 2, "update-without-where")]


def test_a_rollback_section_is_checked_with_its_file_lines() -> None:
    assert plan_of(
        m001="""
        CREATE TABLE t1 (id bigint);

        -- rollback
        -- DROP TABLE t1;
        -- DROPP TABLE t2;
        """,
        m002="""
        CREATE TABLE t2 (id bigint);
        -- rollback
        -- COMMIT;
        -- DROP TABLE t2 CASCADE;
        """,
    ) == [("m001.sql", 5, "syntax-error"), ("m002.sql", 3, "transaction-control")]


def test_a_rule_marked_for_some_statement_kinds_fires_on_no_other() -> None:
    """The engine calls a check marked `for_kinds` only for those kinds (issue 15: lint's
    CPU); each dangerous form above, run through every check, says the marks are right."""
    from sqlstage.lint import engine
    from sqlstage.lint.context import Created

    every = (*engine.rules_tables.CHECKS, *engine.rules_locks.CHECKS)
    every += engine.rules_changes.CHECKS
    fired = set()
    for (dangerous, _safe), pg_version in itertools.product(CASES.values(), (11, 16)):
        found = engine._parsed(PATH, textwrap.dedent(dangerous).lstrip("\n"))
        if isinstance(found, list):  # the syntax-error case
            continue
        source, statements = found
        options = LintOptions(pg_version=pg_version)  # 11: enum-add-value-in-transaction
        context = engine._context(options, source, statements, Created())
        for statement in statements:
            for check in every:
                hits = list(check(statement, context))
                kinds = getattr(check, "kinds", None)
                if hits and kinds is not None:
                    assert statement.kind in kinds, (check.__name__, dangerous)
                    fired.add(check.__name__)
    marked = {c.__name__ for c in every if getattr(c, "kinds", None) is not None}
    assert fired == marked  # every mark was put to the test
