"""Extra PostgreSQL servers for the fleet tests: clusters made with initdb and started with
pg_ctl (from /usr/lib/postgresql/*/bin) on free local ports, in a temporary folder, trust
auth, as the `postgres` user when the tests run as root. Stopped and removed at the end of
the session. Without initdb the fleet tests that need them skip, except under CI=true.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class Cluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, initdb: str, pg_ctl: str) -> None:
        subprocess.run(
            _as_postgres(
                [initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
            "-c max_connections=100 -c shared_buffers=16MB"
        )
        subprocess.run(
            _as_postgres(
                [
                    pg_ctl,
                    "-D",
                    str(self.data),
                    "-o",
                    options,
                    "-l",
                    str(self.folder / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, pg_ctl: str) -> None:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )


@pytest.fixture(scope="session")
def extra_pg_servers() -> Iterator[list[str]]:
    """The admin URLs of two more PostgreSQL servers, for the session."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        message = "initdb/pg_ctl not found (install postgresql)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="sqlstage-fleet-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    clusters = []
    try:
        for index in range(2):
            folder = root / f"pg{index}"
            folder.mkdir()
            if os.geteuid() == 0:
                shutil.chown(folder, "postgres", "postgres")
            cluster = Cluster(folder)
            clusters.append(cluster)
            cluster.start(initdb, pg_ctl)
        yield [cluster.url for cluster in clusters]
    finally:
        for cluster in clusters:
            cluster.stop(pg_ctl)
        shutil.rmtree(root, ignore_errors=True)
