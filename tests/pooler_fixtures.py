"""PgBouncer for tests: a real pooler (Debian's `pgbouncer` package) on a free local port.

`pgbouncer("transaction")` starts one in front of the test PostgreSQL (127.0.0.1:5432, trust
auth) and stops it when the test ends. Its `[databases]` entry is the wildcard, so every test
database is reachable through it under its own name: `pooler.url_for(database.url)`.

When pgbouncer is not installed the pooler tests skip, except under CI=true, where they fail
(`.ci/run` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

# the same settings as conftest.py, read here so that conftest can import this module
PG_ADMIN_URL = os.environ.get("SQLSTAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
START_SECONDS = 10.0


def pgbouncer_binary() -> str | None:
    # Debian installs it in /usr/sbin, which a non-root PATH often lacks
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")


@dataclass
class PgBouncer:
    """A running pgbouncer; `url_for` turns a direct URL into the same database through it."""

    mode: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    log: Path
    pool_size: int = 1
    _stopped: bool = field(default=False, repr=False)

    def url_for(self, direct_url: str) -> str:
        parts = urlsplit(direct_url)
        user = parts.username or "postgres"
        return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{self.port}"))

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: pgbouncer's immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(folder: Path, port: int, mode: str, pool_size: int, extra: tuple[str, ...]) -> str:
    server = urlsplit(PG_ADMIN_URL)
    lines = [
        "[databases]",
        # the wildcard: any database name is passed through to the server
        f"* = host={server.hostname or '127.0.0.1'} port={server.port or 5432}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = trust",
        f"auth_file = {folder / 'users.txt'}",
        f"pool_mode = {mode}",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 200",
        # psycopg may send these; the hosted poolers accept them too
        "ignore_startup_parameters = extra_float_digits,options",
        "server_reset_query = DISCARD ALL",
        "server_check_delay = 0",
    ]
    lines.extend(extra)
    if os.geteuid() == 0:  # pgbouncer refuses to run as root unless told whom to become
        lines.append("user = postgres")
    return "\n".join(lines) + "\n"


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_pgbouncer(mode: str, pool_size: int = 1, extra: tuple[str, ...] = ()) -> PgBouncer:
    """Start pgbouncer in `mode` (`transaction` or `session`) with `pool_size` server
    connections per database and user, and `extra` lines of `[pgbouncer]` settings; fail
    (or skip outside CI) when it cannot run."""
    binary = pgbouncer_binary()
    if binary is None:
        message = "pgbouncer is not installed (apt-get install -y pgbouncer)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    last_log = ""
    for _attempt in range(3):  # the free port can be taken between probe and bind
        folder = Path(tempfile.mkdtemp(prefix="sqlstage-pgbouncer-"))
        folder.chmod(0o755)  # readable by the user pgbouncer switches to
        users = folder / "users.txt"
        users.write_text('"postgres" ""\n', encoding="utf-8")
        users.chmod(0o644)
        port = _free_port()
        ini = folder / "pgbouncer.ini"
        ini.write_text(_config(folder, port, mode, pool_size, extra), encoding="utf-8")
        ini.chmod(0o644)
        log = folder / "pgbouncer.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [binary, str(ini)], stdout=out, stderr=subprocess.STDOUT, cwd=folder
            )
        pooler = PgBouncer(mode, port, folder, process, log, pool_size)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and process.poll() is None:
            if _accepts(port):
                return pooler
            time.sleep(0.05)
        last_log = pooler.log_text()
        pooler.stop()
    pytest.fail(f"pgbouncer did not start: {last_log.strip()[-2000:]}")


@pytest.fixture
def pgbouncer() -> Iterator[Callable[..., PgBouncer]]:
    """A factory: `pgbouncer("transaction", pool_size=2)`; every one started is stopped."""
    started: list[PgBouncer] = []

    def start(mode: str, pool_size: int = 1, extra: tuple[str, ...] = ()) -> PgBouncer:
        pooler = start_pgbouncer(mode, pool_size, extra)
        started.append(pooler)
        return pooler

    yield start
    for pooler in started:
        pooler.stop()


@pytest.fixture
def transaction_pooler(pgbouncer: Callable[..., PgBouncer]) -> PgBouncer:
    return pgbouncer("transaction", pool_size=2)


@pytest.fixture
def session_pooler(pgbouncer: Callable[..., PgBouncer]) -> PgBouncer:
    return pgbouncer("session", pool_size=5)
