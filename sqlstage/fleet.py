"""Fleets: one environment, many databases (tenants on one server or several, or schemas of
one database), each target run through the same path as one database.

    from sqlstage import fleet
    result = fleet.apply(project, "pro", ApplyOptions(yes=True), fleet.FleetOptions())

`apply` (and `rollback`) connect to each target (`parallel` at a time, closing each again),
plan each with `commands.plan_apply` (the rules of one database, per target: edited files,
lint, rehearsal, identity, a migration stopped midway), make one plan for the fleet and ask
one confirmation for all of it. Then canary targets run one by one and the rest `parallel`
at a time, each opened only when its turn comes, locked, planned again inside its lock (so
two runs at once apply each migration to each target once) and run by `commands.execute`.
After more than `max_failures` failures no new target starts; Ctrl-C lets running targets
finish the migration they are in. Each target's result goes to the fleet's record
(`fleet_record`) and to status.json as it ends; the run's log has a section per target.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlstage import __version__, commands, fleet_record
from sqlstage.bookkeeping import backup, signals_as_interrupts
from sqlstage.commands import (
    ApplyOptions,
    RollbackOptions,
    check_apply_options,
    execute,
    plan_apply,
    plan_rollback,
    refuse_stopped,
    refuse_unattended,
)
from sqlstage.config import Environment
from sqlstage.errors import ConfigError, ExitCode, SqlstageError
from sqlstage.fleet_target import (
    Target,
    TargetProject,
    each,
    target_projects,
    target_session,
    targets,
)
from sqlstage.history import AppliedMigration
from sqlstage.interaction import QUIET, UNATTENDED, Ask, confirm
from sqlstage.migration import Migration
from sqlstage.plan import Direction, Plan, Step
from sqlstage.project import Project
from sqlstage.runlog import RunLog
from sqlstage.runner import current_user
from sqlstage.session import Session
from sqlstage.status_file import DriftVerdict

if TYPE_CHECKING:
    from sqlstage.drift.check import DriftReport

#: how one target is planned: its session and history -> its plan (apply or rollback)
Planner = Callable[[Project, Session, list[AppliedMigration]], Plan]


@dataclass(frozen=True)
class FleetOptions:
    #: only these targets (`--target NAME`, repeatable)
    only: tuple[str, ...] = ()
    #: go on after this many targets failed (0: stop starting new ones at the first)
    max_failures: int = 0
    #: continue a stopped run: the targets that failed run first, one by one
    resume: bool = False
    #: how many targets at once (None: the environment's `parallel`)
    parallel: int | None = None


@dataclass(frozen=True)
class TargetPlan:
    target: Target
    plan: Plan | None = None
    error: SqlstageError | None = None
    history: tuple[AppliedMigration, ...] = ()


@dataclass(frozen=True)
class FleetPlan:
    """One plan for the fleet: each target's, and per migration on how many targets it
    runs (apply: how many lack it; rollback: how many have it)."""

    environment: Environment
    direction: Direction
    targets: tuple[TargetPlan, ...]
    #: the migrations some target will run, in the order they run, with how many run each
    counts: tuple[tuple[Migration, int], ...]
    #: run first, one by one
    canaries: tuple[str, ...] = ()
    #: what is asked once for all of them (sqlstage.interaction.confirm)
    confirmation: Plan | None = None

    @property
    def to_run(self) -> tuple[TargetPlan, ...]:
        return tuple(t for t in self.targets if t.plan is not None and not t.plan.empty)

    @property
    def errors(self) -> tuple[TargetPlan, ...]:
        return tuple(t for t in self.targets if t.error is not None)


@dataclass(frozen=True)
class TargetOutcome:
    name: str
    done: tuple[str, ...] = ()
    error: SqlstageError | None = None
    #: never started: an earlier failure or Ctrl-C stopped the run first
    started: bool = True
    #: nothing left to do by the time its turn came (another run did it)
    up_to_date: bool = False
    #: its own backup, taken before its first migration (backup = ... or --backup)
    backup: Path | None = None


@dataclass(frozen=True)
class FleetResult:
    plan: FleetPlan
    outcomes: tuple[TargetOutcome, ...] = ()
    log_path: Path | None = None
    status_written: bool = False
    record_path: Path | None = None

    @property
    def failed(self) -> tuple[TargetOutcome, ...]:
        return tuple(o for o in self.outcomes if o.error is not None)


class FleetFailed(SqlstageError):
    """Some targets failed: the exit code is the first failure's, the message names them."""

    def __init__(self, message: str, fix: str, exit_code: ExitCode) -> None:
        super().__init__(message, fix)
        self.exit_code = exit_code


class FleetEvents(Protocol):
    def warning(self, text: str) -> None: ...

    def planned_fleet(self, plan: FleetPlan) -> None: ...

    def target_finished(self, outcome: TargetOutcome, finished: int, total: int) -> None: ...


class QuietFleet:
    def warning(self, text: str) -> None:
        pass

    def planned_fleet(self, plan: FleetPlan) -> None:
        pass

    def target_finished(self, outcome: TargetOutcome, finished: int, total: int) -> None:
        pass


QUIET_FLEET = QuietFleet()
DEFAULT_APPLY = ApplyOptions()
DEFAULT_ROLLBACK = RollbackOptions()
DEFAULT_FLEET = FleetOptions()


# -- apply and rollback -------------------------------------------------------------------
def apply(
    project: Project,
    environment: str,
    options: ApplyOptions = DEFAULT_APPLY,
    fleet: FleetOptions = DEFAULT_FLEET,
    ask: Ask = UNATTENDED,
    events: FleetEvents = QUIET_FLEET,
) -> FleetResult:
    """Plan every target, confirm once, then run canaries one by one and the rest
    `parallel` at a time. Raises FleetFailed (the first failure's exit code) naming the
    targets that failed, after recording every target's result."""
    check_apply_options(options)

    def planner(project: Project, session: Session, history: list[AppliedMigration]) -> Plan:
        return plan_apply(project, session, history, options)

    settings = _Settings(options.dry_run, options.yes, options.lock_wait)
    return _fleet_run(project, environment, Direction.UP, planner, settings, fleet, ask, events)


def rollback(
    project: Project,
    environment: str,
    options: RollbackOptions = DEFAULT_ROLLBACK,
    fleet: FleetOptions = DEFAULT_FLEET,
    ask: Ask = UNATTENDED,
    events: FleetEvents = QUIET_FLEET,
) -> FleetResult:
    """Roll back each target's last migration (or `options.target` and every one after
    it), with one plan and one confirmation for the fleet, canaries first."""

    def planner(project: Project, session: Session, history: list[AppliedMigration]) -> Plan:
        return plan_rollback(project, session, history, options)

    settings = _Settings(options.dry_run, options.yes, options.lock_wait)
    return _fleet_run(project, environment, Direction.DOWN, planner, settings, fleet, ask, events)


@dataclass(frozen=True)
class _Settings:
    """What apply and rollback share of their options."""

    dry_run: bool
    yes: bool
    lock_wait: float


def _fleet_run(
    project: Project,
    environment: str,
    direction: Direction,
    planner: Planner,
    settings: _Settings,
    fleet: FleetOptions,
    ask: Ask,
    events: FleetEvents,
) -> FleetResult:
    env = project.config.environment(environment)
    dry_run, yes = settings.dry_run, settings.yes
    if fleet.max_failures < 0:
        raise ConfigError("--max-failures must be 0 or more")
    project.preflight(writes=not dry_run)
    refuse_unattended(env, ask, yes, changes=not dry_run)
    chosen = targets(project.config, env, ask.secret, fleet.only)
    parallel = fleet.parallel or env.parallel
    planned = _plan_all(project, chosen, planner, parallel, settings)
    plan = _fleet_plan(env, direction, planned, fleet, _failed_before(project, env, chosen))
    events.planned_fleet(plan)
    if dry_run:
        return FleetResult(plan)
    everyone = None if fleet.only else {t.name for t in chosen}
    if not plan.to_run and not plan.errors:
        written = _record_planned(project, env, planned, everyone)
        return FleetResult(plan, status_written=written)
    _refuse(env, plan, fleet.max_failures)
    if plan.confirmation is not None:
        confirm(plan.confirmation, ask)
    _record_planned(project, env, planned, everyone)
    run = _Run(project, env, plan, planner, settings.lock_wait, events, fleet.max_failures)
    return _run(run, parallel)


def _failed_before(project: Project, env: Environment, chosen: list[Target]) -> set[str]:
    path = fleet_record.record_path(project.config, env.key)
    record = fleet_record.read_record(path, env.key)
    names = {t.name for t in chosen}
    return {name for name, state in record.targets.items() if state.failure and name in names}


def _plan_all(
    project: Project,
    chosen: list[Target],
    planner: Planner,
    parallel: int,
    settings: _Settings,
) -> list[TargetPlan]:
    """Connect, plan and close each target, `parallel` at a time: no connection is held by
    a target waiting for its turn. Each is planned inside its run lock (not for a dry run),
    as one database is, so a run going on there is waited for, not half seen."""

    key = chosen[0].environment.key if chosen else ""
    record = fleet_record.read_record(fleet_record.record_path(project.config, key), key)

    def plan_one(target: Target) -> TargetPlan:
        one = TargetProject(project, target, record)  # status.json as this target sees it
        try:
            with (
                target_session(project.config, target, create=False) as session,
                nullcontext() if settings.dry_run else session.locked(settings.lock_wait),
            ):
                history = session.applied()
                refuse_stopped(session, one, history)
                plan = planner(one, session, history)
                if plan.backup and not plan.empty and not settings.dry_run:
                    session.driver.check_backup()  # no pg_dump: refused before any change
                return TargetPlan(target, plan, history=tuple(history))
        except SqlstageError as error:
            return TargetPlan(target, error=named(target.name, error))

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="plan") as pool:
        return list(pool.map(plan_one, chosen))


def _fleet_plan(
    env: Environment,
    direction: Direction,
    planned: list[TargetPlan],
    fleet: FleetOptions,
    failed_before: set[str],
) -> FleetPlan:
    steps: dict[str, Step] = {}
    counts: dict[str, int] = {}
    for item in planned:
        for step in item.plan.steps if item.plan else ():
            steps.setdefault(step.name, step)
            counts[step.name] = counts.get(step.name, 0) + 1
    order = sorted(steps.values(), key=lambda step: step.migration.number)
    if direction is Direction.DOWN:
        order.reverse()
    runnable = [t for t in planned if t.plan is not None and not t.plan.empty]
    confirmation = None
    if runnable:
        plans = [t.plan for t in runnable if t.plan is not None]
        count = f"{len(runnable)} target{'s' if len(runnable) != 1 else ''}"
        adopting = next((p for p in plans if p.adopt), None)  # its history is the question's
        confirmation = replace(
            adopting or plans[0],
            environment=replace(env, name=f"{count} of {env.name}"),
            steps=tuple(order),
            renames=(),
            backup=all(p.backup for p in plans),
        )
    canaries = _canaries(env, runnable, failed_before if fleet.resume else set())
    return FleetPlan(
        env,
        direction,
        tuple(planned),
        tuple((step.migration, counts[step.name]) for step in order),
        canaries,
        confirmation,
    )


def _canaries(env: Environment, runnable: list[TargetPlan], earlier: set[str]) -> tuple[str, ...]:
    """Resumed failures first, then the configured canaries that still have work (one
    already up to date, or narrowed away by --target, has nothing to prove)."""
    names = [t.target.name for t in runnable]
    chosen = [name for name in names if name in earlier]
    if env.canary_names:
        chosen += [name for name in env.canary_names if name in names and name not in chosen]
    elif isinstance(env.canary, int):
        chosen += [name for name in names if name not in chosen][: env.canary]
    return tuple(chosen)


def _refuse(env: Environment, plan: FleetPlan, max_failures: int) -> None:
    """The rules, before anything changes: a refusal of any target's plan refuses the run;
    more than `max_failures` targets that cannot be planned (unreachable, refused) too."""
    refused = [t for t in plan.to_run if t.plan is not None and t.plan.refusals]
    if refused:
        first = refused[0]
        assert first.plan is not None
        refusal = first.plan.refusals[0]
        if len(refused) == len(plan.to_run) and len(refused) > 1:
            scope = f"every target of {env.key} ({len(refused)})"
        else:
            more = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
            scope = f"{first.target.name}{more}"
        raise _with_message(
            refusal,
            f"{refusal.message} (refused for {scope}; nothing was changed on any target)",
        )
    errors = plan.errors
    if len(errors) > max_failures:
        error = errors[0].error
        assert error is not None
        names = ", ".join(t.target.name for t in errors[:5])
        raise _with_message(
            error,
            f"{error.message} ({len(errors)} of {len(plan.targets)} targets cannot be "
            f"planned: {names}; nothing was changed)",
        )


def named(name: str, error: SqlstageError) -> SqlstageError:
    """The error, its message starting with the target it is about."""
    return _with_message(error, f"target {name}: {error.message}")


def _with_message(error: SqlstageError, message: str) -> SqlstageError:
    copied = copy.copy(error)
    copied.message = message
    copied.args = (message,)
    return copied


# -- the run --------------------------------------------------------------------------------
class _Section:
    """One target's lines, written to the fleet's log as one section when it ends."""

    def __init__(self, log: RunLog, lock: threading.Lock, name: str) -> None:
        self._log, self._lock, self.name = log, lock, name
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        """Lines as RunLog.write takes them: a text of several lines is several lines."""
        self.lines.extend(text.splitlines() or [""])

    def flush(self) -> None:
        """The section goes to disk whole, when the target ends."""

    def close(self) -> None:
        with self._lock:
            self._log.write(f"== target {self.name}")
            for line in self.lines:
                self._log.write(f"  {line}")
            self._log.flush()


@dataclass
class _Run:
    """What the workers share."""

    project: Project
    env: Environment
    plan: FleetPlan
    planner: Planner
    lock_wait: float
    events: FleetEvents
    max_failures: int
    log: RunLog | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    interrupted: KeyboardInterrupt | None = None
    failures: int = 0
    finished: int = 0
    status_written: bool = False
    #: targets ended since the record was last written, and their histories
    unrecorded: dict[str, fleet_record.TargetState] = field(default_factory=dict)
    histories: list[list[AppliedMigration]] = field(default_factory=list)
    recorded_at: float = field(default_factory=time.monotonic)


def _run(run: _Run, parallel: int) -> FleetResult:
    project, env, plan = run.project, run.env, run.plan
    secrets = [t.target.url.password for t in plan.targets if t.target.url.password]
    outcomes = [TargetOutcome(t.target.name, error=t.error) for t in plan.errors]
    run.failures = len(outcomes)
    verb = plan.direction.value
    with signals_as_interrupts(), RunLog(project.config.log_dir, env.key, secrets) as log:
        run.log = log
        log.write(f"sqlstage {__version__} {verb} {env.key} by {current_user()}")
        log.write(
            f"fleet {env.key}: {len(plan.targets)} targets, {len(plan.to_run)} to change, "
            f"canaries {', '.join(plan.canaries) or 'none'}, {parallel} at a time"
        )
        log.write("plan: " + ", ".join(f"{m.name} on {n}" for m, n in plan.counts))
        for item in plan.errors:
            log.write(f"not planned: {item.error}")
        log.flush()
        run.unrecorded.update(_unreached(run))
        try:
            outcomes += _drive(run, parallel)
        finally:
            _flush_record(run)
        summary = _summary(env, plan, outcomes)
        log.write(summary)
    if run.interrupted is not None:
        raise run.interrupted
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        first = failed[0].error
        raise FleetFailed(
            summary,
            f"fix the cause on {'them' if len(failed) > 1 else 'it'}, then run `sqlstage "
            f"{verb} {env.key} --resume`; log: {log.path}",
            first.exit_code if first is not None else ExitCode.MIGRATION_FAILED,
        )
    record = fleet_record.record_path(project.config, env.key)
    return FleetResult(plan, tuple(outcomes), log.path, run.status_written, record)


def _drive(run: _Run, parallel: int) -> list[TargetOutcome]:
    """Canaries one by one, then the rest `parallel` at a time; no new target after more
    than `max_failures` failed, or after Ctrl-C (running ones finish their migration)."""
    plan = run.plan
    by_name = {t.target.name: t for t in plan.to_run}
    canaries = [by_name[name] for name in plan.canaries]
    rest = [t for t in plan.to_run if t.target.name not in plan.canaries]
    total = len(plan.to_run)
    submitted: list[Future[TargetOutcome]] = []
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="target") as pool:

        def start(items: list[TargetPlan]) -> None:
            futures = [pool.submit(_one, run, item, total) for item in items]
            submitted.extend(futures)
            pending = set(futures)
            while pending:  # a timeout, so that Ctrl-C and SIGTERM reach this thread
                _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)

        try:
            for item in canaries:
                start([item])
            start(rest)
        except KeyboardInterrupt as interrupt:
            run.stop.set()
            run.interrupted = interrupt
            _write(run, "INTERRUPTED: no new target starts; running ones finish their migration")
        return _results(submitted)


def _write(run: _Run, text: str) -> None:
    if run.log is not None:
        with run.lock:
            run.log.write(text)
            run.log.flush()


def _results(futures: list[Future[TargetOutcome]]) -> list[TargetOutcome]:
    """Every target's outcome, waiting for those still running (a second Ctrl-C waits on:
    they stop after the migration they are in)."""
    outcomes = []
    for future in futures:
        while True:
            try:
                outcomes.append(future.result())
                break
            except KeyboardInterrupt:
                continue
    return outcomes


def _one(run: _Run, item: TargetPlan, total: int) -> TargetOutcome:
    """One target's turn: opened, locked, planned again inside the lock, run, recorded."""
    name = item.target.name
    if run.stop.is_set() or run.log is None:
        return TargetOutcome(name, started=False)
    section = _Section(run.log, run.lock, name)
    history: list[AppliedMigration] = list(item.history)
    outcome = TargetOutcome(name)
    try:
        with target_session(run.project.config, item.target) as session:
            section.write(f"target {session.url.masked}: {session.info.describe()}")
            with session.locked(run.lock_wait, lambda who: section.write(f"waiting for {who}")):
                history = session.applied()
                refuse_stopped(session, run.project, history)
                outcome, history = _run_target(run, item, session, section, history)
    except SqlstageError as error:
        section.write(f"ERROR: {error}")
        outcome = TargetOutcome(name, error=named(name, error))
    finally:
        section.close()
        outcome = _ended(run, outcome, history, total)
    return outcome


def _run_target(
    run: _Run,
    item: TargetPlan,
    session: Session,
    section: _Section,
    history: list[AppliedMigration],
) -> tuple[TargetOutcome, list[AppliedMigration]]:
    """Plan the target again inside its lock and run the confirmed steps it still needs."""
    name = section.name
    confirmed = {m.name for m, _ in run.plan.counts}
    plan = run.planner(TargetProject(run.project, item.target), session, history)
    plan = replace(plan, steps=tuple(s for s in plan.steps if s.name in confirmed))
    if plan.refusals:
        raise plan.refusals[0]
    if plan.empty:
        section.write("nothing left to do (another run got here first)")
        return TargetOutcome(name, up_to_date=True), history
    saved = None
    if plan.backup:
        session.driver.check_backup()
        saved = backup(run.project, session, name)
        section.write(f"backup: {saved}")
    try:
        done = execute(session, plan, section, QUIET, stop=run.stop.is_set)
    except SqlstageError as error:
        section.write(f"ERROR: {error}")
        with suppress(Exception):  # what committed before the failure
            session.driver.recover()
            history = session.applied()
        return TargetOutcome(name, error=named(name, error), backup=saved), history
    return TargetOutcome(name, tuple(s.name for s in done), backup=saved), session.applied()


def _ended(
    run: _Run, outcome: TargetOutcome, history: list[AppliedMigration], total: int
) -> TargetOutcome:
    """Record the target's place (and failure) in the fleet's record and status.json; stop
    starting new targets when too many failed; tell the caller."""
    catalog = run.project.catalog
    state = fleet_record.target_state(history, catalog)
    if outcome.error is not None:
        up = run.plan.direction is Direction.UP
        stuck = next(
            (m for m, _ in run.plan.counts if state.has(m.name, catalog) != up),
            None,
        )
        where = stuck.name if stuck else "?"
        state = replace(state, failure=fleet_record.failure(where, outcome.error.message))
    with run.lock:
        if outcome.error is not None:
            run.failures += 1
            if run.failures > run.max_failures:
                run.stop.set()
        run.finished += 1
        finished = run.finished
        run.unrecorded[outcome.name] = state
        run.histories.append(history)
    if outcome.error is not None or time.monotonic() - run.recorded_at >= RECORD_EVERY_SECONDS:
        _flush_record(run)
    run.events.target_finished(outcome, finished, total)
    return outcome


#: how often a long run rewrites the fleet's record and status.json (and on every failure,
#: and at its end): at every target, 1,000 targets would rewrite a 1,000-line file 1,000 times
RECORD_EVERY_SECONDS = 1.0


def _flush_record(run: _Run) -> None:
    """Write the targets ended since the last write to the record and status.json."""
    with run.lock:
        states, histories = run.unrecorded, run.histories
        run.unrecorded, run.histories, run.recorded_at = {}, [], time.monotonic()
    if not states:
        return
    project, env = run.project, run.env
    try:
        fleet_record.update_targets(project.config, env.key, states)
        written = fleet_record.record_status(project.config, project.catalog, env, histories)
        run.status_written = run.status_written or written
    except SqlstageError as error:
        _write(run, f"the record of {', '.join(states)} was not updated: {error}")


def _unreached(run: _Run) -> dict[str, fleet_record.TargetState]:
    """The targets that could not be planned, as failures at the fleet's first migration
    (their place as the record last knew it)."""
    project, env, plan = run.project, run.env, run.plan
    record = fleet_record.read_record(fleet_record.record_path(project.config, env.key), env.key)
    first = plan.counts[0][0].name if plan.counts else "?"
    return {
        item.target.name: replace(
            record.targets.get(item.target.name, fleet_record.TargetState()),
            failure=fleet_record.failure(first, item.error.message),
        )
        for item in plan.errors
        if item.error is not None
    }


def _record_planned(
    project: Project, env: Environment, planned: list[TargetPlan], everyone: set[str] | None
) -> bool:
    """Every reached target's place, from the history just read (a failure recorded
    earlier stays until the target gets past it; with `everyone`, the fleet's every target,
    those no longer configured leave the record); returns whether status.json changed."""
    catalog = project.catalog
    states = {
        t.target.name: fleet_record.target_state(t.history, catalog)
        for t in planned
        if t.error is None
    }
    record = fleet_record.update_targets(
        project.config, env.key, states, keep_failures=True, only=everyone
    )
    passed = {
        name: fleet_record.cleared(state, catalog)
        for name, state in record.targets.items()
        if name in states and fleet_record.cleared(state, catalog) != state
    }
    if passed:
        fleet_record.update_targets(project.config, env.key, passed)
    histories = [t.history for t in planned if t.error is None]
    return fleet_record.record_status(project.config, catalog, env, histories)


def _summary(env: Environment, plan: FleetPlan, outcomes: Sequence[TargetOutcome]) -> str:
    """`pro: 58 of 60 targets changed, 2 failed (target tenant_17: ...; ...)`"""
    changed = [o for o in outcomes if o.done]
    failed = [o for o in outcomes if o.error is not None]
    waiting = [o for o in outcomes if not o.started]
    parts = [f"{env.key}: {len(changed)} of {len(plan.targets)} targets changed"]
    if failed:
        shown = "; ".join(o.error.message for o in failed[:5] if o.error is not None)
        more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
        parts.append(f"{len(failed)} failed ({shown}{more})")
    if waiting:
        parts.append(f"{len(waiting)} not started")
    return ", ".join(parts)


def refused_everywhere(plan: FleetPlan, max_failures: int = 0) -> SqlstageError | None:
    """For a dry run: the error the run would stop at before changing anything, if any."""
    try:
        _refuse(plan.environment, plan, max_failures)
    except SqlstageError as refusal:
        return refusal
    return None


# -- drift ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FleetDrift:
    """Each target's drift check: its report, or the error that left it without a verdict
    (busy, unreachable, a replay that failed)."""

    environment: str
    results: tuple[tuple[str, DriftReport | SqlstageError], ...]

    @property
    def drifted(self) -> list[tuple[str, DriftReport]]:
        return [(n, r) for n, r in self.results if not isinstance(r, SqlstageError) and r.drifted]

    @property
    def incomplete(self) -> list[tuple[str, SqlstageError]]:
        return [(n, r) for n, r in self.results if isinstance(r, SqlstageError)]

    def verdict(self) -> DriftVerdict:
        """The fleet's verdict for status.json: clean when every target is; its objects
        each named after the target they are in."""
        reports = [r for _, r in self.results if not isinstance(r, SqlstageError)]
        stamp = max((r.verdict().checked_at for r in reports), default="")
        objects = tuple(f"{name}: {d.label}" for name, r in self.drifted for d in r.differences)
        return DriftVerdict(stamp, not objects, stamp if objects else None, objects)

    def to_dict(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "drifted": bool(self.drifted),
            "targets": {
                name: {"error": str(r)} if isinstance(r, SqlstageError) else r.to_dict()
                for name, r in self.results
            },
        }


def drift(
    project: Project, environment: str, only: Sequence[str] = (), ask: Ask = UNATTENDED
) -> FleetDrift:
    """Each target's live schema against what its own history says, `parallel` at a time
    (`sqlstage.commands.drift` on each, as one database). The fleet's verdict goes to
    status.json when every target was checked (not narrowed by `only`) and each reached
    one."""
    env = project.config.environment(environment)
    project.preflight(writes=False)

    def one(target: TargetProject) -> DriftReport:
        return commands.drift(target, environment, ask)

    chosen = target_projects(project, environment, only, ask.secret)
    results = [
        (name, named(name, r) if isinstance(r, SqlstageError) else r)
        for name, r in each(chosen, one, env.parallel)
    ]
    found = FleetDrift(environment, tuple(results))
    if not only and not found.incomplete and found.results:
        project.record_drift(environment, verdict=found.verdict())
    return found
