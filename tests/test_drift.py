"""Drift (issue 12): `drift ENV`, `diff ENV1 ENV2`, the check before a protected apply and
rollback, status.json's fingerprint and verdict, the offline status line. Real databases:
the hand-made changes are made over a direct connection, as psql would make them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg
import pytest

from sqlstage.commands import ApplyOptions, apply
from sqlstage.errors import Refused
from sqlstage.project import Project
from tests.conftest import Database, ProjectDir

THREE = {
    "001_create_users.sql": """
        CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, plan text DEFAULT 'free');

        -- rollback
        -- DROP TABLE users;
        """,
    "002_create_posts.sql": """
        CREATE TABLE posts (id integer PRIMARY KEY, user_id integer NOT NULL, title text);

        -- rollback
        -- DROP TABLE posts;
        """,
    "003_add_user_name.sql": """
        ALTER TABLE users ADD COLUMN name text;

        -- rollback
        -- ALTER TABLE users DROP COLUMN name;
        """,
}
FOURTH = """
    ALTER TABLE posts ADD COLUMN slug text;

    -- rollback
    -- ALTER TABLE posts DROP COLUMN slug;
    """
PG_HAND_CHANGES = [
    "CREATE INDEX posts_title_idx ON posts (title)",
    "ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'pro'",
    "GRANT SELECT ON posts TO PUBLIC",
    "ALTER TABLE posts ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY own_posts ON posts USING (user_id > 0)",
]
SQLITE_HAND_CHANGES = [
    "CREATE INDEX posts_title_idx ON posts (title)",
    "ALTER TABLE users ADD COLUMN hotfix text",
    "CREATE VIEW active_users AS SELECT id FROM users WHERE plan <> 'free'",
]


def write_config(project: ProjectDir, dev: str, pro: str, extra: str = "") -> None:
    (project.root / "sqlstage.toml").write_text(
        f'[environments.dev]\nurl = "{dev}"\n\n'
        f'[environments.pro]\nurl = "{pro}"\nprotected = true\nallow_non_interactive = true\n'
        f"{extra}",
        encoding="utf-8",
    )


def three_applied(project: ProjectDir, dev: str, pro: str, extra: str = "") -> None:
    for name, sql in THREE.items():
        project.write(name, sql)
    write_config(project, dev, pro, extra)
    for env in ("dev", "pro"):
        result = project.run("apply", env, "--yes")
        assert result.exit_code == 0, result.output


def by_hand(database: Database, statements: list[str]) -> None:
    """As a person at psql (or the sqlite3 shell) would: straight to the database."""
    if database.dialect == "sqlite":
        with sqlite3.connect(database.url.removeprefix("sqlite:///")) as conn:
            for sql in statements:
                conn.execute(sql)
        return
    with psycopg.connect(database.url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


@pytest.fixture
def sqlite_pair(tmp_path: Path) -> tuple[Database, Database]:
    return (
        Database("sqlite", f"sqlite:///{tmp_path / 'dev.db'}"),
        Database("sqlite", f"sqlite:///{tmp_path / 'pro.db'}"),
    )


# -- issue 12's Done when, on PostgreSQL ------------------------------------------------------


def test_postgres_hand_changes_are_drift_end_to_end(
    project: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    dev, pro = pg_database, pg_database2
    three_applied(project, dev.url, pro.url)
    by_hand(pro, PG_HAND_CHANGES)

    drifted = project.run("drift", "pro")
    assert drifted.exit_code == 1, drifted.output
    for line in (
        "extra index posts_title_idx: CREATE INDEX posts_title_idx ON public.posts",
        "changed column users.plan: text DEFAULT 'free'::text -> text DEFAULT 'pro'::text",
        "extra grant table posts: PUBLIC SELECT (by postgres)",
        "extra policy posts.own_posts: permissive for all to PUBLIC using ((user_id > 0))",
        "changed table posts: (empty) -> row level security",
        "fix (not run): DROP INDEX posts_title_idx;",
        "fix (not run): ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'free'::text;",
        "fix (not run): REVOKE SELECT ON posts FROM PUBLIC;",
        "fix (not run): DROP POLICY own_posts ON posts;",
    ):
        assert line in drifted.output
    assert "error: pro has drifted from what its history says (5 objects:" in drifted.output
    # a suggestion is never run
    assert pro.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'posts_title_idx'") == [
        (1,)
    ]

    clean = project.run("drift", "dev")
    assert clean.exit_code == 0, clean.output
    assert "dev: no drift; its live schema is what its 3 migrations made" in clean.output

    compared = project.run("diff", "dev", "pro")
    assert compared.exit_code == 1, compared.output
    assert "unexplained: drift (5):" in compared.output
    assert "extra index posts_title_idx: CREATE INDEX" in compared.output
    assert "[drift in pro]" in compared.output
    assert "explained by" not in compared.output

    project.write("004_add_post_slug.sql", FOURTH)
    assert project.run("apply", "dev", "--yes").exit_code == 0
    refused = project.run("apply", "pro", "--yes")
    assert refused.exit_code == 3, refused.output
    assert "error: pro has drifted from what its history says (5 objects:" in refused.output
    assert "--allow-drift --reason" in refused.output
    assert "  extra index posts_title_idx" in refused.output  # the list, before the line
    assert pro.history() == [name.removesuffix(".sql") for name in THREE]

    allowed = project.run("apply", "pro", "--yes", "--allow-drift", "--reason", "INC-42 hotfix")
    assert allowed.exit_code == 0, allowed.output
    rows = pro.query("SELECT migration, allowed_drift FROM sqlstage_history ORDER BY 1")
    assert rows[-1][0] == "004_add_post_slug"
    assert rows[-1][1].startswith("INC-42 hotfix (drifted: 5 objects: ")
    assert "index posts_title_idx" in rows[-1][1]
    assert all(reason is None for _, reason in rows[:-1])
    log = project.logs()[-1].read_text(encoding="utf-8")
    assert "drift allowed: INC-42 hotfix (drifted: 5 objects:" in log

    # offline, with no credentials at all: the URLs are gone from the config
    write_config(project, "env:NO_SUCH_DEV_URL", "env:NO_SUCH_PRO_URL")
    offline = project.run("status")
    assert offline.exit_code == 0, offline.output
    today = project.status_json()["environments"]["pro"]["drift"]["since"][:10]
    [line] = [line for line in offline.output.splitlines() if line.startswith("pro: DRIFTED")]
    assert line.startswith(f"pro: DRIFTED since {today} (5 objects: ")
    for label in (
        "column users.plan default",
        "table posts",
        "index posts_title_idx",
        "policy posts.own_posts",
        "grant table posts",
    ):
        assert label in line
    assert "dev: no drift at its last check" in offline.output
    assert (
        "warning: dev and pro have applied the same migrations but recorded different schema "
        "fingerprints" in offline.output
    )


def test_diff_explains_what_a_migration_one_side_lacks_made(
    project: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    three_applied(project, pg_database.url, pg_database2.url)
    project.write("004_add_post_slug.sql", FOURTH)
    assert project.run("apply", "dev", "--yes").exit_code == 0
    by_hand(pg_database2, ["CREATE INDEX posts_title_idx ON posts (title)"])

    result = project.run("diff", "dev", "pro", "--json")

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)  # stdout holds the JSON alone
    assert report["onlyIn"] == {"dev": ["004_add_post_slug"], "pro": []}
    assert [(d["change"], d["name"]) for d in report["explained"]] == [("missing", "posts.slug")]
    assert [(d["change"], d["name"], d["driftIn"]) for d in report["unexplained"]] == [
        ("extra", "posts_title_idx", ["pro"])
    ]


def test_diff_of_environments_alike_exits_0(
    project: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    three_applied(project, pg_database.url, pg_database2.url)
    project.write("004_add_post_slug.sql", FOURTH)
    assert project.run("apply", "dev", "--yes").exit_code == 0

    result = project.run("diff", "dev", "pro")

    assert result.exit_code == 0, result.output
    assert "only dev has applied: 004_add_post_slug" in result.output
    assert "missing column posts.slug: text" in result.output
    assert "unexplained" not in result.output


# -- the same on SQLite: index, column, view --------------------------------------------------


def test_sqlite_hand_changes_are_drift_end_to_end(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    by_hand(pro, SQLITE_HAND_CHANGES)

    drifted = project.run("drift", "pro")

    assert drifted.exit_code == 1, drifted.output
    assert "extra index posts_title_idx: CREATE INDEX posts_title_idx ON posts(title)" in (
        drifted.output
    )
    assert "extra column users.hotfix: TEXT" in drifted.output
    assert "extra view active_users: CREATE VIEW active_users" in drifted.output
    assert "fix (not run): DROP INDEX posts_title_idx;" in drifted.output
    assert "fix (not run): DROP VIEW active_users;" in drifted.output
    assert project.run("drift", "dev").exit_code == 0

    compared = project.run("diff", "dev", "pro")
    assert compared.exit_code == 1, compared.output
    assert "extra view active_users" in compared.output and "[drift in pro]" in compared.output

    project.write("004_add_post_slug.sql", FOURTH)
    assert project.run("apply", "dev", "--yes").exit_code == 0
    refused = project.run("apply", "pro", "--yes")
    assert refused.exit_code == 3, refused.output
    assert "pro has drifted from what its history says" in refused.output
    assert "004_add_post_slug" not in pro.history()
    allowed = project.run("apply", "pro", "--yes", "--allow-drift", "--reason", "kept the view")
    assert allowed.exit_code == 0, allowed.output
    assert pro.query("SELECT allowed_drift FROM sqlstage_history WHERE migration LIKE '004%'")[0][
        0
    ].startswith("kept the view (drifted: ")

    offline = project.run("status")
    assert "pro: DRIFTED since " in offline.output
    assert "index posts_title_idx" in offline.output and "view active_users" in offline.output


def test_mysql_hand_made_index_is_drift(project: ProjectDir, mysql_database: Database) -> None:
    project.write(
        "001_create_users.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email varchar(200) NOT NULL);\n",
    )
    project.configure(dev={"url": mysql_database.url})
    assert project.run("apply", "dev", "--yes").exit_code == 0
    assert project.run("drift", "dev").exit_code == 0
    mysql_database.query("CREATE INDEX users_email ON users (email)")

    result = project.run("drift", "dev")

    assert result.exit_code == 1, result.output
    assert "extra index users.users_email: INDEX (email) USING BTREE" in result.output
    assert "fix (not run): DROP INDEX users_email ON users;" in result.output


# -- what is not drift, and what is no verdict ------------------------------------------------


def test_pending_migrations_are_not_drift(project: ProjectDir, database: Database) -> None:
    for name, sql in THREE.items():
        project.write(name, sql)
    project.configure(dev={"url": database.url})
    assert project.run("apply", "dev", "--to", "002", "--yes").exit_code == 0

    result = project.run("drift", "dev")

    assert result.exit_code == 0, result.output
    assert "its live schema is what its 2 migrations made" in result.output
    assert "pending (not drift): 003_add_user_name" in result.output


def test_the_history_sql_is_replayed_not_todays_file(
    project: ProjectDir, database: Database
) -> None:
    """A file edited after it ran does not move the expected schema: the history row does."""
    for name, sql in THREE.items():
        project.write(name, sql)
    project.configure(dev={"url": database.url})
    assert project.run("apply", "dev", "--yes").exit_code == 0
    project.write("003_add_user_name.sql", "ALTER TABLE users ADD COLUMN full_name text;\n")

    assert project.run("drift", "dev").exit_code == 0


def test_a_replay_that_fails_is_no_verdict(project: ProjectDir, database: Database) -> None:
    for name, sql in THREE.items():
        project.write(name, sql)
    project.configure(dev={"url": database.url})
    assert project.run("apply", "dev", "--yes").exit_code == 0
    assert project.run("drift", "dev").exit_code == 0
    before = project.status_json()["environments"]["dev"]["drift"]
    by_hand(
        database,
        [
            "UPDATE sqlstage_history SET applied_sql = 'ALTER TABLE nowhere ADD COLUMN x text;' "
            "WHERE migration = '003_add_user_name'"
        ],
    )

    result = project.run("drift", "dev")

    assert result.exit_code == 6, result.output
    assert (
        "error: dev: replaying 003_add_user_name as its history row recorded it failed at "
        "line 1 on a fresh scratch database" in result.output
    )
    assert "no verdict" in result.output
    assert "no drift" not in result.output.replace("no verdict", "")
    assert project.status_json()["environments"]["dev"]["drift"] == before


def test_a_run_in_flight_is_busy_not_drift(project: ProjectDir, database: Database) -> None:
    from sqlstage.drivers import connect
    from sqlstage.urls import parse_url

    for name, sql in THREE.items():
        project.write(name, sql)
    project.configure(dev={"url": database.url})
    assert project.run("apply", "dev", "--yes").exit_code == 0
    holder = connect(parse_url(database.url, project.root, "dev"), "sqlstage dev deploy@ci")
    holder.lock(0)  # what a deploy holds while it runs
    try:
        result = project.run("drift", "dev")
    finally:
        holder.unlock()
        holder.close()

    assert result.exit_code == 6, result.output
    assert "error: dev is busy:" in result.output
    assert "no drift verdict while a run changes it" in result.output
    assert project.run("drift", "dev").exit_code == 0  # once it is done


def test_drift_json_holds_only_json_on_stdout(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    by_hand(pro, ["CREATE INDEX posts_title_idx ON posts (title)"])

    result = project.run("drift", "pro", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["environment"] == "pro" and report["drifted"] is True
    assert report["replayed"] == 3 and report["pending"] == []
    [found] = report["differences"]
    assert found["change"] == "extra" and found["object"] == "index posts_title_idx"
    assert found["fix"] == "DROP INDEX posts_title_idx;"
    assert report["fingerprint"] == project.status_json()["environments"]["pro"]["fingerprint"]
    assert "Connected:" in result.stderr


# -- status.json ------------------------------------------------------------------------------


def test_status_json_records_fingerprints_and_the_verdict(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    envs = project.status_json()["environments"]
    # same migrations, same schema: the same fingerprint in two databases
    assert envs["dev"]["fingerprint"].startswith("sha256:")
    assert envs["dev"]["fingerprint"] == envs["pro"]["fingerprint"]
    assert envs["pro"]["drift"]["clean"] is True  # pro is checked before its apply
    assert "drift" not in envs["dev"]  # dev is not, and was never checked

    by_hand(pro, ["CREATE INDEX posts_title_idx ON posts (title)"])
    assert project.run("drift", "pro").exit_code == 1
    first = project.status_json()["environments"]["pro"]
    assert first["drift"]["clean"] is False
    assert first["drift"]["objects"] == ["index posts_title_idx"]
    assert first["drift"]["since"] == first["drift"]["checkedAt"]
    assert first["fingerprint"] != envs["pro"]["fingerprint"]

    by_hand(pro, ["ALTER TABLE users ADD COLUMN hotfix text"])
    assert project.run("drift", "pro").exit_code == 1
    second = project.status_json()["environments"]["pro"]["drift"]
    assert second["since"] == first["drift"]["since"]  # drifted since the first time seen
    # SQLite: the table's CREATE TABLE text changed along with its new column
    assert sorted(second["objects"]) == [
        "column users.hotfix",
        "index posts_title_idx",
        "table users",
    ]

    by_hand(pro, ["DROP INDEX posts_title_idx", "ALTER TABLE users DROP COLUMN hotfix"])
    assert project.run("drift", "pro").exit_code == 0
    back = project.status_json()["environments"]["pro"]
    assert back["drift"] == {"checkedAt": back["drift"]["checkedAt"], "clean": True}
    assert back["fingerprint"] == envs["dev"]["fingerprint"]
    assert "fingerprints" not in project.run("status").output


def test_a_damaged_drift_entry_names_its_key(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    document = project.status_json()
    document["environments"]["pro"]["drift"] = {"clean": "yes"}
    project.status_file.write_text(json.dumps(document, indent=2), encoding="utf-8")

    result = project.run("status")

    assert result.exit_code == 2
    assert "environments.pro.drift must be an object like" in result.output


# -- config -----------------------------------------------------------------------------------


def test_check_is_switched_per_environment(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    by_hand(dev, ["CREATE INDEX posts_title_idx ON posts (title)"])
    by_hand(pro, ["CREATE INDEX posts_title_idx ON posts (title)"])
    extra = "\n[drift.dev]\ncheck = true\n\n[drift.pro]\ncheck = false\n"
    write_config(project, dev.url, pro.url, extra)
    project.write("004_add_post_slug.sql", FOURTH)

    refused = project.run("apply", "dev", "--yes")
    assert refused.exit_code == 3, refused.output
    assert "dev has drifted" in refused.output
    assert project.run("apply", "pro", "--yes").exit_code == 0  # not checked: goes on


def test_ignore_patterns_leave_objects_out(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    extra = '\n[drift]\nignore = ["index *_tmp"]\n\n[drift.pro]\nignore = ["view reports_*"]\n'
    three_applied(project, dev.url, pro.url, extra)
    by_hand(
        pro,
        [
            "CREATE INDEX posts_tmp ON posts (title)",
            "CREATE VIEW reports_daily AS SELECT 1 AS one",
        ],
    )

    assert project.run("drift", "pro").exit_code == 0
    by_hand(pro, ["CREATE INDEX posts_title_idx ON posts (title)"])
    result = project.run("drift", "pro")
    assert result.exit_code == 1
    assert "posts_title_idx" in result.output
    assert "posts_tmp" not in result.output and "reports_daily" not in result.output


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[drift]\nignore = "index *"\n', "drift.ignore must be a list of object patterns"),
        ("[drift.staging]\ncheck = true\n", "[drift.staging] names no configured environment"),
        ('[drift.pro]\ncheck = "yes"\n', "drift.pro.check must be true or false"),
        ("[drift.pro]\nroles = { app = 1 }\n", "drift.pro.roles must map role names"),
        ("[drift.pro]\nskip = true\n", "[drift.pro] takes check, roles and ignore"),
    ],
)
def test_bad_drift_config_is_one_line_exit_2(project: ProjectDir, table: str, message: str) -> None:
    write_config(project, "sqlite:///dev.db", "sqlite:///pro.db", "\n" + table)

    result = project.run("status")

    assert result.exit_code == 2
    assert message in result.output


def test_allow_drift_needs_a_reason(project: ProjectDir, database: Database) -> None:
    project.configure(dev={"url": database.url})

    result = project.run("apply", "dev", "--allow-drift")

    assert result.exit_code == 2
    assert '--allow-drift needs --reason "why"' in result.output


def test_role_mapping_lets_two_environments_compare_alike() -> None:
    from sqlstage.drift.settings import parse_drift
    from sqlstage.schema import SchemaObject, Snapshot, diff

    settings = parse_drift(
        Path("sqlstage.toml"),
        {"dev": {"roles": {"app_dev": "app"}}, "pro": {"roles": {"app_pro": "app"}}},
        {"dev", "pro"},
    )

    def grants(role: str) -> Snapshot:
        return Snapshot(
            "postgresql",
            (
                SchemaObject("grant", "table posts", f"{role} SELECT (by postgres)"),
                SchemaObject("owner", "table posts", role),
            ),
        )

    assert diff(grants("app_dev"), grants("app_pro"))  # as the databases hold them
    assert not diff(
        settings.normalise("dev", grants("app_dev")), settings.normalise("pro", grants("app_pro"))
    )


# -- the library gets the same refusal --------------------------------------------------------


def test_a_script_gets_the_drift_refusal(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    by_hand(pro, ["CREATE INDEX posts_title_idx ON posts (title)"])
    project.write("004_add_post_slug.sql", FOURTH)
    library = Project.load(project.root)

    with pytest.raises(Refused, match="pro has drifted from what its history says"):
        apply(library, "pro", ApplyOptions(yes=True))
    assert "004_add_post_slug" not in pro.history()

    plan = apply(library, "pro", ApplyOptions(yes=True, dry_run=True)).plan
    assert [type(r).__name__ for r in plan.refusals] == ["Refused"]
    done = apply(library, "pro", ApplyOptions(yes=True, allow_drift="known hotfix"))
    assert [m.name for m in done.migrations] == ["004_add_post_slug"]


def test_rollback_of_a_drifted_protected_environment_is_refused(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    by_hand(pro, ["CREATE INDEX posts_title_idx ON posts (title)"])

    refused = project.run("rollback", "pro", "--yes")
    assert refused.exit_code == 3, refused.output
    assert "pro has drifted" in refused.output
    assert "003_add_user_name" in pro.history()

    allowed = project.run("rollback", "pro", "--yes", "--allow-drift", "--reason", "undo 003")
    assert allowed.exit_code == 0, allowed.output
    assert "003_add_user_name" not in pro.history()
    assert "drift allowed: undo 003 (drifted: 1 object: index posts_title_idx)" in (
        project.logs()[-1].read_text(encoding="utf-8")
    )


def test_no_scratch_database_is_no_verdict_with_the_way_out(
    project: ProjectDir, pg_database: Database
) -> None:
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    role = f"sqlstage_nocreatedb_{uuid.uuid4().hex[:8]}"
    pg_database.query(f"CREATE ROLE {role} LOGIN")  # no CREATEDB
    name = urlsplit(pg_database.url).path.lstrip("/")
    pg_database.query(f'ALTER DATABASE "{name}" OWNER TO {role}')
    parts = urlsplit(pg_database.url)
    url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
    try:
        for file, sql in THREE.items():
            project.write(file, sql)
        write_config(project, "sqlite:///dev.db", url)

        refused = project.run("apply", "pro", "--yes")

        assert refused.exit_code == 6, refused.output
        assert "error: pro: cannot create a scratch database on" in refused.output
        assert "[drift.pro] check = false" in refused.output
        assert pg_database.history() == []
        write_config(project, "sqlite:///dev.db", url, "\n[drift.pro]\ncheck = false\n")
        assert project.run("apply", "pro", "--yes").exit_code == 0
    finally:
        pg_database.query(f'ALTER DATABASE "{name}" OWNER TO CURRENT_USER')
        pg_database.query(f"DROP OWNED BY {role} CASCADE")
        pg_database.query(f"DROP ROLE {role}")


def test_drift_of_production_at_a_terminal_asks_for_its_url(
    project: ProjectDir, pg_database: Database, pg_database2: Database
) -> None:
    """As `init` configures pro: its URL typed at a hidden prompt, never stored."""
    import os
    import sys

    import pexpect

    three_applied(project, pg_database.url, pg_database2.url)
    by_hand(pg_database2, ["CREATE INDEX posts_title_idx ON posts (title)"])
    (project.root / "sqlstage.toml").write_text(
        f'[environments.dev]\nurl = "{pg_database.url}"\n\n'
        '[environments.pro]\nurl = "prompt"\nprotected = true\n',
        encoding="utf-8",
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "sqlstage", "-C", str(project.root), "drift", "pro"],
        encoding="utf-8",
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    child.expect("Database URL for pro")
    child.sendline(pg_database2.url)
    child.expect(pexpect.EOF)
    child.close()

    assert child.exitstatus == 1, child.before
    assert "extra index posts_title_idx" in child.before
    assert pg_database2.url not in project.status_file.read_text(encoding="utf-8")
    offline = project.run("status")
    assert "pro: DRIFTED since " in offline.output


def test_status_check_counts_a_drifted_environment_as_not_up_to_date(
    project: ProjectDir, sqlite_pair: tuple[Database, Database]
) -> None:
    dev, pro = sqlite_pair
    three_applied(project, dev.url, pro.url)
    assert project.run("status", "--check").exit_code == 0
    by_hand(pro, ["CREATE INDEX posts_title_idx ON posts (title)"])
    assert project.run("drift", "pro").exit_code == 1

    result = project.run("status", "--check")

    assert result.exit_code == 5, result.output
    assert "pro has a drifted schema (1 object: index posts_title_idx)" in result.output
    document = json.loads(project.run("status", "--json").stdout)
    assert document["environments"]["pro"]["drift"]["objects"] == ["index posts_title_idx"]
    assert document["environments"]["pro"]["upToDate"] is False
    assert document["environments"]["dev"]["drift"] is None
