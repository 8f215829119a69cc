"""The progress bar and the verify report."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    import threading

    from rich.progress import Progress as RichProgress

    from sqlstage.project import VerifyReport


class Progress:
    """A rich progress bar on a terminal, nothing elsewhere (CI logs stay clean).

    Implements `verify.VerifyEvents`; rich is imported only when a bar is drawn.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: RichProgress | None = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def started(self, total_steps: int, label: str = "verify") -> None:
        if not self.enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description:<40}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=total_steps)

    def step(self, description: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=description[:40])

    def describe(self, description: str) -> None:
        """What the bar is doing now (the migration that just started)."""
        if self._bar is not None:
            self._bar.update(self._task, description=description[:40])

    @property
    def active(self) -> bool:
        return self._bar is not None


def plain_line(text: str) -> None:
    """A line of plain text on stdout, flushed (a CI log shows each migration as it starts
    and ends): what `click.echo` does for it, at a fraction of its cost per call."""
    out = sys.stdout
    out.write(text + "\n")
    out.flush()


class Ticker:
    """The line a migration starts with, `  applying 005_x ...`. On a terminal (`live`) the
    time it has run is added in place once it passes a second, each second, until `finish`
    puts the last line in its place; elsewhere (CI logs) the line is printed whole, once."""

    def __init__(self, text: str, live: bool) -> None:
        self.text, self.live = text, live
        self._thread: threading.Thread | None = None
        if not live:  # one line per migration of a long run: no thread, no clock
            plain_line(text)
            return
        import threading
        import time

        self.started = time.monotonic()
        self._width = len(text)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        click.echo(text, nl=False)
        self._thread = threading.Thread(target=self._tick, name="sqlstage-ticker", daemon=True)
        self._thread.start()

    def _tick(self) -> None:
        import time

        while not self._stop.wait(1.0):
            with self._lock:
                if self._stop.is_set():
                    return
                self._put(f"{self.text} {int(time.monotonic() - self.started)} s", nl=False)

    def _put(self, line: str, nl: bool) -> None:
        """`line` over the one on screen (padded, so nothing of a longer one is left)."""
        click.echo("\r" + line.ljust(self._width), nl=nl)
        self._width = max(self._width, len(line))

    def finish(self, line: str | None) -> None:
        """Stop counting; `line` replaces the started one (None: end it as it stands)."""
        if not self.live:
            if line is not None:
                plain_line(line)
            return
        with self._lock:
            self._stop.set()
            if line is None:
                click.echo()
            else:
                self._put(line, nl=True)
        if self._thread is not None:
            self._thread.join()


def render_verify(report: VerifyReport) -> None:
    outcome = report.outcome
    where = "kept: inspect it, then drop it" if report.kept else "dropped afterwards"
    click.echo(f"Scratch database: {report.database} ({where})")
    click.echo(f"Verified on {report.server}: each migration applied, rolled back, compared")
    if outcome.setup:
        click.echo(f"  setup, not checked: {outcome.setup[0]} .. {outcome.setup[-1]}")
    width = max(len(check.migration) for check in outcome.checks)
    for check in outcome.checks:
        passed = check.passed(outcome.strict)
        colour = "green" if passed else ("yellow" if check.result == "not checked" else "red")
        line = click.style(check.result, fg=colour)
        if check.ok and check.rollback == "nothing to undo":
            line += " (nothing to undo)"
        if len(check.details) == 1 and check.result in ("not checked", "irreversible"):
            line += f" ({check.details[0]})"
        click.echo(f"  {check.migration:<{width}}  {line}")
        if check.result not in ("not checked", "irreversible"):
            for detail in check.details:
                click.echo("\n".join(f"      {part}" for part in detail.splitlines()))
    passed_count = sum(check.ok for check in outcome.checks)
    summary = f"{passed_count} of {len(outcome.checks)} migrations round-trip"
    irreversible = sum(check.result == "irreversible" for check in outcome.checks)
    if irreversible:
        summary += f", {irreversible} declared irreversible"
    click.secho(summary, fg="green" if outcome.ok else "red")
    try:
        log = os.path.relpath(report.log_path)
    except ValueError:
        log = str(report.log_path)
    click.echo(f"log: {log}")


def verify_as_json(report: VerifyReport) -> dict[str, Any]:
    outcome = report.outcome
    return {
        "ok": outcome.ok,
        "database": report.database,
        "dropped": not report.kept,
        "setup": list(outcome.setup),
        "migrations": [
            {
                "migration": c.migration,
                "result": c.result,
                "rollback": c.rollback,
                "details": list(c.details),
                "differences": [d.to_dict() for d in c.differences],
            }
            for c in outcome.checks
        ],
        "log": str(report.log_path),
    }
