"""Fleets: one environment, many databases (tenants on one server or several, or schemas of
one database), each run through the same path as one database.

    from sqlstage import fleet
    result = fleet.apply(project, "pro", ApplyOptions(yes=True), fleet.FleetOptions(parallel=8))

A fleet is a list of `Target`s. `apply` connects to each (`parallel` at a time, closing each
again), plans each with `commands.plan_apply` (the rules of one database, per target: edited
files, lint, rehearsal, identity, a migration stopped midway), shows one plan for the fleet
and asks one confirmation for all of it. Then canary targets run one by one, the rest
`parallel` at a time, each opened only when its turn comes, locked, planned again inside its
lock (so two runs at once apply each migration to each target once) and run by
`commands.execute`. At the first failure no new target starts (`max_failures` lets some
through); Ctrl-C lets running targets finish the migration they are in. Every target's
result goes to the fleet's record (`fleet_record`) and status.json as it ends.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from sqlstage import __version__, fleet_record
from sqlstage.bookkeeping import backup, signals_as_interrupts
from sqlstage.commands import (
    ApplyOptions,
    check_apply_options,
    execute,
    plan_apply,
    refuse_stopped,
    refuse_unattended,
)
from sqlstage.config import Config, Environment, resolve_url
from sqlstage.errors import ConfigError, ExitCode, Refused, SqlstageError
from sqlstage.history import AppliedMigration
from sqlstage.interaction import QUIET, UNATTENDED, Ask, confirm
from sqlstage.migration import Migration
from sqlstage.plan import Plan, Step
from sqlstage.project import Project
from sqlstage.runlog import RunLog
from sqlstage.runner import current_user
from sqlstage.session import Session, open_session
from sqlstage.urls import DatabaseUrl


# -- targets --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One database (or schema) of a fleet. `environment` is the fleet's, with `url` the
    target's own spec, so every rule and message of one database holds for it."""

    name: str
    environment: Environment
    url: DatabaseUrl = field(repr=False)
    schema: str | None = None


def targets(
    config: Config,
    env: Environment,
    ask: Callable[[str], str] | None = None,
    only: Sequence[str] = (),
) -> list[Target]:
    """The fleet's targets in configured order (narrowed to `only`, by name). URLs from
    `env:VAR` are read here; names are stable: given in targets_file, the schema's name, or
    the URL's host, port and database (never its user or password)."""
    if not env.is_fleet:
        raise ConfigError(f"{env.key} is one database, not a fleet: it has no targets")
    if env.schemas:
        base = resolve_url(config, env, ask)
        found = [_schema_target(env, base, schema) for schema in env.schemas]
    elif env.targets_file:
        found = _from_file(config, env)
    else:
        found = [_target(config, env, None, spec, "sqlstage.toml") for spec in env.targets]
    _check_unique(env, found)
    return _narrowed(env, found, only)


def _target(config: Config, env: Environment, name: str | None, spec: str, where: str) -> Target:
    target_env = replace(env, url=spec)
    try:
        url = resolve_url(config, target_env)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error.message}", error.fix) from error
    return Target(name or derived_name(url, config.root), target_env, url)


def _schema_target(env: Environment, base: DatabaseUrl, schema: str) -> Target:
    if base.dialect != "postgresql":
        raise ConfigError(
            f"environments.{env.key}.schemas: schema-per-tenant needs PostgreSQL "
            f"({base.masked} is {base.dialect})"
        )
    if "options=" in base.raw:
        raise ConfigError(
            f"environments.{env.key}: a fleet of schemas sets each one's search_path through "
            "the URL's options parameter, which this URL already gives",
            "move those settings into the migrations, or drop options= from the URL",
        )
    joiner = "&" if "?" in base.raw else "?"
    option = f"{joiner}options=-csearch_path%3D{schema}"
    url = replace(base, raw=base.raw + option, masked=base.masked + option)
    return Target(schema, env, url, schema)


def _from_file(config: Config, env: Environment) -> list[Target]:
    """targets_file: a URL or env:VAR a line, optionally after a name (`acme env:ACME_URL`);
    blank lines and `#` comments skipped."""
    path = config.root / (env.targets_file or "")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"environments.{env.key}.targets_file: cannot read {path}: {err.strerror}",
            "create it with one URL (or env:VAR) a line; keep it out of git",
        ) from err
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split() if not line.lstrip().startswith("#") else []
        if not words:
            continue
        if len(words) > 2:
            raise ConfigError(f"{path}:{number}: expected `URL` or `NAME URL`, not more words")
        name, spec = (None, words[0]) if len(words) == 1 else (words[0], words[1])
        found.append(_target(config, env, name, spec, f"{path}:{number}"))
    if not found:
        raise ConfigError(f"{path}: lists no targets", "one URL (or env:VAR) a line")
    return found


def derived_name(url: DatabaseUrl, root: Path) -> str:
    """`127.0.0.1:5433/tenant_01` for a server, the file's path (relative to the project)
    for SQLite."""
    if url.sqlite_path is not None:
        path = url.sqlite_path
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    rest = url.masked.split("://", 1)[-1].split("?", 1)[0]
    return rest.rpartition("@")[2] or "local"


def _check_unique(env: Environment, found: list[Target]) -> None:
    seen: set[str] = set()
    for target in found:
        if target.name in seen:
            raise ConfigError(
                f"{env.key}: two targets are both named {target.name}",
                "each database of a fleet is listed once",
            )
        seen.add(target.name)


def _narrowed(env: Environment, found: list[Target], only: Sequence[str]) -> list[Target]:
    if not only:
        return found
    names = {target.name for target in found}
    unknown = [name for name in only if name not in names]
    if unknown:
        shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
        raise ConfigError(f"--target {unknown[0]}: {env.key} has no such target (it has {shown})")
    return [target for target in found if target.name in only]


@contextmanager
def target_session(
    config: Config, target: Target, create: bool = True, verify_identity: bool = True
) -> Iterator[Session]:
    """The target opened as one database; a tenant schema that does not exist is refused
    (its search_path would fall through to another schema)."""
    session = open_session(
        config, target.environment, create=create, verify_identity=verify_identity, url=target.url
    )
    with session:
        actual = getattr(session.driver, "schema", None)
        if target.schema is not None and actual != target.schema:
            raise Refused(
                f"schema {target.schema} does not exist in {session.url.masked}; nothing "
                "was changed",
                f"create it (CREATE SCHEMA {target.schema}) or remove it from schemas",
            )
        yield session


# -- options, plan, result ------------------------------------------------------------------
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
    """One plan for the fleet: each target's, and per migration how many targets lack it."""

    environment: Environment
    targets: tuple[TargetPlan, ...]
    #: the migrations some target will run, in file order, with how many lack each
    lacking: tuple[tuple[Migration, int], ...]
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
    #: up to date by the time its turn came (another run did it)
    up_to_date: bool = False


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
DEFAULT_OPTIONS = ApplyOptions()


# -- apply ----------------------------------------------------------------------------------
def apply(
    project: Project,
    environment: str,
    options: ApplyOptions = DEFAULT_OPTIONS,
    fleet: FleetOptions = FleetOptions(),
    ask: Ask = UNATTENDED,
    events: FleetEvents = QUIET_FLEET,
) -> FleetResult:
    """Plan every target, confirm once, then run canaries one by one and the rest
    `parallel` at a time. Raises FleetFailed (the first failure's exit code) naming the
    targets that failed, after recording every target's result."""
    env = project.config.environment(environment)
    check_apply_options(options)
    if fleet.max_failures < 0:
        raise ConfigError("--max-failures must be 0 or more")
    project.preflight(writes=not options.dry_run)
    refuse_unattended(env, ask, options.yes, changes=not options.dry_run)
    chosen = targets(project.config, env, ask.secret, fleet.only)
    record = fleet_record.read_record(fleet_record.record_path(project.config, env.key), env.key)
    chosen_names = {t.name for t in chosen}
    earlier = {
        name: state.failure
        for name, state in record.targets.items()
        if state.failure is not None and name in chosen_names
    }
    parallel = fleet.parallel or env.parallel
    planned = _plan_all(project, chosen, options, parallel)
    plan = _fleet_plan(env, planned, project, fleet, earlier)
    events.planned_fleet(plan)
    if options.dry_run:
        return FleetResult(plan)
    record_written = _record_planned(project, env, planned)
    if not plan.to_run and not plan.errors:
        return FleetResult(plan, status_written=record_written)
    _refuse(env, plan, fleet.max_failures)
    if plan.confirmation is not None:
        confirm(plan.confirmation, ask)
    return _run(project, env, plan, options, fleet, parallel, events)


def _plan_all(
    project: Project, chosen: list[Target], options: ApplyOptions, parallel: int
) -> list[TargetPlan]:
    """Connect, plan and close each target, `parallel` at a time: no connection is held by
    a target waiting for its turn."""

    def plan_one(target: Target) -> TargetPlan:
        try:
            with target_session(project.config, target, create=False) as session:
                history = session.applied()
                refuse_stopped(session, project, history)
                plan = plan_apply(project, session, history, options)
                return TargetPlan(target, plan, history=tuple(history))
        except SqlstageError as error:
            return TargetPlan(target, error=named(target.name, error))

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="plan") as pool:
        return list(pool.map(plan_one, chosen))


def _fleet_plan(
    env: Environment,
    planned: list[TargetPlan],
    project: Project,
    fleet: FleetOptions,
    earlier: dict[str, fleet_record.TargetFailure],
) -> FleetPlan:
    steps: dict[str, Step] = {}
    lacking: dict[str, int] = {}
    for item in planned:
        for step in item.plan.steps if item.plan else ():
            steps.setdefault(step.name, step)
            lacking[step.name] = lacking.get(step.name, 0) + 1
    order = [m for m in project.catalog.migrations if m.name in steps]
    runnable = [t for t in planned if t.plan is not None and not t.plan.empty]
    confirmation = None
    if runnable:
        lead = runnable[0].plan
        assert lead is not None
        count = len(runnable)
        confirmation = replace(
            lead,
            environment=replace(
                env, name=f"{count} target{'s' if count != 1 else ''} of {env.name}"
            ),
            steps=tuple(steps[m.name] for m in order),
            renames=(),
            adopt=any(t.plan.adopt for t in runnable if t.plan),
            backup=all(t.plan.backup for t in runnable if t.plan),
        )
    canaries = _canaries(env, runnable, set(earlier) if fleet.resume else set())
    return FleetPlan(
        env,
        tuple(planned),
        tuple((m, lacking[m.name]) for m in order),
        canaries,
        confirmation,
    )


def _canaries(env: Environment, runnable: list[TargetPlan], earlier: set[str]) -> tuple[str, ...]:
    """Resumed failures first, then the configured canaries that still have work (one
    already up to date, or narrowed away by --target, has nothing to prove)."""
    names = [t.target.name for t in runnable]
    chosen = [name for name in names if name in earlier]
    if isinstance(env.canary, tuple):
        chosen += [name for name in env.canary if name in names and name not in chosen]
    else:
        chosen += [name for name in names if name not in chosen][: env.canary]
    return tuple(chosen)


def _refuse(env: Environment, plan: FleetPlan, max_failures: int) -> None:
    """The rules, before anything changes: a refusal of any target's plan refuses the run;
    targets that cannot be planned (unreachable, refused) count as failures."""
    for item in plan.to_run:
        assert item.plan is not None
        if item.plan.refusals:
            refusal = item.plan.refusals[0]
            same = sum(1 for t in plan.to_run if t.plan and t.plan.refusals)
            scope = (
                f"every target of {env.key} ({same})"
                if same == len(plan.to_run) and same > 1
                else f"{item.target.name}" + (f" and {same - 1} more" if same > 1 else "")
            )
            raise _with_message(
                refusal,
                f"{refusal.message} (refused for {scope}; nothing was changed on any target)",
            )
    errors = plan.errors
    if len(errors) > max_failures:
        first = errors[0].error
        assert first is not None
        names = ", ".join(t.target.name for t in errors[:5])
        raise _with_message(
            first,
            f"{first.message} ({len(errors)} of {len(plan.targets)} targets cannot be "
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
        self.lines.append(text)

    def close(self) -> None:
        with self._lock:
            self._log.write(f"== target {self.name}")
            for line in self.lines:
                self._log.write(f"  {line}")


@dataclass
class _Run:
    """What the workers share."""

    project: Project
    env: Environment
    plan: FleetPlan
    options: ApplyOptions
    log: RunLog
    events: FleetEvents
    max_failures: int
    stop: threading.Event = field(default_factory=threading.Event)
    interrupted: KeyboardInterrupt | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: int = 0
    finished: int = 0
    status_written: bool = False


def _run(
    project: Project,
    env: Environment,
    plan: FleetPlan,
    options: ApplyOptions,
    fleet: FleetOptions,
    parallel: int,
    events: FleetEvents,
) -> FleetResult:
    secrets = [t.target.url.password for t in plan.targets if t.target.url.password]
    outcomes = [TargetOutcome(t.target.name, error=t.error) for t in plan.errors]
    with signals_as_interrupts(), RunLog(project.config.log_dir, env.key, secrets) as log:
        run = _Run(
            project, env, plan, options, log, events, fleet.max_failures, failures=len(outcomes)
        )
        log.write(f"sqlstage {__version__} apply {env.key} by {current_user()}")
        log.write(
            f"fleet {env.key}: {len(plan.targets)} targets, {len(plan.to_run)} to change, "
            f"canaries {', '.join(plan.canaries) or 'none'}, {parallel} at a time"
        )
        for item in plan.errors:
            log.write(f"not planned: {item.error}")
        outcomes += _drive(run, plan, fleet, parallel)
        failed = [o for o in outcomes if o.error is not None]
        log.write(_summary(env, plan, outcomes))
    result = FleetResult(
        plan,
        tuple(outcomes),
        log.path,
        run.status_written,
        fleet_record.record_path(project.config, env.key),
    )
    if run.interrupted is not None:
        raise run.interrupted
    if failed:
        raise FleetFailed(
            _summary(env, plan, outcomes),
            f"fix the cause on {'them' if len(failed) > 1 else 'it'}, then run `sqlstage "
            f"apply {env.key} --resume`; log: {log.path}",
            failed[0].error.exit_code if failed[0].error else ExitCode.MIGRATION_FAILED,
        )
    return result


def _drive(run: _Run, plan: FleetPlan, fleet: FleetOptions, parallel: int) -> list[TargetOutcome]:
    """Canaries one by one, then the rest `parallel` at a time; no new target after more
    than `max_failures` failed, or after Ctrl-C (running ones finish their migration)."""
    by_name = {t.target.name: t for t in plan.to_run}
    canaries = [by_name[name] for name in plan.canaries]
    rest = [t for t in plan.to_run if t.target.name not in plan.canaries]
    total = len(plan.to_run)
    outcomes: list[TargetOutcome] = []
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="target") as pool:
        try:
            for item in canaries:
                outcomes += _wait([pool.submit(_one, run, item, fleet, total)])
            futures = [pool.submit(_one, run, item, fleet, total) for item in rest]
            outcomes += _wait(futures)
        except KeyboardInterrupt as interrupt:
            run.stop.set()
            run.interrupted = interrupt
            run.log.write("INTERRUPTED: no new target starts; running ones finish their migration")
            outcomes += _finish(futures if "futures" in locals() else [])
    return outcomes


def _wait(futures: list[Future[TargetOutcome]]) -> list[TargetOutcome]:
    outcomes = []
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        for future in done:
            outcomes.append(future.result())
    return outcomes


def _finish(futures: list[Future[TargetOutcome]]) -> list[TargetOutcome]:
    """After Ctrl-C: wait for the running targets (a second Ctrl-C waits on)."""
    outcomes = []
    for future in futures:
        while True:
            try:
                outcomes.append(future.result())
                break
            except KeyboardInterrupt:
                continue
    return outcomes


def _one(run: _Run, item: TargetPlan, fleet: FleetOptions, total: int) -> TargetOutcome:
    """One target's turn: opened, locked, planned again inside the lock, run, recorded."""
    name = item.target.name
    if run.stop.is_set():
        return TargetOutcome(name, started=False)
    section = _Section(run.log, run.lock, name)
    history: list[AppliedMigration] = list(item.history)
    outcome = TargetOutcome(name)
    try:
        with target_session(run.project.config, item.target) as session:
            section.write(f"target {session.url.masked}: {session.info.describe()}")
            with session.locked(
                run.options.lock_wait,
                lambda who: section.write(f"waiting for the run lock, held by {who}"),
            ):
                history = session.applied()
                refuse_stopped(session, run.project, history)
                outcome, history = _apply_target(run, session, section, history)
    except SqlstageError as error:
        section.write(f"ERROR: {error}")
        outcome = TargetOutcome(name, error=named(name, error))
    finally:
        section.close()
        outcome = _ended(run, item, outcome, history, total)
    return outcome


def _apply_target(
    run: _Run, session: Session, section: _Section, history: list[AppliedMigration]
) -> tuple[TargetOutcome, list[AppliedMigration]]:
    name = section.name
    confirmed = {m.name for m, _ in run.plan.lacking}
    plan = plan_apply(run.project, session, history, replace(run.options, yes=True))
    plan = replace(plan, steps=tuple(s for s in plan.steps if s.name in confirmed))
    if plan.refusals:
        raise plan.refusals[0]
    if plan.empty:
        section.write("up to date (another run got here first)")
        return TargetOutcome(name, up_to_date=True), history
    if plan.backup:
        session.driver.check_backup()
        section.write(f"backup: {backup(run.project, session)}")
    done: list[Step] = []
    try:
        done = execute(session, plan, section, QUIET, stop=run.stop.is_set)
    except SqlstageError as error:
        section.write(f"ERROR: {error}")
        with suppress(Exception):
            session.driver.recover()
            history = session.applied()
        return TargetOutcome(name, error=named(name, error)), history
    return TargetOutcome(name, tuple(s.name for s in done)), session.applied()


def _ended(
    run: _Run,
    item: TargetPlan,
    outcome: TargetOutcome,
    history: list[AppliedMigration],
    total: int,
) -> TargetOutcome:
    """Record the target's place (and failure) in the fleet's record and status.json; stop
    starting new targets when too many failed; tell the caller."""
    project, env = run.project, run.env
    state = fleet_record.target_state(history, project.catalog)
    if outcome.error is not None:
        missing = next(
            (m for m, _ in run.plan.lacking if not state.has(m.name, project.catalog)), None
        )
        state = replace(
            state,
            failure=fleet_record.failure(missing.name if missing else "?", outcome.error.message),
        )
    with run.lock:
        if outcome.error is not None:
            run.failures += 1
            if run.failures > run.max_failures:
                run.stop.set()
        run.finished += 1
        finished = run.finished
    try:
        record = fleet_record.update_targets(project.config, env.key, {outcome.name: state})
        written = fleet_record.record_status(
            project.config, project.catalog, env, record, [history]
        )
        run.status_written = run.status_written or written
    except SqlstageError as error:
        run.log.write(f"{outcome.name}: the record was not updated: {error}")
    run.events.target_finished(outcome, finished, total)
    return outcome


def _record_planned(project: Project, env: Environment, planned: list[TargetPlan]) -> bool:
    """Before the run: every reached target's place, from the history just read (a failure
    recorded earlier stays until the target gets past it)."""
    catalog = project.catalog
    states = {
        t.target.name: fleet_record.target_state(t.history, catalog)
        for t in planned
        if t.error is None
    }
    record = fleet_record.update_targets(project.config, env.key, states, keep_failures=True)
    passed = {
        name: fleet_record.cleared(state, catalog)
        for name, state in record.targets.items()
        if name in states and fleet_record.cleared(state, catalog) != state
    }
    if passed:
        record = fleet_record.update_targets(project.config, env.key, passed)
    histories = [t.history for t in planned if t.error is None]
    return fleet_record.record_status(project.config, catalog, env, record, histories)


def _summary(env: Environment, plan: FleetPlan, outcomes: Sequence[TargetOutcome]) -> str:
    """`pro: 58 of 60 targets changed, 2 failed (tenant_17: ..., tenant_311: ...)`"""
    changed = [o for o in outcomes if o.done]
    failed = [o for o in outcomes if o.error is not None]
    waiting = [o for o in outcomes if not o.started]
    parts = [f"{env.key}: {len(changed)} of {len(plan.targets)} targets changed"]
    if failed:
        shown = "; ".join(f"{o.error.message}" for o in failed[:5] if o.error)
        more = f"; and {len(failed) - 5} more" if len(failed) > 5 else ""
        parts.append(f"{len(failed)} failed ({shown}{more})")
    if waiting:
        parts.append(f"{len(waiting)} not started")
    return ", ".join(parts)
