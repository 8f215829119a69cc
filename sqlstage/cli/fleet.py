"""What a fleet's run shows: one plan for all targets, then a line (or a bar with counts,
on a terminal) per target."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State
from sqlstage.cli.render import plural, relative

if TYPE_CHECKING:  # keep start-up light
    from sqlstage.fleet import FleetPlan, FleetResult, TargetOutcome
    from sqlstage.fleet_target import Target
    from sqlstage.project import Project


def remember_secrets(state: State, targets: Sequence[Target]) -> None:
    """Every target's password is kept out of any output."""
    state.secrets.extend(t.url.password for t in targets if t.url.password)


#: targets that cannot be planned, shown one by one before "... and N more"
SHOWN = 5


class FleetScreen:
    """Implements sqlstage.fleet.FleetEvents."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.bar: Any = None
        self.past = "applied"
        #: --json's document: the plan's counts and each target's outcome as it ends
        self.document: dict[str, Any] = {"plan": {}, "targets": {}}

    def warning(self, text: str) -> None:
        click.secho(f"warning: {text}", fg="yellow", err=True)

    def planned_fleet(self, plan: FleetPlan) -> None:
        remember_secrets(self.state, [item.target for item in plan.targets])
        env, total = plan.environment, len(plan.targets)
        runnable = len(plan.to_run)
        from sqlstage.plan import Direction

        up = plan.direction is Direction.UP
        self.past = plan.direction.past
        self.document["plan"] = {m.name: count for m, count in plan.counts}
        for item in plan.errors:
            self.document["targets"][item.target.name] = {"error": str(item.error)}
        if not plan.counts and not plan.errors:
            done = "are up to date" if up else "have nothing to roll back"
            click.echo(f"{env.key}: all {plural(total, 'target')} {done}")
            return
        click.echo(
            f"{'Plan' if up else 'Rollback plan'} for {env.label}: "
            f"{plural(len(plan.counts), 'migration')} on {runnable} of {plural(total, 'target')}"
        )
        width = max((len(m.name) for m, _ in plan.counts), default=0)
        for migration, count in plan.counts:
            how = "lacking on" if up else "to roll back on"
            click.echo(f"  {migration.name:<{width}}  {how} {count} of {total}")
        for item in plan.errors[:SHOWN]:
            click.secho(f"  cannot plan: {item.error}", fg="red", err=True)
        if len(plan.errors) > SHOWN:
            click.secho(f"  ... and {len(plan.errors) - SHOWN} more (the log names them)", err=True)
        if plan.canaries:
            click.echo(f"Canary, one by one first: {', '.join(plan.canaries)}")
        lead = plan.confirmation
        if lead is None:
            return
        if lead.backup:
            click.echo(
                f"Backups: one file per target in the project's backups/{env.key}/, "
                "each taken before that target's first migration"
            )
        for warning in lead.warnings:
            self.warning(warning)
        if lead.findings:  # the same files on every target: linted alike
            from sqlstage.cli.lint import lint_summary, print_findings

            findings: Any = list(lead.findings)
            click.echo(f"Lint: {lint_summary(findings, len(lead.steps))}")
            print_findings(findings, verbose=False)

    def target_finished(self, outcome: TargetOutcome, finished: int, total: int) -> None:
        self.document["targets"][outcome.name] = {
            "done": list(outcome.done),
            "started": outcome.started,
            "error": None if outcome.error is None else str(outcome.error),
            "backup": None if outcome.backup is None else str(outcome.backup),
        }
        if sys.stdout.isatty() and total >= 10:
            self._bar(outcome, total)
            if outcome.error is None:
                return
        where = f"[{finished}/{total}] {outcome.name}"
        if outcome.error is not None:
            click.secho(f"  {where}: FAILED: {outcome.error.message}", fg="red", err=True)
        elif not outcome.started:
            click.echo(f"  {where}: not started")
        elif outcome.up_to_date:
            click.echo(f"  {where}: up to date")
        else:
            click.echo(f"  {where}: {self.past} {', '.join(outcome.done) or 'nothing'}")

    def _bar(self, outcome: TargetOutcome, total: int) -> None:
        if self.bar is None:
            from sqlstage.cli.progress import Progress

            self.bar = Progress(enabled=True)
            self.bar.started(total)
        self.bar.step(f"{outcome.name}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__()
            self.bar = None


def report(project: Project, result: FleetResult, started: float) -> None:
    applied = [o for o in result.outcomes if o.done]
    direction, total = result.plan.direction, plural(len(result.plan.targets), "target")
    click.secho(
        f"{direction.past.capitalize()} {direction.prep} {len(applied)} of {total} of "
        f"{result.plan.environment.key} in {time.perf_counter() - started:.1f} s",
        fg="green",
    )
    if result.log_path is not None:
        click.echo(f"log: {relative(result.log_path, Path.cwd())}")
    paths = [result.record_path] if result.record_path else []
    if result.status_written:
        paths.append(project.config.status_file)
    for path in paths:
        click.echo(f"updated {relative(path, Path.cwd())}: commit it")
    backups = [o.backup for o in result.outcomes if o.backup is not None]
    if backups:
        folder = relative(backups[0].parent, Path.cwd())
        click.echo(f"backups: {plural(len(backups), 'file')} in {folder}/ (one per target)")
