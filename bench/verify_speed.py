"""How much verify costs next to apply, on the 300-migration corpus the tests generate.

    python bench/verify_speed.py [--count 300] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
        [--only sqlite|postgresql] [--profile]

Applies the corpus to a fresh database, then verifies it (up, down, up on a scratch database),
and prints both times and their ratio for SQLite and PostgreSQL. Not a test: numbers only.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

KINDS = [
    (
        "CREATE TABLE t{n} (id INTEGER PRIMARY KEY, v TEXT NOT NULL DEFAULT 'x');",
        "DROP TABLE t{n};",
    ),
    ("ALTER TABLE t{p} ADD COLUMN c{n} INTEGER;", "ALTER TABLE t{p} DROP COLUMN c{n};"),
    ("CREATE INDEX i{n} ON t{p} (v);", "DROP INDEX i{n};"),
    ("CREATE VIEW v{n} AS SELECT id, v FROM t{p};", "DROP VIEW v{n};"),
    ("INSERT INTO t{p} (id, v) VALUES ({n}, 'row');", "DELETE FROM t{p} WHERE id = {n};"),
]


def write_corpus(folder: Path, count: int) -> None:
    """The same corpus as tests/test_verify.py's 300-migration test."""
    folder.mkdir(parents=True)
    table = 1
    for n in range(1, count + 1):
        forward, back = KINDS[(n - 1) % len(KINDS)]
        if n % len(KINDS) == 1:
            table = n
        text = f"{forward.format(n=n, p=table)}\n\n-- rollback\n-- {back.format(n=n, p=table)}\n"
        (folder / f"{n:04d}_step_{n}.sql").write_text(text)


def run(root: Path, url: str, count: int, profile: bool) -> tuple[float, float]:
    from sqlstage.project import Project

    migrations = root / "database" / "migrations" / "sql"
    write_corpus(migrations, count)
    (root / "sqlstage.toml").write_text(f'[environments.dev]\nurl = "{url}"\n')
    project = Project.load(root)
    started = time.perf_counter()
    with project.connect("dev") as connection:
        project.apply(connection, project.plan_apply(connection))
    apply_seconds = time.perf_counter() - started
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    report = project.verify()
    if profiler:
        profiler.disable()
    verify_seconds = time.perf_counter() - started
    assert report.outcome.ok, [c for c in report.outcome.checks if not c.ok][:3]
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    return apply_seconds, verify_seconds


def pg_database(admin_url: str) -> tuple[str, str]:
    name = f"sqlstage_bench_{uuid.uuid4().hex[:12]}"
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    return name, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument(
        "--pg",
        default=os.environ.get("SQLSTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    for dialect in ("sqlite", "postgresql"):
        if args.only and dialect != args.only:
            continue
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            if dialect == "sqlite":
                times = run(root, f"sqlite:///{root / 'dev.db'}", args.count, args.profile)
            else:
                import psycopg

                name, url = pg_database(args.pg)
                with psycopg.connect(args.pg, autocommit=True) as admin:
                    admin.execute(f'CREATE DATABASE "{name}"')
                    try:
                        times = run(root, url, args.count, args.profile)
                    finally:
                        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        apply_s, verify_s = times
        print(
            f"{dialect:10} {args.count} migrations: apply {apply_s:5.2f} s, "
            f"verify {verify_s:5.2f} s ({verify_s / apply_s:.1f}x apply)",
            flush=True,
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
