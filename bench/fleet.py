"""Fleet bench: one migration to N tenant databases on one server, and to N schemas of one
database, by `sqlstage apply` with parallel 1, 4 and 8, against a plain shell loop of
`psql -1 -f` over the same targets.

    python bench/fleet.py                 # N = 200, 2 interleaved rounds
    python bench/fleet.py --count 1000    # the issue's size (slow on a shared machine)

Each round applies one new migration (`CREATE TABLE t_K ...; CREATE INDEX ...`) with every
tool in turn (rotated), so each timed run does the same work: one migration per target.
A first, untimed sqlstage run creates the history and marker tables. Reported per tool: the
fastest round's wall time, targets per second, the process's peak memory (max RSS from
`os.wait4`, the shell loop's largest psql) and the most connections it held at once (polled
from pg_stat_activity every 10 ms). Needs PostgreSQL at $SQLSTAGE_TEST_PG and `psql`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ADMIN = os.environ.get("SQLSTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PARALLEL = (1, 4, 8)


def url_for(database: str) -> str:
    return urlunsplit(urlsplit(ADMIN)._replace(path=f"/{database}"))


class Peak(threading.Thread):
    """The most connections to the bench's databases (names starting `prefix`) at once."""

    def __init__(self, prefix: str) -> None:
        super().__init__(daemon=True)
        self.prefix, self.most, self.done = prefix, 0, threading.Event()

    def run(self) -> None:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            while not self.done.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s",
                    [self.prefix + "%"],
                ).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)
                time.sleep(0.01)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.most


def timed(command: list[str], env: dict[str, str], prefix: str) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in KiB (the process's, or its largest child's), connections."""
    peak = Peak(prefix)
    peak.start()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode() if process.stderr else ""
    connections = peak.stop()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])}... failed: {errors[-2000:]}")
    # wait4's ru_maxrss covers the child and the children it waited for (each psql)
    return wall, usage.ru_maxrss, connections


def migration_sql(number: int) -> str:
    return (
        f"CREATE TABLE t_{number} (id bigint PRIMARY KEY, tenant text NOT NULL);\n"
        f"CREATE INDEX t_{number}_tenant ON t_{number} (tenant);\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "fleet.json"
    )
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:6]
    results = {}
    for kind in ("databases", "schemas"):
        results[kind] = run_kind(kind, args.count, args.rounds, f"fb_{tag}")
    args.out.write_text(json.dumps({"count": args.count, **results}, indent=2) + "\n")
    print_table(args.count, results)


def run_kind(kind: str, count: int, rounds: int, tag: str) -> dict[str, dict[str, float]]:
    root = Path(tempfile.mkdtemp(prefix=f"fleetbench-{kind}-"))
    made: list[str] = []
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        if kind == "databases":
            for index in range(count):
                name = f"{tag}_{index:04d}"
                admin.execute(f'CREATE DATABASE "{name}"')
                made.append(name)
            urls = [url_for(name) for name in made]
            (root / "tenants.txt").write_text("\n".join(urls) + "\n")
            fleet = 'targets_file = "tenants.txt"'
            loop_targets = [(url, "") for url in urls]
        else:
            name = f"{tag}_schemas"
            admin.execute(f'CREATE DATABASE "{name}"')
            made.append(name)
            schemas = [f"tenant_{index:04d}" for index in range(count)]
            with psycopg.connect(url_for(name), autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f"CREATE SCHEMA {schema}")
            fleet = f'url = "{url_for(name)}"\nschemas = {json.dumps(schemas)}'
            loop_targets = [(url_for(name), f"-csearch_path={schema}") for schema in schemas]
    try:
        return rounds_of(root, fleet, loop_targets, rounds, tag)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(root, ignore_errors=True)


def rounds_of(
    root: Path, fleet: str, loop_targets: list[tuple[str, str]], rounds: int, tag: str
) -> dict[str, dict[str, float]]:
    sql_dir = root / "database" / "migrations" / "sql"
    sql_dir.mkdir(parents=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    number = 1
    (sql_dir / "001_start.sql").write_text(migration_sql(number))
    write_config(root, fleet, 8)
    sqlstage = [sys.executable, "-m", "sqlstage", "-C", str(root), "apply", "fleet", "--yes"]
    timed(sqlstage, env, tag)  # history and marker tables: not timed
    tools = ["psql loop", *(f"sqlstage parallel {p}" for p in PARALLEL)]
    runs: dict[str, list[tuple[float, int, int]]] = {tool: [] for tool in tools}
    for round_number in range(rounds):
        order = tools[round_number % len(tools) :] + tools[: round_number % len(tools)]
        for tool in order:
            number += 1
            sql = migration_sql(number)
            if tool == "psql loop":
                script = root / f"loop_{number}.sql"
                script.write_text(sql)
                lines = [
                    f"PGOPTIONS='{options}' psql -X -q -1 -v ON_ERROR_STOP=1 -f {script} '{url}'"
                    for url, options in loop_targets
                ]
                (root / "loop.sh").write_text("set -e\n" + "\n".join(lines) + "\n")
                runs[tool].append(timed(["bash", str(root / "loop.sh")], env, tag))
            else:
                (sql_dir / f"{number:03d}_t{number}.sql").write_text(sql)
                write_config(root, fleet, int(tool.rsplit(" ", 1)[1]))
                runs[tool].append(timed(sqlstage, env, tag))
            print(f"  {tool}: {runs[tool][-1][0]:.1f} s", file=sys.stderr)
    count = len(loop_targets)
    return {
        tool: {
            "min_s": min(r[0] for r in found),
            "targets_per_s": count / min(r[0] for r in found),
            "peak_rss_mib": max(r[1] for r in found) / 1024,
            "connections": max(r[2] for r in found),
        }
        for tool, found in runs.items()
    }


def write_config(root: Path, fleet: str, parallel: int) -> None:
    (root / "sqlstage.toml").write_text(
        f"[environments.fleet]\n{fleet}\nparallel = {parallel}\ncanary = 1\n"
    )


def print_table(count: int, results: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"| {count} targets | tool | min s | targets/s | peak memory | connections at once |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for kind, tools in results.items():
        for tool, row in tools.items():
            print(
                f"| {kind} | {tool} | {row['min_s']:.1f} | {row['targets_per_s']:.0f} | "
                f"{row['peak_rss_mib']:.0f} MiB | {row['connections']:.0f} |"
            )


if __name__ == "__main__":
    main()
