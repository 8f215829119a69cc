"""The CLI's side of a run: answers from the terminal (`TerminalAsk`) and what it shows while
the library works (`Screen`). The rules themselves live in sqlstage.commands."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from sqlstage.cli.app import State, plain
from sqlstage.cli.render import plural, truncate

if TYPE_CHECKING:  # keep start-up light: `status` and `--help` import no driver
    from pathlib import Path

    from sqlstage.plan import Plan, Step
    from sqlstage.session import Session


def lock_wait_option(command: Any) -> Any:
    from sqlstage.locking import DEFAULT_LOCK_WAIT_SECONDS, lock_wait

    return click.option(
        "--lock-wait",
        type=click.FloatRange(min=0),
        callback=lambda _ctx, _param, seconds: lock_wait(seconds),
        default=DEFAULT_LOCK_WAIT_SECONDS,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for another run on the same database to finish.",
    )(command)


class TerminalAsk:
    """Questions asked at the terminal; `attended` only when standard input is one."""

    def __init__(self, state: State) -> None:
        self.state = state

    @property
    def attended(self) -> bool:
        return sys.stdin.isatty()

    def yes_no(self, question: str) -> bool:
        # Ctrl-C or end of input raise click.Abort, which the CLI's edge turns into 130 / 3
        return bool(click.confirm(question, default=False))

    def typed(self, question: str) -> str:
        answer: str = click.prompt(question, default="", show_default=False)
        return answer

    def secret(self, question: str) -> str:
        return self.state.ask_hidden(question)


class Screen:
    """What a run shows: where it connected, the plan and its findings, progress."""

    def __init__(self, state: State, lock_wait: float = 0.0, announce: bool = True) -> None:
        self.state = state
        self.lock_wait = lock_wait
        self.announce = announce
        self.bar: Any = None
        self.ticker: Any = None
        self.past = "applied"
        self.verb, self.gerund = "apply", "applying"
        self.key = "the database"
        #: the migrations that finished, for --json's document when a later one fails
        self.finished: list[str] = []

    # -- commands.Events --------------------------------------------------------------------
    def connected(self, session: Session) -> None:
        self.state.secrets.extend(session.secrets)
        self.key = session.environment.key
        if self.announce:
            click.echo(f"Connected: {session.info.describe()}")

    def warning(self, text: str) -> None:
        click.secho(f"warning: {text}", fg="yellow", err=True)

    def waiting(self, holder: str) -> None:
        click.secho(
            f"waiting up to {self.lock_wait:g} s: {self.key} is being changed by {holder}",
            fg="yellow",
            err=True,
        )

    def planned(self, plan: Plan) -> None:
        from sqlstage.plan import Direction

        self.past = plan.direction.past
        self.verb, self.gerund = plan.direction.value, plan.direction.gerund
        for warning in plan.warnings:
            self.warning(warning)
        env = plan.environment
        if plan.direction is Direction.UP:
            if plan.already_applied is not None:
                return
            if plan.empty:
                click.echo(f"{env.key} is up to date")
                return
            click.echo(f"Plan for {env.label}: {plural(len(plan.steps), 'migration')}")
        else:
            if plan.not_applied is not None:
                click.echo(
                    f"{plan.not_applied.name} is not applied to {env.key}: nothing to roll back"
                )
                return
            if plan.empty:
                click.echo(f"{env.key} has no applied migrations: nothing to roll back")
                return
            click.echo(
                f"Rollback plan for {env.label}: {plural(len(plan.steps), 'migration')}, "
                "newest first"
            )
        self._steps(plan)
        if plan.findings:
            from sqlstage.cli.lint import lint_summary, print_findings

            findings: Any = list(plan.findings)
            click.echo(f"Lint: {lint_summary(findings, len(plan.steps))}")
            print_findings(findings, verbose=False)

    def _steps(self, plan: Plan) -> None:
        names = [step.name for step in plan.steps] + [r.new.name for r in plan.renames]
        width = max(len(name) for name in names)
        lines = [
            f"  {rename.new.name:<{width}}  renamed from {rename.old}: nothing runs"
            for rename in plan.renames
        ]
        for step in plan.steps:
            first = step.statements[0].sql.splitlines()[0] if step.statements else ""
            count = plural(len(step.statements), "statement")
            lines.append(f"  {step.name:<{width}}  {count:<13} {truncate(first, 60)}")
            if not step.in_transaction:
                lines.append(
                    click.style(
                        f"  {'':<{width}}  no transaction: each statement commits on its own; "
                        "if one fails, those before it stay applied and are not undone "
                        "automatically",
                        fg="yellow",
                    )
                )
        click.echo("\n".join(lines))  # one write: a plan can list 1,000 migrations

    def backed_up(self, path: Path) -> None:
        from pathlib import Path

        from sqlstage.cli.render import relative

        click.echo(f"Backup: {relative(path, Path.cwd())} ({path.stat().st_size:,} bytes)")

    # -- plan.StepEvents ------------------------------------------------------------------
    LONG_RUN = 20  # migrations; from here on a terminal shows a bar instead of a line each

    def step_started(self, step: Step, index: int, total: int) -> None:
        from sqlstage.cli.progress import Progress, Ticker

        live = sys.stdout.isatty()  # redrawn in place (with \r alone): a terminal only
        if index == 1 and total >= self.LONG_RUN and live and not plain():  # rich draws
            self.bar = Progress(enabled=True)
            self.bar.started(total, self.verb)
        if self.bar is not None and self.bar.active:
            self.bar.describe(f"{self.gerund} {step.name}")
            return
        self.ticker = Ticker(f"  {self.gerund} {step.name} ...", live)

    def step_finished(self, step: Step, duration_ms: int) -> None:
        self.finished.append(step.name)
        if self.bar is not None and self.bar.active:
            self.bar.step(f"{self.past} {step.name}")
            return
        done = f"  {self.past} {step.name} ({duration_ms} ms)"
        if self.ticker is not None:
            self.ticker.finish(done)
            self.ticker = None
        else:
            click.echo(done)

    def close(self) -> None:
        if self.ticker is not None:
            self.ticker.finish(None)
            self.ticker = None
        if self.bar is not None:
            self.bar.__exit__()
            self.bar = None
