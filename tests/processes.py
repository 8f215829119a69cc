"""Real `python -m sqlstage` processes, for locks, crashes and signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Database, ProjectDir


def start(project: ProjectDir, *args: str) -> subprocess.Popen[str]:
    """Start sqlstage in the project; SIGINT gets Python's default handler even when the test
    runner ignores it (the disposition is inherited)."""
    return subprocess.Popen(
        [sys.executable, "-m", "sqlstage", "-C", str(project.root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_log(project: ProjectDir, text: str, timeout: float = 20) -> Path:
    """Wait until a run log holds `text` (the log is flushed line by line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in project.logs():
            if text in log.read_text(encoding="utf-8"):
                return log
        time.sleep(0.05)
    raise AssertionError(f"no log line with {text!r} within {timeout} s")


def slow_sql(database: Database) -> str:
    """A statement that runs as long as table `slow` says (seconds), on either database."""
    if database.dialect == "postgresql":
        return "SELECT pg_sleep((SELECT seconds FROM slow));"
    return (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
        "WHERE x < (SELECT seconds FROM slow) * 2500000) SELECT count(*) FROM c;"
    )


def set_slow(database: Database, seconds: float) -> None:
    database.query("CREATE TABLE IF NOT EXISTS slow (seconds REAL)")
    database.query("DELETE FROM slow")
    database.query(f"INSERT INTO slow VALUES ({seconds})")
