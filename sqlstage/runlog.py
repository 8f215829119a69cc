"""The run log: `logs/migrations/<UTC timestamp>_<env>.log`, one line per event.

Every line is flushed as it is written, so a crash leaves the log up to that point, and
every line passes through `redact`, so no password reaches the disk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlstage.urls import redact


def file_stamp() -> str:
    """A UTC time for file names that sorts in time order: `2025-12-04T10-22-31-042Z`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H-%M-%S-") + f"{now.microsecond // 1000:03d}Z"


class RunLog:
    def __init__(self, log_dir: Path, environment: str, secrets: list[str]) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self._secrets = secrets
        self._file, self.path = _open_new(log_dir, f"{file_stamp()}_{environment}")

    def write(self, text: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for line in redact(text, self._secrets).splitlines() or [""]:
            self._file.write(f"{stamp} {line}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_new(log_dir: Path, stem: str) -> tuple[TextIO, Path]:
    """Open a log file that did not exist; two runs in one second get `-2`, `-3`, ..."""
    for attempt in range(1, 1000):
        path = log_dir / (f"{stem}.log" if attempt == 1 else f"{stem}-{attempt}.log")
        try:
            return path.open("x", encoding="utf-8"), path
        except FileExistsError:
            continue
    raise FileExistsError(log_dir / f"{stem}.log")
