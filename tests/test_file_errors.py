"""status.json and the log folder: every way they can fail is one line with exit 2, found
before anything changes, never a traceback (issue 10).

Permission cases run the CLI as a real process; as root (which ignores permission bits) it
runs under `setpriv` without the capabilities that override them. Full-disk cases put the
folder on a small tmpfs, filled up, in a private mount namespace (`unshare -m`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, Database, ProjectDir
from tests.processes import wait_for_log


@pytest.fixture
def dev(four: ProjectDir) -> ProjectDir:
    _config(four, dev={"url": f"sqlite:///{four.root / 'dev.db'}"}, staging={"url": UNUSED})
    return four


UNUSED = "sqlite:///staging.db"


def _config(project: ProjectDir, top: dict[str, str] | None = None, **environments: Any) -> None:
    """sqlstage.toml with top-level settings (`log_dir`, `status_file`) and environments."""
    lines = [f'{key} = "{value}"' for key, value in (top or {}).items()]
    for key, table in environments.items():
        lines += [f"[environments.{key}]", *(f'{k} = "{v}"' for k, v in table.items())]
    (project.root / "sqlstage.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def cli(
    project: ProjectDir, *args: str, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "sqlstage", "-C", str(project.root), *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *parts: str) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for part in parts:
        assert part in lines[0]
    return lines[0]


def assert_nothing_applied(project: ProjectDir) -> None:
    database = project.root / "dev.db"
    assert not database.exists(), "preflight runs before the connection creates the database"
    assert not list(project.root.glob("logs/migrations/*.log"))


# -- status.json holding something else than the file ---------------------------------------


def test_a_status_json_that_is_a_folder_is_one_line_and_nothing_runs(dev: ProjectDir) -> None:
    dev.status_file.mkdir()

    for args in (("apply", "dev", "--yes"), ("status",), ("pending", "dev")):
        result = cli(dev, *args)
        assert_one_line_error(result, 2, f"{dev.status_file} is a folder, not a file")
    assert_nothing_applied(dev)


VALID = {
    "lastUpdated": "2025-12-04T10:22:31Z",
    "environments": {
        "dev": {"name": "dev", "lastApplied": None, "appliedAt": None, "applied": {}},
        "staging": {
            "name": "staging",
            "lastApplied": "001_create_users",
            "appliedAt": "2025-12-04T10:22:31Z",
            "applied": {
                "001_create_users": {"appliedAt": "2025-12-04T10:22:31Z", "checksum": "9f2c"}
            },
        },
    },
}

#: (where, value, what the message says the value must be)
WRONG = [
    (("environments", "dev", "failed"), 5, "must be a list of migration names, not 5"),
    (("environments", "dev", "failed"), [1], "must be a list of migration names, not [1]"),
    (("environments", "staging", "applied"), [], "must be an object of migrations, not []"),
    (
        ("environments", "staging", "applied", "001_create_users"),
        "2025-12-04",
        "must be an object like",
    ),
    (
        ("environments", "staging", "applied", "001_create_users", "appliedAt"),
        5,
        "must be text or null, not 5",
    ),
    (
        ("environments", "staging", "applied", "001_create_users", "outOfOrder"),
        "yes",
        'must be true, false or absent, not "yes"',
    ),
    (("environments", "staging", "lastApplied"), 3, "must be text or null, not 3"),
    (("environments", "staging", "name"), ["x"], 'must be text or null, not ["x"]'),
    (("environments", "staging"), "applied", 'must be an object, not "applied"'),
    (("environments",), [], "must be an object of environments, not []"),
    (("lastUpdated",), 5, "must be text or null, not 5"),
]


def _line_of(text: str, keys: Sequence[str]) -> int:
    """The line of the last key, each key looked for from the line of the one before."""
    rows, number = text.splitlines(), 0
    for key in keys:
        number = next(n for n in range(number, len(rows)) if f'"{key}":' in rows[n])
    return number + 1


def _with(document: dict[str, Any], keys: Sequence[str], value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return dict(copy)


@pytest.mark.parametrize(("keys", "value", "says"), WRONG, ids=[".".join(w[0]) for w in WRONG])
def test_a_value_of_the_wrong_type_names_its_key_and_line_and_nothing_runs(
    dev: ProjectDir, keys: tuple[str, ...], value: Any, says: str
) -> None:
    text = json.dumps(_with(VALID, keys, value), indent=2) + "\n"
    dev.status_file.write_text(text, encoding="utf-8")
    line = _line_of(text, keys)

    result = cli(dev, "apply", "dev", "--yes")

    message = assert_one_line_error(result, 2, f"{dev.status_file}:{line}: {'.'.join(keys)} ")
    assert says in message and "sqlstage status --live ENV --write" in message
    assert_nothing_applied(dev)
    assert dev.status_file.read_text(encoding="utf-8") == text
    assert_one_line_error(cli(dev, "status"), 2, f"{'.'.join(keys)} {says}")


@pytest.mark.parametrize(
    "text",
    [
        '{"environments": {"staging": {"lastApplied": "001_create_users.sql", '
        '"appliedAt": "2025-12-04"}}}',
        '\ufeff{"lastUpdated": null, "environments": {"staging": {"lastApplied": '
        '"001_create_users", "applied": null, "failed": null}}, "pending": "anything"}',
        '{"environments": null}',
        "",
    ],
    ids=["seed-shape", "bom-and-nulls", "no-environments", "empty"],
)
def test_the_tolerant_read_still_takes_seed_shaped_and_sparse_files(
    dev: ProjectDir, text: str
) -> None:
    dev.status_file.write_text(text, encoding="utf-8")

    assert cli(dev, "pending", "dev").stdout.split() == sorted(
        p.stem for p in dev.migrations.glob("*.sql")
    )
    result = cli(dev, "apply", "dev", "--yes")

    assert result.returncode == 0, result.stderr
    entries = dev.status_json()["environments"]
    assert entries["dev"]["lastApplied"] == "004_add_status_column"
    if "staging" in text:  # the other environment's entry is kept as it was
        assert entries["staging"]["lastApplied"] == "001_create_users"


# -- log_dir ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("log_dir", "says"),
    [
        ("notes.txt", "log_dir {root}/notes.txt is a file, not a folder"),
        (
            "notes.txt/logs",
            "log_dir {root}/notes.txt/logs cannot be created: {root}/notes.txt is a file",
        ),
    ],
    ids=["is-a-file", "under-a-file"],
)
def test_a_log_dir_that_is_a_file_is_one_line_and_nothing_runs(
    four: ProjectDir, log_dir: str, says: str
) -> None:
    _config(four, {"log_dir": log_dir}, dev={"url": f"sqlite:///{four.root / 'dev.db'}"})
    (four.root / "notes.txt").write_text("not a folder\n", encoding="utf-8")

    result = cli(four, "apply", "dev", "--yes")

    assert_one_line_error(result, 2, says.format(root=four.root), "set log_dir in sqlstage.toml")
    assert not (four.root / "dev.db").exists()
    assert not four.status_file.exists()
    # a dry run writes no log: it is not refused for one
    assert cli(four, "apply", "dev", "--dry-run").returncode == 0


# -- permissions -----------------------------------------------------------------------------


def unprivileged() -> list[str]:
    """A command prefix under which permission bits bind: none for a normal user; for root,
    setpriv dropping the capabilities that override them."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        message = "running as root without setpriv: permission bits cannot be made to bind"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


@contextmanager
def mode(path: Path, bits: int) -> Iterator[None]:
    """`path` with permission `bits` for the duration, restored after (so tmp can be cleaned)."""
    old = path.stat().st_mode & 0o777
    path.chmod(bits)
    try:
        yield
    finally:
        path.chmod(old)


@pytest.mark.parametrize(
    ("target", "bits", "says"),
    [
        (
            "status folder",
            0o555,
            "cannot write in the folder of status.json {folder}: Permission denied",
        ),
        ("status.json", 0o444, "status.json {file} is read-only"),
        ("status.json", 0o000, "cannot read {file}: Permission denied"),
        ("log folder", 0o555, "cannot write in log_dir {logs}: Permission denied"),
        ("logs", 0o555, "cannot write in log_dir {logs}: Permission denied"),
    ],
    ids=["status-folder", "status-read-only", "status-unreadable", "log-folder", "log-parent"],
)
def test_what_cannot_be_written_is_one_line_and_nothing_runs(
    dev: ProjectDir, target: str, bits: int, says: str
) -> None:
    prefix = unprivileged()
    dev.status_file.write_text(json.dumps(VALID, indent=2), encoding="utf-8")
    logs = dev.root / "logs" / "migrations"
    logs.parent.mkdir()
    if target == "log folder":
        logs.mkdir()
    path = {
        "status folder": dev.status_file.parent,
        "status.json": dev.status_file,
        "log folder": logs,
        "logs": logs.parent,  # logs/migrations does not exist yet and cannot be created
    }[target]
    before = dev.status_file.read_bytes()

    with mode(path, bits):
        result = cli(dev, "apply", "dev", "--yes", prefix=prefix)

    text = says.format(folder=dev.status_file.parent, file=dev.status_file, logs=logs)
    assert_one_line_error(result, 2, text)
    assert not (dev.root / "dev.db").exists()
    assert not list(logs.glob("*.log"))
    assert dev.status_file.read_bytes() == before


# -- a full disk -----------------------------------------------------------------------------

#: $1 mount point, $2 folder to copy in first, $3 folder to copy the result out to, $4 file
#: that says "fill it now" ("": at once); then the command. Exits with the command's code.
FULL_DISK = r"""
mount -t tmpfs -o size=256k sqlstage-test "$1" || exit 97
[ -n "$2" ] && cp -a "$2"/. "$1"/
fill() { dd if=/dev/zero of="$1/.filler" bs=4096 2>/dev/null; touch "$2"; }
if [ -n "$4" ]; then
    ( while [ ! -e "$4" ]; do sleep 0.02; done; fill "$1" "$4.done" ) &
    filler=$!
else
    fill "$1" /dev/null
fi
mount_point=$1 out=$3
shift 4
"$@"
code=$?
[ -n "$filler" ] && kill "$filler" 2>/dev/null
[ -n "$out" ] && cp -a "$mount_point"/. "$out"/
exit $code
"""


@cache
def _namespace() -> tuple[str, ...]:
    """`unshare -m` (root) or `unshare -rm` (a user namespace), if tmpfs can be mounted."""
    command = ("unshare", "-m") if os.geteuid() == 0 else ("unshare", "-rm")
    if shutil.which("unshare") is None:
        return ()
    probe = subprocess.run(
        [
            *command,
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k probe /mnt || mount -t tmpfs probe /tmp",
        ],
        capture_output=True,
    )
    return command if probe.returncode == 0 else ()


def on_full_disk(
    mount: Path, seed: Path | None = None, out: Path | None = None, trigger: Path | None = None
) -> list[str]:
    namespace = _namespace()
    if not namespace:
        message = "cannot mount a tmpfs in a private mount namespace here"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    mount.mkdir(parents=True, exist_ok=True)
    places = [str(p) if p is not None else "" for p in (mount, seed, out, trigger)]
    return [*namespace, "sh", "-c", FULL_DISK, "sh", *places]


@pytest.mark.parametrize("full", ["status_file", "log_dir"])
def test_a_full_disk_is_found_before_anything_changes(four: ProjectDir, full: str) -> None:
    state = four.root / "state"
    top = {"status_file": "state/status.json"} if full == "status_file" else {"log_dir": "state"}
    _config(four, top, dev={"url": f"sqlite:///{four.root / 'dev.db'}"})

    result = cli(four, "apply", "dev", "--yes", prefix=on_full_disk(state))

    what = "the folder of status.json" if full == "status_file" else "log_dir"
    assert_one_line_error(
        result, 2, f"cannot write in {what} {state}: No space left on device", "free space"
    )
    assert not (four.root / "dev.db").exists()


class Gate:
    """An advisory lock this test holds: migration 002 waits on it, so the test decides when
    the run goes on (after the disk is full)."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.key = uuid.uuid4().int % 2**62
        self._holder = psycopg.connect(url, autocommit=True)
        self._holder.execute("SELECT pg_advisory_lock(%s)", (self.key,))

    def open(self) -> None:
        self._holder.close()  # the session's lock goes with it


@pytest.fixture
def gate(pg_database: Database) -> Iterator[Gate]:
    gate = Gate(pg_database.url)
    try:
        yield gate
    finally:
        gate.open()


def _fill_while_002_waits(project: ProjectDir, run: subprocess.Popen[str], trigger: Path) -> None:
    wait_for_log(project, "migration 002_wait", timeout=60)
    trigger.touch()
    deadline = time.monotonic() + 30
    while not Path(f"{trigger}.done").exists():
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)


@pytest.mark.parametrize("then", ["succeeds", "fails"])
def test_a_disk_that_fills_during_the_run_is_one_line_and_never_hides_the_sql_error(
    project: ProjectDir, pg_database: Database, gate: Gate, tmp_path: Path, then: str
) -> None:
    """status.json's disk fills while migration 002 runs. If the run succeeds, the error is
    that status.json could not be written (exit 2), with the way back; if 003 fails, its SQL
    error stays the one reported (exit 1). Either way the old file is left whole."""
    _config(project, {"status_file": "state/status.json"}, dev={"url": pg_database.url})
    project.write("001_create_a.sql", "CREATE TABLE a (id integer);\n")
    project.write("002_wait.sql", f"SELECT pg_advisory_xact_lock({gate.key});\n")
    if then == "fails":
        project.write("003_broken.sql", "SELECT * FROM no_such_table;\n")
    seed, out, trigger = tmp_path / "seed", tmp_path / "out", tmp_path / "fill-now"
    seed.mkdir()
    out.mkdir()
    old = '{"environments": {"staging": {"lastApplied": "001_create_a", "appliedAt": "2025-12"}}}'
    (seed / "status.json").write_text(old, encoding="utf-8")
    prefix = on_full_disk(project.root / "state", seed, out, trigger)
    run = subprocess.Popen(
        [*prefix, sys.executable, "-m", "sqlstage", "-C", str(project.root), "apply", "dev", "-y"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        _fill_while_002_waits(project, run, trigger)
    finally:
        gate.open()
    stdout, stderr = run.communicate(timeout=60)
    result = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)

    status = project.root / "state" / "status.json"
    log = project.logs()[-1].read_text(encoding="utf-8")
    assert f"status.json not updated: cannot write {status}: No space left on device" in log
    assert pg_database.history() == ["001_create_a", "002_wait"]
    assert (out / "status.json").read_text(encoding="utf-8") == old  # whole, as it was
    if then == "succeeds":
        assert_one_line_error(
            result,
            2,
            f"cannot write {status}: No space left on device, so it does not show dev's latest",
            "free space on its disk, then run `sqlstage status --live dev --write`",
        )
    else:
        assert_one_line_error(result, 1, "003_broken", "no_such_table")


@pytest.mark.parametrize(
    "command",
    [
        ("rollback", "dev", "--yes"),
        ("repair", "dev", "002", "--forget", "--yes"),
        ("baseline", "dev", "004", "--yes"),
        ("apply", "dev", "--yes"),
    ],
    ids=lambda command: command[0],
)
def test_every_command_that_changes_a_database_checks_first(
    four: ProjectDir, command: tuple[str, ...]
) -> None:
    url = f"sqlite:///{four.root / 'dev.db'}"
    _config(four, dev={"url": url})
    assert cli(four, "apply", "dev", "--to", "002", "--yes").returncode == 0
    before = (four.root / "dev.db").read_bytes(), four.status_file.read_bytes()
    _config(four, {"log_dir": "notes.txt"}, dev={"url": url})
    (four.root / "notes.txt").write_text("not a folder\n", encoding="utf-8")

    result = cli(four, *command)

    assert_one_line_error(result, 2, f"log_dir {four.root / 'notes.txt'} is a file")
    assert ((four.root / "dev.db").read_bytes(), four.status_file.read_bytes()) == before


def _wait_until_002_waits(database: Database, run: subprocess.Popen[str]) -> None:
    """Migration 002 is waiting for the gate: its advisory lock shows as not granted."""
    deadline = time.monotonic() + 60
    waiting = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    while database.query(waiting) != [(1,)]:
        assert run.poll() is None and time.monotonic() < deadline, run.communicate()
        time.sleep(0.05)


def test_a_log_disk_that_fills_during_the_run_stops_it_in_one_line_and_status_follows(
    project: ProjectDir, pg_database: Database, gate: Gate, tmp_path: Path
) -> None:
    """The log's disk fills while 002 waits; 003 logs a long notice, which no longer fits: the
    run stops there, exit 2 in one line, and status.json (on another disk) records what
    committed. 003's notice comes back with its COMMIT (one message per migration), so 003
    is applied and its log lines are what cannot be written, before 004 is sent: 004 never
    runs."""
    _config(project, dev={"url": pg_database.url})
    project.write("001_create_a.sql", "CREATE TABLE a (id integer);\n")
    project.write("002_wait.sql", f"SELECT pg_advisory_xact_lock({gate.key});\n")
    project.write(
        "003_notice.sql",
        "CREATE TABLE b (id integer);\nDO $$ BEGIN RAISE NOTICE '%', repeat('x', 20000); END $$;\n",
    )
    project.write("004_after.sql", "CREATE TABLE c (id integer);\n")
    out, trigger = tmp_path / "out", tmp_path / "fill-now"
    out.mkdir()
    prefix = on_full_disk(project.root / "logs" / "migrations", None, out, trigger)
    run = subprocess.Popen(
        [*prefix, sys.executable, "-m", "sqlstage", "-C", str(project.root), "apply", "dev", "-y"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_until_002_waits(pg_database, run)
        trigger.touch()
        deadline = time.monotonic() + 30
        while not Path(f"{trigger}.done").exists():
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.05)
    finally:
        gate.open()
    stdout, stderr = run.communicate(timeout=60)
    result = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)

    assert_one_line_error(
        result, 2, "cannot write the run log", "No space left on device; the run stopped there"
    )
    assert pg_database.history() == ["001_create_a", "002_wait", "003_notice"]
    assert "b" in pg_database.tables() and "c" not in pg_database.tables()
    assert set(project.status_json()["environments"]["dev"]["applied"]) == {
        "001_create_a",
        "002_wait",
        "003_notice",
    }
    (log,) = out.glob("*.log")
    assert "applied 002_wait" in log.read_text(encoding="utf-8")
