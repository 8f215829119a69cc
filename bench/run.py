"""Benchmark sqlstage against the floor (plain psycopg) and its peers (dbmate, yoyo-migrations).

    python bench/run.py            # the full run: 1,000 migrations, 10,000 for offline commands
    python bench/run.py --quick    # a smoke run: 200 / 2,000 migrations, 3 rounds

Every figure is a separate process (interpreter start-up included), run --repeats times,
interleaved round by round (each round starting with the next tool) so a slow minute hits
everyone alike; targets are judged on the MIN wall time and the min CPU (user + sys, os.wait4),
which other work on the machine can only add to. One extra untimed round goes through a
loopback proxy (pgproxy.py) that counts round trips and reads the backends' CPU. Each apply gets
a fresh PostgreSQL database, dropped afterwards. Prints a Markdown table and writes the same as
JSON to bench/results/. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
DEFAULT_PG = os.environ.get("SQLSTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ENVIRONMENTS = ("dev", "staging", "pro")

# The floor: one connection, each file in its own transaction with a history row; the whole
# file goes to the server in one call (psycopg's simple protocol allows several statements).
FLOOR_APPLY = r"""
import hashlib, pathlib, sys, psycopg
folder, url = sys.argv[1:3]
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute("CREATE TABLE floor_history (migration text PRIMARY KEY, checksum text NOT NULL,"
                 " applied_at timestamptz NOT NULL)")
    for path in sorted(pathlib.Path(folder).glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        with conn.transaction():
            conn.execute(sql)
            conn.execute("INSERT INTO floor_history VALUES (%s, %s, now())",
                         (path.stem, hashlib.sha256(sql.encode()).hexdigest()))
"""
# The same, one call (one round trip) per statement, as sqlstage executes them: the difference
# to FLOOR_APPLY is what per-statement execution costs by itself. The generated files separate
# their statements with ";\n\n", so splitting needs no parser here.
FLOOR_PER_STATEMENT = FLOOR_APPLY.replace(
    "            conn.execute(sql)\n",
    '            for statement in sql.split(";\\n\\n"):\n'
    "                if statement.strip():\n"
    "                    conn.execute(statement)\n",
)
# The no-op floor: connect, read the history once, compare with the file names.
FLOOR_NOOP = r"""
import pathlib, sys, psycopg
folder, url = sys.argv[1:3]
with psycopg.connect(url, autocommit=True) as conn:
    done = {row[0] for row in conn.execute("SELECT migration FROM floor_history")}
todo = [p for p in sorted(pathlib.Path(folder).glob("*.sql")) if p.stem not in done]
assert not todo, todo
"""


# -- the migrations ------------------------------------------------------------------------
def forward_sql(number: int) -> str:
    """Create table + index + 10 rows (one multi-row INSERT): three statements."""
    table = f"bench_{number:05d}"
    rows = ", ".join(f"({i}, 'row {i} of {table}')" for i in range(1, 11))
    return (
        f"CREATE TABLE {table} (\n    id integer PRIMARY KEY,\n    name text NOT NULL,\n"
        f"    created_at timestamptz NOT NULL DEFAULT now()\n);\n\n"
        f"CREATE INDEX {table}_name_idx ON {table} (name);\n\n"
        f"INSERT INTO {table} (id, name) VALUES\n    {rows};\n\n"
    )


def rollback_sql(number: int) -> str:
    return f"DROP TABLE bench_{number:05d};"


def file_stem(number: int) -> str:
    return f"{number:05d}_create_bench_{number:05d}"


def write_sqlstage_project(root: Path, count: int, applied: dict[str, int] | None = None) -> Path:
    """A sqlstage project with `count` migrations; `applied` pre-fills status.json offline."""
    folder = root / "database" / "migrations" / "sql"
    folder.mkdir(parents=True)
    (root / "sqlstage.toml").write_text(
        '[environments.dev]\nname = "Development"\nurl = "env:DATABASE_URL"\n\n'
        '[environments.staging]\nname = "Staging"\nurl = "env:STAGING_URL"\n\n'
        '[environments.pro]\nname = "Production"\nurl = "prompt"\nprotected = true\n',
        encoding="utf-8",
    )
    for number in range(1, count + 1):
        text = f"{forward_sql(number)}-- rollback\n-- {rollback_sql(number)}\n"
        (folder / f"{file_stem(number)}.sql").write_text(text, encoding="utf-8")
    if applied:
        write_status_json(root / "database" / "migrations" / "status.json", applied)
    return root


def write_status_json(path: Path, applied: dict[str, int]) -> None:
    """status.json as sqlstage writes it: environment -> first `n` migrations applied."""
    from sqlstage.migration import checksum  # sqlstage's own definition of an unedited file

    environments: dict[str, Any] = {}
    for key, n in applied.items():
        rows = {
            file_stem(i): {
                "appliedAt": "2025-12-04T10:22:31Z",
                "checksum": checksum(forward_sql(i)),
            }
            for i in range(1, n + 1)
        }
        last = file_stem(n) if n else None
        environments[key] = {
            "name": key,
            "lastApplied": last,
            "appliedAt": "2025-12-04T10:22:31Z" if n else None,
            "applied": rows,
        }
    path.write_text(json.dumps({"lastUpdated": None, "environments": environments}, indent=2))


def write_dbmate_folder(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for number in range(1, count + 1):
        text = f"-- migrate:up\n{forward_sql(number)}-- migrate:down\n{rollback_sql(number)}\n"
        (folder / f"{file_stem(number)}.sql").write_text(text, encoding="utf-8")
    return folder


def write_plain_folder(folder: Path, count: int) -> Path:
    """Forward SQL only: the floor and yoyo-migrations (its rollbacks live in other files)."""
    folder.mkdir(parents=True)
    for number in range(1, count + 1):
        (folder / f"{file_stem(number)}.sql").write_text(forward_sql(number), encoding="utf-8")
    return folder


# -- running and measuring -----------------------------------------------------------------
@dataclass
class Sample:
    seconds: float
    cpu_seconds: float  # user + system time of the process: steadier than wall when busy
    peak_kb: int


@dataclass
class Case:
    key: str
    label: str
    group: str
    n: int
    samples: list[Sample] = field(default_factory=list)
    #: from the counting round through the proxy (apply and no-op rows only)
    trips: int | None = None
    server_cpu: float | None = None
    #: turns of the same tool's apply of one migration (what a run costs whatever N is)
    trips_one: int | None = None

    @property
    def min(self) -> float:
        return min(s.seconds for s in self.samples)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        """The least disturbed run's CPU: other work on the machine only ever adds to it."""
        return min(s.cpu_seconds for s in self.samples)

    @property
    def peak_mb(self) -> float:
        return max(s.peak_kb for s in self.samples) / 1024


class CommandFailed(Exception):
    pass


# Children are started by this small launcher, not by the bench: a child's peak memory
# (ru_maxrss) starts at the size of the process that spawned it, and the launcher is as
# small as a Python process gets, so peaks are honest down to `python -c pass`'s.
LAUNCHER = r"""
import json, os, subprocess, sys, tempfile, time
for line in sys.stdin:
    job = json.loads(line)
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(job["cmd"], cwd=job["cwd"], env=job["env"],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        out.seek(0)
        tail = out.read()[-3000:].decode(errors="replace")
    print(json.dumps({"seconds": elapsed, "peak_kb": usage.ru_maxrss, "tail": tail,
                      "cpu": usage.ru_utime + usage.ru_stime,
                      "code": os.waitstatus_to_exitcode(status)}), flush=True)
"""
_launcher: subprocess.Popen[str] | None = None


def timed(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> Sample:
    """Run a command to completion: its wall time, CPU (user + sys) and peak memory."""
    global _launcher
    if _launcher is None:
        _launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
    assert _launcher.stdin is not None and _launcher.stdout is not None
    _launcher.stdin.write(json.dumps({"cmd": cmd, "cwd": str(cwd), "env": env}) + "\n")
    _launcher.stdin.flush()
    result = json.loads(_launcher.stdout.readline())
    if result["code"] not in ok:
        raise CommandFailed(f"{' '.join(cmd)} exited {result['code']}:\n{result['tail']}")
    return Sample(result["seconds"], result["cpu"], result["peak_kb"])


def stop_launcher() -> None:
    global _launcher
    if _launcher is not None:
        assert _launcher.stdin is not None
        _launcher.stdin.close()
        _launcher.wait()
        _launcher = None


ADMIN = r"""
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=5)
print(conn.execute("SHOW server_version").fetchone()[0], flush=True)
for line in sys.stdin:
    verb, name = line.split()
    quoted = '"' + name + '"'
    if verb == "create":
        conn.execute("CREATE DATABASE " + quoted)
        if sys.argv[2] == "fast":  # this database only: commits do not wait for the disk
            conn.execute("ALTER DATABASE " + quoted + " SET synchronous_commit = off")
    else:
        conn.execute("DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)")
    print("ok", flush=True)
"""


class Postgres:
    """Creates fresh databases on the admin URL's server and drops every one it made.

    The admin connection lives in a child process: the bench itself imports no psycopg, so
    its resident size, which each child inherits as its starting peak, stays small.
    """

    def __init__(self, admin_url: str, durable: bool) -> None:
        self.admin_url = admin_url
        mode = "durable" if durable else "fast"
        self.admin = subprocess.Popen(
            [sys.executable, "-c", ADMIN, admin_url, mode],
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.made: list[str] = []
        self.version = self._answer()
        parts = urlsplit(admin_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5432
        #: set during the counting round: URLs then point at the proxy
        self.via: int | None = None

    def _answer(self) -> str:
        assert self.admin.stdout is not None
        line = self.admin.stdout.readline().strip()
        if not line:
            raise SystemExit(f"cannot use PostgreSQL at {self.admin_url} (see the error above)")
        return line

    def _say(self, verb: str, name: str) -> None:
        assert self.admin.stdin is not None
        self.admin.stdin.write(f"{verb} {name}\n")
        self.admin.stdin.flush()
        self._answer()

    def fresh(self) -> str:
        name = f"sqlstage_bench_{uuid.uuid4().hex[:12]}"
        self._say("create", name)
        self.made.append(name)
        return name

    def drop(self, name: str) -> None:
        self._say("drop", name)
        if name in self.made:
            self.made.remove(name)

    def url(self, name: str, scheme: str | None = None, query: str = "") -> str:
        parts = urlsplit(self.admin_url)
        netloc = parts.netloc
        if self.via is not None:  # the counting proxy, on loopback
            user = netloc.rsplit("@", 1)[0] + "@" if "@" in netloc else ""
            netloc = f"{user}127.0.0.1:{self.via}"
        return urlunsplit(
            parts._replace(
                scheme=scheme or parts.scheme,
                netloc=netloc,
                path=f"/{name}",
                query=query or parts.query,
            )
        )

    def close(self) -> None:
        for name in list(self.made):
            self.drop(name)
        assert self.admin.stdin is not None
        self.admin.stdin.close()
        self.admin.wait()


# -- the tools -----------------------------------------------------------------------------
def next_to_python(name: str) -> str | None:
    script = Path(sys.executable).parent / name
    return str(script) if script.exists() else shutil.which(name)


def find_sqlstage() -> list[str]:
    script = Path(sys.executable).parent / "sqlstage"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sqlstage"]


def find_dbmate(given: str | None) -> str | None:
    """The dbmate binary itself (npm's node wrapper would add node's start-up to its time)."""
    candidates = (
        [given]
        if given
        else [
            shutil.which("dbmate"),
            *map(str, Path.cwd().glob("node_modules/@dbmate/*/bin/dbmate")),
            *map(str, HERE.glob("node_modules/@dbmate/*/bin/dbmate")),
        ]
    )
    return next((c for c in candidates if c and Path(c).is_file()), None)


@dataclass
class Tool:
    """How one tool applies a folder to a database, and what its no-op run is."""

    key: str
    label: str
    folder: Path
    apply: Callable[[str], list[str]]  # database name -> command
    env: Callable[[str], dict[str, str]]
    reset: Callable[[], None] = lambda: None
    noop: Callable[[str], list[str]] | None = None  # default: apply again


def tools(args: argparse.Namespace, pg: Postgres, work: Path, notes: list[str]) -> list[Tool]:
    n = args.n
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")}
    plain = write_plain_folder(work / "plain", n)
    project = write_sqlstage_project(work / "sqlstage", n)
    sqlstage = find_sqlstage()
    settle(notes)

    def reset_sqlstage() -> None:  # each apply starts from no status.json, logs or cache
        (project / "database" / "migrations" / "status.json").unlink(missing_ok=True)
        shutil.rmtree(project / "logs", ignore_errors=True)

    found: list[Tool] = [
        Tool(
            "floor",
            "floor: psycopg, 1 tx per file",
            plain,
            lambda db: [sys.executable, "-c", FLOOR_APPLY, str(plain), pg.url(db)],
            lambda db: base_env,
            noop=lambda db: [sys.executable, "-c", FLOOR_NOOP, str(plain), pg.url(db)],
        ),
        Tool(
            "floor-stmt",
            "floor: psycopg, 1 call per statement",
            plain,
            lambda db: [sys.executable, "-c", FLOOR_PER_STATEMENT, str(plain), pg.url(db)],
            lambda db: base_env,
            noop=lambda db: [sys.executable, "-c", FLOOR_NOOP, str(plain), pg.url(db)],
        ),
        Tool(
            "sqlstage",
            "sqlstage apply",
            project,
            lambda db: [*sqlstage, "apply", "dev", "--yes"],
            lambda db: {**base_env, "DATABASE_URL": pg.url(db)},
            reset_sqlstage,
        ),
    ]
    if args.no_peers:
        notes.append("peers skipped (--no-peers)")
        return found
    dbmate = find_dbmate(args.dbmate)
    if dbmate:
        folder = write_dbmate_folder(work / "dbmate", n)
        found.append(
            Tool(
                "dbmate",
                "dbmate migrate",
                folder,
                lambda db: [
                    dbmate,
                    "--url",
                    pg.url(db, "postgres", "sslmode=disable"),
                    "--migrations-dir",
                    str(folder),
                    "--no-dump-schema",
                    "migrate",
                ],
                lambda db: base_env,
            )
        )
    else:
        notes.append("dbmate skipped: not found (npm install --prefix bench dbmate, or --dbmate)")
    yoyo = args.yoyo or next_to_python("yoyo")
    if yoyo:
        found.append(
            Tool(
                "yoyo",
                "yoyo apply",
                plain,
                lambda db: [
                    yoyo,
                    "apply",
                    "--batch",
                    "--no-config-file",
                    "--database",
                    pg.url(db, "postgresql+psycopg"),
                    str(plain),
                ],
                lambda db: base_env,
            )
        )
    else:
        notes.append("yoyo-migrations skipped: not found (pip install yoyo-migrations)")
    return found


# -- the run -------------------------------------------------------------------------------
def rotated(items: list[Any], round_number: int) -> list[Any]:
    """Each round starts with the next tool, so no tool always runs right after the same one."""
    k = round_number % len(items)
    return items[k:] + items[:k]


def bench_apply(args: argparse.Namespace, pg: Postgres, work: Path, notes: list[str]) -> list[Case]:
    """Per round and per tool: a fresh database, apply everything, then a no-op apply.
    Then one counting round through the proxy: round trips and the backends' CPU."""
    found = tools(args, pg, work, notes)
    applies = {t.key: Case(t.key, t.label, "apply", args.n) for t in found}
    noops = {
        t.key: Case(f"{t.key}-noop", f"{t.label} (no-op)", "no-op", args.n)
        for t in found
        if t.key != "floor-stmt"
    }  # its no-op is the floor's
    noops["floor"].label = "floor: psycopg, read history"
    # One untimed round first: the first apply of a bench run has been up to 2.5x faster
    # than every later one (2.1-2.2 s against 5.3-6.9 s for the same floor, in each of three
    # runs on 2026-12-01, on the server side: the client's CPU was the same), and it always
    # fell to the first tool of round 1.
    for tool in found:
        db = pg.fresh()
        try:
            tool.reset()
            timed(tool.apply(db), tool.folder, tool.env(db))
        finally:
            pg.drop(db)
    print("  untimed warm-up round done", file=sys.stderr)
    for round_number in range(args.repeats):
        for tool in rotated(found, round_number):
            db = pg.fresh()
            try:
                tool.reset()
                applies[tool.key].samples.append(timed(tool.apply(db), tool.folder, tool.env(db)))
                if tool.key in noops:
                    noop = tool.noop or tool.apply
                    noops[tool.key].samples.append(timed(noop(db), tool.folder, tool.env(db)))
            finally:
                pg.drop(db)
        print(f"  round {round_number + 1}/{args.repeats} done", file=sys.stderr)
    one = tools(argparse.Namespace(**{**vars(args), "n": 1}), pg, work / "one", [])
    count_round(found, applies, noops, pg, notes)
    count_one(one, applies, pg)
    return [*applies.values(), *noops.values()]


def count_round(
    found: list[Tool],
    applies: dict[str, Case],
    noops: dict[str, Case],
    pg: Postgres,
    notes: list[str],
) -> None:
    """One more apply + no-op per tool through the counting proxy (not timed: the proxy's own
    work would be in the wall time)."""
    from pgproxy import CountingProxy

    proxy = CountingProxy(pg.host, pg.port).start()
    pg.via = proxy.port
    try:
        for tool in found:
            db = pg.fresh()
            try:
                tool.reset()
                for case, command in (
                    (applies[tool.key], tool.apply),
                    (noops.get(tool.key), tool.noop or tool.apply),
                ):
                    proxy.reset()
                    timed(command(db), tool.folder, tool.env(db))
                    trips, cpu, _ = proxy.totals()
                    if case is not None:
                        case.trips, case.server_cpu = trips, cpu
            finally:
                pg.drop(db)
    finally:
        pg.via = None
        proxy.stop()
    print("  counting round done", file=sys.stderr)
    notes.append(
        "trips and server cpu come from one extra, untimed run per row through a loopback "
        "proxy that counts turns of the conversation and reads each backend's /proc CPU "
        "before it exits; trips / migration is (apply of N - apply of 1) / (N - 1): what "
        "each migration adds, without what any run costs once (connecting, the history "
        "read, creating the history table and the marker, the run lock)"
    )


def bench_drift(args: argparse.Namespace, pg: Postgres, work: Path, notes: list[str]) -> list[Case]:
    """Per round: a fresh database, `apply dev` of --drift-n migrations, then `drift dev`
    over it (the history replayed on a scratch database, both schemas read and compared)."""
    n = args.drift_n
    project = write_sqlstage_project(work / "drift", n)
    sqlstage = find_sqlstage()
    apply = Case("drift-apply", "sqlstage apply (drift's database)", "drift", n)
    check = Case("drift", "sqlstage drift dev", "drift", n)
    settle(notes)
    for round_number in range(args.repeats):
        db = pg.fresh()
        try:
            (project / "database" / "migrations" / "status.json").unlink(missing_ok=True)
            shutil.rmtree(project / "logs", ignore_errors=True)
            env = {**os.environ, "DATABASE_URL": pg.url(db)}
            apply.samples.append(timed([*sqlstage, "apply", "dev", "--yes"], project, env))
            check.samples.append(timed([*sqlstage, "drift", "dev"], project, env))
        finally:
            pg.drop(db)
        print(f"  round {round_number + 1}/{args.repeats} done", file=sys.stderr)
    notes.append(
        "drift dev replays the history on a scratch database it creates and drops (which "
        "commits with synchronous_commit off, as the bench databases do) and snapshots both "
        "sides; its floor is the apply of the same migrations in the same round"
    )
    return [apply, check]


def count_one(one: list[Tool], applies: dict[str, Case], pg: Postgres) -> None:
    """Each tool's apply of a single migration through the proxy, on a fresh database."""
    from pgproxy import CountingProxy

    proxy = CountingProxy(pg.host, pg.port).start()
    pg.via = proxy.port
    try:
        for tool in one:
            db = pg.fresh()
            try:
                tool.reset()
                proxy.reset()
                timed(tool.apply(db), tool.folder, tool.env(db))
                applies[tool.key].trips_one = proxy.totals()[0]
            finally:
                pg.drop(db)
    finally:
        pg.via = None
        proxy.stop()


def bench_offline(args: argparse.Namespace, work: Path, notes: list[str]) -> list[Case]:
    """status/pending over --offline-n files; lint over --n files; --help; interpreter start."""
    n = args.offline_n
    big = write_sqlstage_project(
        work / "offline", n, {"dev": n, "staging": n - 10, "pro": n - n // 10}
    )
    small = work / "sqlstage"  # the apply project: lint reads the same --n files
    sqlstage = find_sqlstage()
    env = dict(os.environ)
    cases = [
        (
            Case("python", "python -c pass (start-up floor)", "offline", 0),
            [sys.executable, "-c", "pass"],
            big,
            (0,),
        ),
        (Case("help", "sqlstage --help", "offline", 0), [*sqlstage, "--help"], big, (0,)),
        (
            Case("status", "sqlstage status (offline)", "offline", n),
            [*sqlstage, "status"],
            big,
            (0,),
        ),
        (
            Case("status-json", "sqlstage status --json", "offline", n),
            [*sqlstage, "status", "--json"],
            big,
            (0,),
        ),
        (
            Case("pending", "sqlstage pending pro", "offline", n),
            [*sqlstage, "pending", "pro"],
            big,
            (0,),
        ),
    ]
    # every file named (by default lint takes only what some environment lacks);
    # findings exit 1: still a complete lint run
    files = sorted(str(p) for p in (small / "database" / "migrations" / "sql").glob("*.sql"))
    try:
        timed([*sqlstage, "lint", "--help"], small, env)
        cases.append(
            (
                Case("lint", "sqlstage lint (every file)", "lint", args.n),
                [*sqlstage, "lint", *files],
                small,
                (0, 1),
            )
        )
    except CommandFailed:
        notes.append("lint skipped: `sqlstage lint --help` fails (no lint command on this build)")
    squawk = None if args.no_peers else args.squawk or next_to_python("squawk")
    if squawk:
        cases.append(
            (
                Case("squawk", "squawk (the same files)", "lint", args.n),
                [squawk, *files],
                small,
                (0, 1),
            )
        )
    elif not args.no_peers:
        notes.append("squawk skipped: not found (pip install squawk-cli, or --squawk PATH)")
    cache = big / "logs" / "migrations" / ".cache"
    cold = Case("status-cold", "sqlstage status (no checksum cache)", "offline", n)
    cases.insert(3, (cold, [*sqlstage, "status"], big, (0,)))
    settle(notes)
    for _case, cmd, cwd, _ok in cases:  # warm the page cache, the .pyc files and the cache
        timed(cmd, cwd, env, ok=tuple(range(256)))
    for round_number in range(args.repeats):
        for case, cmd, cwd, ok in rotated(cases, round_number):
            if case is cold:  # every file read and hashed, as before the cache existed
                shutil.rmtree(cache, ignore_errors=True)
            case.samples.append(timed(cmd, cwd, env, ok))
            if case is cold:
                timed(cmd, cwd, env, ok)  # the cache back for the other rows (untimed)
    return [case for case, *_ in cases]


def settle(notes: list[str]) -> None:
    """sqlstage does not cache files changed in the last 3 s (sqlstage.checksum_cache): let
    the generated files age past that, so that the rows measure the cache they claim to."""
    time.sleep(3.5)
    note = "files are 3.5 s old before the first run, so sqlstage's checksum cache can hold them"
    if note not in notes:
        notes.append(note)


# -- the report ----------------------------------------------------------------------------
def _ratio(value: float | None, other: float | None) -> float | None:
    return value / other if value is not None and other else None


def trips_per_migration(case: Case, by_key: dict[str, Case]) -> float | None:
    """Round trips each migration adds: (apply of N's - apply of 1's) / (N - 1), so
    connecting, the history read, creating sqlstage's tables and the run lock are not spread
    over the migrations; (apply's - the no-op's) / N when there is no apply of one."""
    if case.group != "apply" or case.trips is None:
        return None
    if case.trips_one is not None and case.n > 1:
        return (case.trips - case.trips_one) / (case.n - 1)
    noop = by_key.get("floor-noop" if case.key == "floor-stmt" else f"{case.key}-noop")
    base = noop.trips if noop and noop.trips is not None else 0
    return (case.trips - base) / case.n if case.n else None


def verdict(case: Case, by_key: dict[str, Case]) -> str:
    """Issue 15's targets, judged on min wall and CPU (the medians move with the machine)."""
    checks: list[tuple[str, bool | None]] = []

    def peer(key: str) -> Case | None:
        found = by_key.get(key)
        return found if found and found.samples else None

    if case.key == "sqlstage":
        floor, dbmate = peer("floor"), peer("dbmate")
        trips = trips_per_migration(case, by_key)
        checks = [
            ("min <= 1.00x floor", case.min <= floor.min if floor else None),
            ("cpu <= 1.5x floor", case.cpu <= 1.5 * floor.cpu if floor else None),
            ("min < dbmate", case.min < dbmate.min if dbmate else None),
            ("1 trip/migration", trips <= 1.0 if trips is not None else None),
        ]
    elif case.key == "sqlstage-noop":
        dbmate = peer("dbmate-noop")
        checks = [
            ("min <= 0.08 s", case.min <= 0.08),
            ("<= 3x dbmate", case.min <= 3 * dbmate.min if dbmate else None),
        ]
    elif case.key in ("status", "pending"):
        checks = [("min <= 0.25 s", case.min <= 0.25)]
    elif case.key == "help":
        checks = [("min <= 0.05 s", case.min <= 0.05)]
    elif case.key == "drift":
        base = peer("drift-apply")
        checks = [("min <= 1.5x apply", case.min <= 1.5 * base.min if base else None)]
    elif case.key == "lint":
        squawk = peer("squawk")
        checks = [("min <= 1.5x squawk", case.min <= 1.5 * squawk.min if squawk else None)]
    parts = [
        f"{name}: {'met' if ok else 'MISSED' if ok is not None else 'no peer'}"
        for name, ok in checks
    ]
    return "; ".join(parts)


PEERS = {"apply": ("dbmate", "yoyo"), "no-op": ("dbmate", "yoyo"), "lint": ("squawk",)}


def peer_ratios(case: Case, by_key: dict[str, Case]) -> dict[str, float]:
    if not case.key.startswith("sqlstage") and case.key != "lint":
        return {}
    suffix = "-noop" if case.group == "no-op" else ""
    ratios = {}
    for name in PEERS.get(case.group, ()):
        other = by_key.get(name + suffix)
        if other and other.samples:
            ratios[name] = case.min / other.min
    return ratios


def table(cases: list[Case], rtt_ms: float) -> tuple[str, list[dict[str, Any]]]:
    by_key = {c.key: c for c in cases}
    floors = {
        "apply": by_key.get("floor"),
        "no-op": by_key.get("floor-noop"),
        "offline": by_key.get("python"),
        "lint": by_key.get("python"),
        "drift": by_key.get("drift-apply"),
    }
    head = [
        "case",
        "N",
        "min s",
        "median s",
        "cpu s",
        "server cpu s",
        "trips / migration",
        f"est. min s, server {rtt_ms:g} ms away",
        "peak MB",
        "x floor (min / cpu)",
        "x peers (min)",
        "target",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = []
    for case in cases:
        if not case.samples:
            continue
        floor = floors.get(case.group)
        floor = floor if floor and floor.samples else None
        trips = trips_per_migration(case, by_key)
        remote = case.min + case.trips * rtt_ms / 1000 if case.trips is not None else None
        peers = peer_ratios(case, by_key)
        row = {
            "key": case.key,
            "label": case.label,
            "group": case.group,
            "n": case.n,
            "min_s": round(case.min, 4),
            "median_s": round(case.median, 4),
            "cpu_s": round(case.cpu, 4),
            "server_cpu_s": case.server_cpu,
            "round_trips": case.trips,
            "round_trips_apply_of_one": case.trips_one,
            "trips_per_migration": None if trips is None else round(trips, 3),
            "est_remote_min_s": None if remote is None else round(remote, 3),
            "peak_mb": round(case.peak_mb, 1),
            "samples_s": [round(s.seconds, 4) for s in case.samples],
            "samples_cpu_s": [round(s.cpu_seconds, 4) for s in case.samples],
            "ratio_to_floor_min": _round(_ratio(case.min, floor.min if floor else None)),
            "ratio_to_floor_cpu": _round(_ratio(case.cpu, floor.cpu if floor else None)),
            "ratio_to_peers_min": {k: round(v, 3) for k, v in peers.items()},
            "target": verdict(case, by_key),
        }
        rows.append(row)
        floor_cell = (
            f"{case.min / floor.min:.2f}x / {case.cpu / floor.cpu:.2f}x"
            if floor and floor.cpu
            else ""
        )
        cells = [
            case.label,
            str(case.n or ""),
            f"{case.min:.3f}",
            f"{case.median:.3f}",
            f"{case.cpu:.3f}",
            "" if case.server_cpu is None else f"{case.server_cpu:.2f}",
            "" if trips is None else f"{trips:.2f}",
            "" if remote is None else f"{remote:.2f}",
            f"{case.peak_mb:.0f}",
            floor_cell,
            ", ".join(f"{v:.2f}x {k}" for k, v in peers.items()),
            row["target"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def tool_versions(args: argparse.Namespace) -> dict[str, str | None]:
    def run(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    dbmate, yoyo = find_dbmate(args.dbmate), args.yoyo or next_to_python("yoyo")
    squawk = args.squawk or next_to_python("squawk")
    return {
        "python": platform.python_version(),
        "sqlstage": run([*find_sqlstage(), "--version"]),
        "dbmate": run([dbmate, "--version"]) if dbmate else None,
        "yoyo": run(
            [
                sys.executable,
                "-c",
                "import importlib.metadata as m;print(m.version('yoyo-migrations'))",
            ]
        )
        if yoyo
        else None,
        "squawk": run([squawk, "--version"]) if squawk else None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="migrations to apply (1000)")
    parser.add_argument(
        "--offline-n", type=int, default=10000, help="migrations for offline status/pending (10000)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (5)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: --n 200 --offline-n 2000 --repeats 3"
    )
    parser.add_argument(
        "--url",
        default=DEFAULT_PG,
        help="PostgreSQL admin URL (SQLSTAGE_TEST_PG or the local postgres)",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="keep synchronous_commit on: commits wait for the disk's fsync (noisy on a busy "
        "machine); by default the bench databases turn it off to time the tools, not the disk",
    )
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=1.0,
        help="round-trip time of the remote-like estimate: min + trips x RTT (1 ms)",
    )
    parser.add_argument(
        "--drift-n", type=int, default=250, help="migrations for the drift check rows (250)"
    )
    parser.add_argument("--only", choices=["apply", "offline", "drift"], help="run one part only")
    parser.add_argument("--no-peers", action="store_true", help="skip dbmate, yoyo and squawk")
    parser.add_argument("--dbmate", metavar="PATH", help="the dbmate binary")
    parser.add_argument("--yoyo", metavar="PATH", help="the yoyo script")
    parser.add_argument("--squawk", metavar="PATH", help="the squawk binary")
    parser.add_argument("--out", type=Path, help="JSON file (bench/results/<UTC stamp>.json)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.offline_n, args.repeats = 200, 2000, 3
    return args


def compile_sqlstage(notes: list[str]) -> None:
    """Byte-compile sqlstage where it is installed from: an editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile its modules from source on every run
    (~30 ms), which no installed package pays."""
    import importlib.util

    spec = importlib.util.find_spec("sqlstage")
    if spec is None or not spec.submodule_search_locations:
        notes.append("sqlstage is not importable here: its figures include compiling it")
        return
    folder = next(iter(spec.submodule_search_locations))
    subprocess.run([sys.executable, "-m", "compileall", "-q", folder], check=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # killed (or Ctrl-C in a shell that started it in the background, where SIGINT is
    # ignored): still drop every database the bench made
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    notes: list[str] = []
    compile_sqlstage(notes)
    work = Path(tempfile.mkdtemp(prefix="sqlstage-bench-"))
    pg = Postgres(args.url, args.durable)
    cases: list[Case] = []
    started = time.perf_counter()
    try:
        if args.only in (None, "apply"):
            print(f"apply: {args.n} migrations x {args.repeats} rounds", file=sys.stderr)
            cases += bench_apply(args, pg, work, notes)
        if args.only in (None, "drift"):
            print(f"drift: {args.drift_n} migrations x {args.repeats}", file=sys.stderr)
            cases += bench_drift(args, pg, work, notes)
        if args.only not in ("apply", "drift"):
            if args.only == "offline":
                write_sqlstage_project(work / "sqlstage", args.n)
            print(f"offline: {args.offline_n} migrations x {args.repeats}", file=sys.stderr)
            cases += bench_offline(args, work, notes)
    finally:
        stop_launcher()
        pg.close()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    text, rows = table(cases, args.rtt_ms)
    print(text)
    for note in notes:
        print(f"note: {note}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or HERE / "results" / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "created": stamp,
        "seconds": round(time.perf_counter() - started, 1),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "postgresql": pg.version,
        },
        "versions": tool_versions(args),
        "results": rows,
        "notes": notes,
        "table": text,
    }
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
