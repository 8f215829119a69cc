"""The run log: `logs/migrations/<UTC timestamp>_<env>.log`, one line per event.

Lines are kept in memory until `flush`, which the runner calls before it sends anything that
may take a while (a migration, a statement outside a transaction): one write and flush per
migration, and a crash leaves the log up to what was being sent. Closing the log flushes it.
Every line passes through `redact`, so no password reaches the disk. A log that cannot be
created or written (permissions, `log_dir` naming a file, a full disk) is a FileAccessError
(exit 2); `check_log_dir` finds the first two before a run changes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from sqlstage.errors import FileAccessError
from sqlstage.urls import redact
from sqlstage.writable import check_folder, fix_for, reason

_MOVE_AWAY = "move it out of the way, or set log_dir in sqlstage.toml to another path"


def file_stamp() -> str:
    """A UTC time for file names that sorts in time order: `2025-12-04T10-22-31-042Z`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H-%M-%S-") + f"{now.microsecond // 1000:03d}Z"


def check_log_dir(log_dir: Path) -> None:
    """Before a run changes anything: raise FileAccessError (exit 2) unless a log can be
    written in `log_dir` (or, while it does not exist, where it will be created)."""
    check_folder(log_dir, "log_dir", "log_dir")


class Log(Protocol):
    """Where a run's lines go: a RunLog, or one target's section of a fleet's log."""

    def write(self, text: str) -> None:
        """Add `text` as one line, or as several when it holds line breaks."""

    def flush(self) -> None: ...


class RunLog:
    def __init__(self, log_dir: Path, environment: str, secrets: list[str]) -> None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError as err:
            raise FileAccessError(f"log_dir {log_dir} is a file, not a folder", _MOVE_AWAY) from err
        except OSError as err:
            raise FileAccessError(
                f"cannot create log_dir {log_dir}: {reason(err)}", fix_for(err)
            ) from err
        self._secrets = secrets
        self._lines: list[str] = []
        self._file, self.path = _open_new(log_dir, f"{file_stamp()}_{environment}")

    def write(self, text: str) -> None:
        """Add a line (stamped now) to what the next `flush` writes."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for line in redact(text, self._secrets).splitlines() or [""]:
            self._lines.append(f"{stamp} {line}\n")

    def flush(self) -> None:
        """Put the lines written so far on disk: one write, one flush. Raises
        FileAccessError (once) when they cannot be written."""
        if self._lines:
            text, self._lines = "".join(self._lines), []
            self._file.write(text)
        self._file.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            self.close()
            return
        with suppress(FileAccessError):  # the error on its way out is the one that counts
            self.close()


def _open_new(log_dir: Path, stem: str) -> tuple[_LogFile, Path]:
    """Open a log file that did not exist; two runs in one second get `-2`, `-3`, ..."""
    for attempt in range(1, 1000):
        path = log_dir / (f"{stem}.log" if attempt == 1 else f"{stem}-{attempt}.log")
        try:
            return _LogFile(path.open("x", encoding="utf-8"), path), path
        except FileExistsError:
            continue
        except OSError as err:
            raise FileAccessError(
                f"cannot create the run log {path}: {reason(err)}", fix_for(err)
            ) from err
    raise FileAccessError(f"cannot create the run log {log_dir / stem}.log: 999 runs took its name")


class _LogFile:
    """The open log: a failed write (a full disk) is a FileAccessError, raised once; the
    lines after it are dropped, so that logging the run's error cannot replace that error."""

    def __init__(self, file: TextIO, path: Path) -> None:
        self._file, self._path = file, path
        self._broken = False

    def write(self, text: str) -> None:
        self._guard(lambda: self._file.write(text))

    def flush(self) -> None:
        self._guard(self._file.flush)

    def close(self) -> None:
        with suppress(OSError):  # the buffered tail of a log whose disk filled up
            self._file.close()

    def _guard(self, action: Callable[[], object]) -> None:
        if self._broken:
            return
        try:
            action()
        except OSError as err:
            self._broken = True
            raise FileAccessError(
                f"cannot write the run log {self._path}: {reason(err)}; the run stopped there",
                f"{fix_for(err)}; `sqlstage status --live ENV` shows what the database holds",
            ) from err
