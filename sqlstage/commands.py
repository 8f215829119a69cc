"""One function per thing a user does that touches a database: the API the CLI and scripts
both call, with the same rules.

    from sqlstage.commands import ApplyOptions, apply
    from sqlstage.project import Project, VerifyReport

    result = apply(Project.load(Path(".")), "dev", ApplyOptions(yes=True))

Every rule is enforced here, whoever calls: a protected environment is refused before any
connection unless a person can confirm (`ask.attended`) or the committed config allows an
unattended deploy; the plan's refusals (lint errors, rehearsal, identity) stop the run before
it starts; the backup is taken here. The caller supplies only answers (`Ask`) and listens to
what happens (`Events`). A script that passes nothing gets `UNATTENDED`: no one to ask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlstage import bookkeeping
from sqlstage.checksums import refuse_edited
from sqlstage.config import Environment
from sqlstage.drivers.base import ServerInfo
from sqlstage.errors import CheckIncomplete, ConfigError, Refused
from sqlstage.history import AppliedMigration, Marker
from sqlstage.interaction import (
    QUIET,
    UNATTENDED,
    Ask,
    Events,
    Unattended,
    confirm,
    confirm_action,
)
from sqlstage.locking import DEFAULT_LOCK_WAIT_SECONDS
from sqlstage.migration import Migration
from sqlstage.plan import (
    Confirmation,
    Direction,
    Plan,
    Step,
    choose_apply,
    choose_rollback,
    section_statements,
    with_steps,
)
from sqlstage.project import Project, VerifyReport
from sqlstage.runlog import Log, RunLog
from sqlstage.safety import (
    Identity,
    adoption_refusal,
    identity,
    lint_note,
    lint_refusal,
    prompt_refusal,
    rehearsal_refusal,
    unattended_refusal,
)
from sqlstage.session import Session, check_marker, open_session, own_statement
from sqlstage.user import current_user

if TYPE_CHECKING:  # what only other commands need: apply and rollback do not import it
    from sqlstage.drift.check import DriftReport
    from sqlstage.drift.compare import EnvironmentsDiff
    from sqlstage.repair import RepairAction
    from sqlstage.report import LiveReport
    from sqlstage.schema import Snapshot
    from sqlstage.verify import VerifyEvents


# -- apply and rollback ---------------------------------------------------------------------
@dataclass(frozen=True)
class ApplyOptions:
    """What `apply` was asked to do beyond the environment (the CLI's flags)."""

    #: exactly this migration (it must be the next pending one) ...
    target: str | None = None
    #: ... or the pending ones up to this one
    to: str | None = None
    dry_run: bool = False
    #: do not ask y/N (a protected environment takes it only with allow_non_interactive)
    yes: bool = False
    allow_out_of_order: bool = False
    backup: bool = False
    #: go on although `requires` has not run the migrations: why (logged, in the history)
    skip_rehearsal: str | None = None
    #: mark a database that has migrations but no marker as this environment
    adopt: bool = False
    #: lint rules whose errors a protected environment lets through (logged)
    allow_lint: tuple[str, ...] = ()
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS
    #: go on although a checked environment drifted from its history: why (logged, in
    #: the history rows)
    allow_drift: str | None = None
    #: the database's tables (it has no sqlstage history) are not from these migrations:
    #: run them all anyway instead of refusing and naming `baseline`
    not_from_migrations: bool = False


@dataclass(frozen=True)
class RollbackOptions:
    """What `rollback` was asked to do beyond the environment (the CLI's flags)."""

    #: this migration and every one applied after it (default: the last one)
    target: str | None = None
    dry_run: bool = False
    yes: bool = False
    backup: bool = False
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS
    #: go on although a checked environment drifted from its history: why (logged)
    allow_drift: str | None = None


@dataclass(frozen=True)
class RunResult:
    """What an apply or rollback did: its plan, the steps that committed, what it wrote."""

    plan: Plan
    done: tuple[Step, ...] = ()
    log_path: Path | None = None
    status_written: bool = False
    schema_dump: Path | None = None
    backup: Path | None = None

    @property
    def migrations(self) -> tuple[Migration, ...]:
        return tuple(step.migration for step in self.done)


def apply(
    project: Project,
    environment: str,
    options: ApplyOptions = ApplyOptions(),
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
) -> RunResult:
    """Plan and run the environment's pending migrations (or `target` / up to `to`)."""
    env = project.config.environment(environment)
    check_apply_options(options)
    refuse_fleet(env, "sqlstage.fleet.apply runs each of its targets through this same path")
    with _changing(project, env, ask, events, options) as (session, history):
        plan = plan_apply(project, session, history, options)
        events.planned(plan)
        if options.dry_run or plan.already_applied is not None:
            return RunResult(plan)
        if plan.refusals:
            raise plan.refusals[0]
        if plan.empty:
            with bookkeeping.run_log(project, session, "apply", history, events.warning) as log:
                log.write(f"nothing to apply: {env.key} is up to date")
            return RunResult(plan, log_path=log.path, status_written=session.status_written)
        return _run(project, session, plan, ask, events, options.yes)


def check_apply_options(options: ApplyOptions) -> None:
    """Options that are wrong whatever the database: before any connection."""
    if options.skip_rehearsal is not None and not options.skip_rehearsal.strip():
        raise ConfigError('skipping the rehearsal check needs a reason: --reason "why"')
    _drift_reason(options.allow_drift)
    _known_rules(options.allow_lint)


def plan_apply(
    project: Project, session: Session, history: list[AppliedMigration], options: ApplyOptions
) -> Plan:
    """The apply plan for one database, every decision taken: what runs, the lint findings,
    the refusals (edited files, lint, rehearsal), the confirmation it needs. A fleet plans
    each of its targets with it."""
    env = session.environment
    refuse_edited(env.key, project.catalog, history, session.history.applied_sql)
    plan = choose_apply(
        env,
        project.catalog,
        history,
        options.target,
        options.to,
        options.allow_out_of_order,
    )
    plan = _pooler_warning(session, with_steps(plan, session.driver))
    return _decide_apply(project, session, plan, options)


def refuse_fleet(env: Environment, instead: str) -> None:
    """A fleet has no one database to open: its commands are sqlstage.fleet's."""
    if env.is_fleet:
        raise ConfigError(
            f"{env.key} is a fleet (targets or schemas in sqlstage.toml), not one database",
            instead,
        )


def rollback(
    project: Project,
    environment: str,
    options: RollbackOptions = RollbackOptions(),
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
) -> RunResult:
    """Run the rollback sections of the environment's last migration, or of `target` and
    every one applied after it, newest first."""
    env = project.config.environment(environment)
    refuse_fleet(env, "sqlstage.fleet.rollback runs each of its targets through this same path")
    _drift_reason(options.allow_drift)
    with _changing(project, env, ask, events, options) as (session, history):
        plan = plan_rollback(project, session, history, options)
        events.planned(plan)
        if options.dry_run or plan.not_applied is not None or plan.empty:
            return RunResult(plan)
        return _run(project, session, plan, ask, events, options.yes)


def plan_rollback(
    project: Project, session: Session, history: list[AppliedMigration], options: RollbackOptions
) -> Plan:
    """The rollback plan for one database, every decision taken."""
    plan = choose_rollback(session.environment, project.catalog, history, options.target)
    plan = _pooler_warning(session, with_steps(plan, session.driver))
    plan = _drift_decision(project, session, plan, options)
    return _decide(session, plan, options.yes, options.backup, adopt=False)


@contextmanager
def _changing(
    project: Project,
    env: Environment,
    ask: Ask,
    events: Events,
    options: ApplyOptions | RollbackOptions,
) -> Iterator[tuple[Session, list[AppliedMigration]]]:
    """How apply and rollback start: connected, locked (not for a dry run), the history
    read inside the lock, and refused while a migration stopped midway."""
    with (
        _connected(project, env, ask, events, options.dry_run, options.yes) as session,
        _locked(session, options.lock_wait, events, skip=options.dry_run),
    ):
        history = session.applied()
        refuse_stopped(session, project, history)
        yield session, history


def _pooler_warning(session: Session, plan: Plan) -> Plan:
    """Behind a transaction pooler lock_timeout is a SET LOCAL in each migration's
    transaction; a step outside a transaction runs each statement in one of its own, which
    no SET LOCAL can reach (and a session SET would leak to other clients): say so."""
    env = session.environment
    outside = [step.name for step in plan.steps if not step.in_transaction]
    if env.pooler != "transaction" or env.effective_lock_timeout is None or not outside:
        return plan
    warning = (
        f"{', '.join(outside)} {'runs' if len(outside) == 1 else 'run'} outside a transaction "
        f'through a transaction pooler (pooler = "transaction"), so without lock_timeout '
        f"{env.effective_lock_timeout}: its statements may queue behind other sessions' locks"
    )
    return replace(plan, warnings=(*plan.warnings, warning))


def _decide_apply(project: Project, session: Session, plan: Plan, options: ApplyOptions) -> Plan:
    """Take the apply plan's decisions: lint findings and the rules it would break."""
    env = session.environment
    findings = (
        []
        if not plan.steps
        else project.lint(
            plan.migrations,
            session.driver.dialect,
            session.info.major if session.info.product == "PostgreSQL" else None,
        )
    )
    refusals = [
        adoption(project, session, plan.history, options.not_from_migrations),
        lint_refusal(env, findings, options.allow_lint, _apply_command(env, options)),
    ]
    notes = [lint_note(findings, options.allow_lint)]
    if options.skip_rehearsal is not None:
        notes.insert(0, f"rehearsal check skipped: {options.skip_rehearsal}")
    elif env.requires is not None:
        refusals.append(
            rehearsal_refusal(env, plan.migrations, project.read_status(), project.catalog)
        )
    plan = replace(
        plan,
        findings=tuple(findings),
        refusals=tuple(r for r in refusals if r is not None),
        note="; ".join(n for n in notes if n) or None,
    )
    plan = _drift_decision(project, session, plan, options)
    return _decide(session, plan, options.yes, options.backup, options.adopt)


def _drift_decision(
    project: Project, session: Session, plan: Plan, options: ApplyOptions | RollbackOptions
) -> Plan:
    """A checked environment (protected, or `[drift.ENV] check = true`) whose live schema
    is not what its history says is refused, unless `allow_drift` says why to go on. The
    verdict is recorded in status.json (not by a dry run)."""
    env = session.environment
    if not plan.steps or not project.config.drift.checked(env.key, env.protected):
        return plan
    from sqlstage.drift.check import check, refusal  # schema snapshots: only for a check

    try:
        report = check(project, session, locked=not options.dry_run)
    except CheckIncomplete as error:
        if options.allow_drift is None:
            raise
        why = f"{options.allow_drift} (drift check could not finish: {error.message})"
        return replace(plan, allowed_drift=why)
    if not options.dry_run:
        project.record_drift(env.key, report.fingerprint, report.verdict())
    if not report.drifted:
        return plan
    if options.allow_drift is not None:
        return replace(plan, allowed_drift=f"{options.allow_drift} (drifted: {report.summary()})")
    return replace(plan, refusals=(*plan.refusals, refusal(report)))


def _drift_reason(reason: str | None) -> None:
    if reason is not None and not reason.strip():
        raise ConfigError('going on despite drift needs a reason: --allow-drift --reason "why"')


def _apply_command(env: Environment, options: ApplyOptions) -> str:
    """The command line that runs this plan again: `sqlstage apply pro 005 --yes`."""
    words = ["sqlstage apply", env.key]
    words += [options.target] if options.target else []
    words += [f"--to {options.to}"] if options.to else []
    words += ["--yes"] if options.yes else []
    words += ["--not-from-migrations"] if options.not_from_migrations else []
    words += [f"--allow-lint {rule}" for rule in options.allow_lint]
    return " ".join(words)


def _decide(session: Session, plan: Plan, yes: bool, backup: bool, adopt: bool) -> Plan:
    """Backup, adoption and the confirmation the run needs."""
    env = session.environment
    who = identity(session.marker, len([row for row in plan.history if row.is_applied]))
    adopting = who is Identity.UNMARKED_ADOPTED and plan.direction is Direction.UP and not adopt
    if env.protected and not (env.allow_non_interactive and yes):
        confirmation = Confirmation.TYPE_KEY
    else:
        confirmation = Confirmation.NONE if yes else Confirmation.YES_NO
    return replace(
        plan,
        backup=backup or env.backup is not None,
        adopt=adopting,
        confirmation=confirmation,
    )


def _run(
    project: Project, session: Session, plan: Plan, ask: Ask, events: Events, yes: bool
) -> RunResult:
    """Enforce the plan's refusals, confirm, back up, run the steps, record everything."""
    if plan.refusals:
        raise plan.refusals[0]
    if plan.backup:
        session.driver.check_backup()
    confirm(plan, ask)
    backup_path = None
    if plan.backup:
        backup_path = bookkeeping.backup(project, session)
        events.backed_up(backup_path)
    with bookkeeping.run_log(
        project, session, plan.direction.value, plan.history, events.warning
    ) as log:
        done = execute(session, plan, log, events)
        dumped = bookkeeping.dump_schema(project, session, log)
        bookkeeping.record_fingerprint(project, session, log)
    return RunResult(plan, tuple(done), log.path, session.status_written, dumped, backup_path)


def execute(
    session: Session,
    plan: Plan,
    log: Log,
    events: Events,
    stop: Callable[[], bool] | None = None,
) -> list[Step]:
    """Run a confirmed plan's steps on the session's database (marked first, renames
    followed), logging each; `stop` is asked between migrations (a fleet's Ctrl-C)."""
    env, direction = session.environment, plan.direction
    names = ", ".join(step.name for step in plan.steps) or "nothing"
    log.write(f"plan: {'roll back ' if direction is Direction.DOWN else ''}{names}")
    for warning in (*plan.warnings, *session.warnings):
        log.write(f"warning: {warning}")
    if plan.note:
        log.write(f"note: {plan.note}")
    if plan.allowed_drift:
        log.write(f"drift allowed: {plan.allowed_drift}")
    if direction is Direction.UP and session.mark():
        log.write(f"marked this database as environment '{env.key}'")
    for rename in plan.renames:
        session.history.rename(rename.old, rename.new.name)
        log.write(f"renamed {rename.old} to {rename.new.name} in the history (nothing ran)")
    from sqlstage.runner import Runner  # a run that runs nothing does not import it

    runner = Runner(
        session.driver,
        session.history,
        log,
        env.key,
        events,
        note=plan.note,
        lock_timeout=env.effective_lock_timeout,
        stop=stop,
        allowed_drift=plan.allowed_drift if direction is Direction.UP else None,
    )
    done = runner.run(plan.steps, direction)
    log.write(f"done: {len(done)} migration(s) {direction.past} {direction.prep} {env.key}")
    return done


# -- putting records right ------------------------------------------------------------------
@dataclass(frozen=True)
class RepairResult:
    """What `repair` did, its log, and whether status.json changed."""

    done: str
    log_path: Path
    status_written: bool


def repair(
    project: Project,
    environment: str,
    migration: str,
    action: RepairAction,
    yes: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
) -> RepairResult:
    """Change one history row (mark applied, forget, accept an edit, follow a rename), or
    resume a migration stopped midway outside a transaction."""
    from sqlstage.repair import RepairAction, find_row, repair, resolve_name

    env = project.config.environment(environment)
    with (
        _connected(project, env, ask, events, False, yes) as session,
        _locked(session, lock_wait, events),
    ):
        history = session.applied()
        name = resolve_name(project.catalog, history, migration)
        confirm_action(env, f"{action.value} {name} on {env.label}", yes, ask)
        with bookkeeping.run_log(project, session, "repair", history, events.warning) as log:
            if action is RepairAction.RESUME:
                done = _resume(project, session, log, find_row(history, name), events)
            else:
                by = current_user()
                done = repair(session.history, env.key, project.catalog, name, action, by)
            log.write(done)
    return RepairResult(done, log.path, session.status_written)


def _resume(
    project: Project,
    session: Session,
    log: RunLog,
    row: AppliedMigration | None,
    events: Events,
) -> str:
    env = session.environment
    migration = project.catalog.by_name().get(row.migration) if row else None
    if row is None or row.is_applied or migration is None:
        raise Refused(
            f"nothing to resume: {row.migration if row else 'that migration'} did not stop "
            f"midway on {env.key}"
        )
    if not migration.matches(row.checksum):
        raise Refused(
            f"{migration.file_name} changed since it stopped midway on {env.key}: resuming "
            "would run statements of another file",
            "restore the file as it was, or fix the database by hand and use --mark-applied",
        )
    statements = tuple(section_statements(session.driver, migration, Direction.UP))
    start = row.statements_done or 0
    step = Step(migration, statements, in_transaction=False, start_at=start, resumed=True)
    from sqlstage.runner import Runner

    runner = Runner(session.driver, session.history, log, env.key, events)
    runner.run([step], Direction.UP)
    return f"resumed {migration.name} on {env.key}: ran statements {start + 1}-{len(statements)}"


def remark(
    project: Project,
    environment: str,
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
) -> str:
    """Mark the database as `environment` though its marker says it is another one (a dev
    database restored from a production dump). The person must type the environment's key,
    whatever else was said: a script (UNATTENDED) is refused. Returns what was done."""
    from sqlstage.history import write_marker

    env = project.config.environment(environment)
    project.preflight()
    refuse_unattended(env, ask, False)
    session = open_session(project.config, env.key, ask.secret, create=False, verify_identity=False)
    with session, _locked(session, lock_wait, events):
        events.connected(session)
        marker = session.marker
        try:
            check_marker(session)
        except Refused:
            pass
        else:
            said = f"marked '{env.key}'" if marker.present else "not marked (apply marks it)"
            raise Refused(f"this database is already {said}: nothing to re-mark")
        was = f"'{marker.environment}'" + (" (protected)" if marker.protected else "")
        answer = ask.typed(
            f"This database is marked {was}, not '{env.key}'. If it is {env.label}, restored "
            f"from a dump of {marker.environment}, type '{env.key}' to mark it as '{env.key}'"
        )
        if answer.strip() != env.key:
            raise Refused(f"not confirmed: {env.key}'s marker was not changed")
        with bookkeeping.run_log(project, session, "repair", session.applied()) as log:
            by = current_user()
            own_statement(session, lambda: write_marker(session.driver, env.key, env.protected, by))
            done = f"re-marked this database as '{env.key}' (it was marked {was})"
            log.write(done)
    return done


@dataclass(frozen=True)
class BaselineResult:
    """The migrations `baseline` recorded, and whether status.json changed."""

    migrations: tuple[Migration, ...]
    status_written: bool


def baseline(
    project: Project,
    environment: str,
    target: str,
    yes: bool = False,
    adopt: bool = False,
    lock_wait: float = DEFAULT_LOCK_WAIT_SECONDS,
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
    show: Callable[[list[Migration]], None] | None = None,
) -> BaselineResult:
    """Record the migrations up to `target` as applied without running them, and mark the
    database as the environment (baselining is adopting it)."""
    from sqlstage.repair import plan_baseline, record_baseline, recorded_dates

    env = project.config.environment(environment)
    with (
        _connected(project, env, ask, events, False, yes) as session,
        _locked(session, lock_wait, events),
    ):
        history = session.applied()
        chosen = plan_baseline(env.key, project.catalog, history, project.catalog.find(target))
        if not chosen:
            return BaselineResult((), False)
        if show is not None:
            show(chosen)
        count = f"{len(chosen)} migration{'s' if len(chosen) != 1 else ''}"
        if identity(session.marker, len(history)) is Identity.UNMARKED_ADOPTED and not adopt:
            plan = Plan(env, Direction.UP, (), (), tuple(history), adopt=True)
            confirm(plan, ask)  # --yes alone never marks it
        confirm_action(env, f"record {count} on {env.label}", yes, ask)
        dates = recorded_dates(project.only_in_file(env.key, history), project.catalog)
        with bookkeeping.run_log(project, session, "baseline", history, events.warning) as log:
            session.mark()
            record_baseline(session.history, chosen, current_user(), dates)
            names = ", ".join(m.name for m in chosen)
            log.write(f"recorded as applied, none run: {names}")
    return BaselineResult(tuple(chosen), session.status_written)


# -- the shared start -----------------------------------------------------------------------
def refuse_unattended(env: Environment, ask: Ask, yes: bool, changes: bool = True) -> None:
    """Before any connection: a protected environment needs a person or the committed config's
    allow_non_interactive; a URL typed at a prompt needs a person, always."""
    refusal = prompt_refusal(env, ask.attended)
    if refusal is None and changes:
        refusal = unattended_refusal(env, ask.attended, yes)
    if refusal is not None:
        raise refusal


@contextmanager
def connected(
    project: Project,
    environment: str,
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
    changes: bool = False,
    verify_identity: bool = True,
) -> Iterator[Session]:
    """A session for a command that reads (`check`, `status --live`, `schema`)."""
    env = project.config.environment(environment)
    refuse_fleet(
        env,
        f"this command reads one database; `sqlstage check {env.key}` and `sqlstage status "
        f"--live {env.key} [--target NAME]` read each target (in a script: "
        "sqlstage.fleet_target.target_projects)",
    )
    refuse_unattended(env, ask, False, changes=changes)
    session = open_session(
        project.config, env.key, ask.secret, create=changes, verify_identity=verify_identity
    )
    with session:
        events.connected(session)
        yield session


@contextmanager
def _connected(
    project: Project, env: Environment, ask: Ask, events: Events, dry_run: bool, yes: bool
) -> Iterator[Session]:
    project.preflight(writes=not dry_run)  # a file error stops the run before it connects
    refuse_unattended(env, ask, yes, changes=not dry_run)
    session = open_session(project.config, env.key, ask.secret, create=not dry_run)
    with session:
        events.connected(session)
        for warning in session.warnings:
            events.warning(warning)
        yield session


def _locked(
    session: Session, wait_seconds: float, events: Events, skip: bool = False
) -> AbstractContextManager[None]:
    return nullcontext() if skip else session.locked(wait_seconds, events.waiting)


def refuse_stopped(session: Session, project: Project, history: list[AppliedMigration]) -> None:
    """Refuse (exit 3) while a migration that ran outside a transaction stopped midway,
    naming what committed and what did not."""
    row = next((row for row in history if row.stopped_midway), None)
    if row is None:
        return
    env = session.environment
    migration = project.catalog.by_name().get(row.migration)
    done = row.statements_done
    where = ""
    if migration is not None and done is not None:
        statements = section_statements(session.driver, migration, Direction.UP)
        if done < len(statements):
            where = (
                f"; statements 1-{done} of {len(statements)} committed, statement {done + 1} "
                f"(line {statements[done].line}) and after did not"
                if done
                else f"; none of its {len(statements)} statements committed"
            )
    how = "a run was killed while applying it" if row.status.value == "running" else row.note
    raise Refused(
        f"{row.migration} stopped midway on {env.key} and may have left it half-changed "
        f"({how}{where})",
        f"fix the cause, then run `sqlstage repair {env.key} {row.migration} --resume`; or fix "
        "the database by hand and use `--mark-applied` (or `--forget` to run it again)",
    )


def adoption(
    project: Project,
    session: Session,
    history: Sequence[AppliedMigration],
    not_from_migrations: bool = False,
) -> Refused | None:
    """What `apply` refuses about a database sqlstage has no history of though it is not
    new (`safety.adoption_refusal`); the tables are looked up only when there is no history."""
    env = session.environment
    only = [row.migration for row in project.only_in_file(env.key, history)]
    tables: list[str] = []
    if not only and not not_from_migrations and not any(row.is_applied for row in history):
        tables = own_statement(session, lambda: session.driver.user_tables(4))
    return adoption_refusal(env, only, tables)


def _known_rules(rules: tuple[str, ...]) -> None:
    if not rules:
        return
    from sqlstage.lint import RULES

    unknown = [rule for rule in rules if rule not in RULES]
    if unknown:
        raise ConfigError(f"--allow-lint {unknown[0]}: no such rule (`sqlstage lint --rules`)")


# -- commands that read ---------------------------------------------------------------------
@dataclass(frozen=True)
class CheckReport:
    """What `check` found: the server, the marker, the history and what apply would refuse."""

    info: ServerInfo
    marker: Marker
    last_applied: AppliedMigration | None
    applied_count: int
    #: what `apply` would refuse about this database's identity, if anything
    refusal: Refused | None = None
    #: what `apply` would refuse because sqlstage has no history of this database though
    #: it is not new (run `sqlstage baseline ENV`)
    adoption: Refused | None = None


def check(
    project: Project, environment: str, ask: Ask = UNATTENDED, events: Events = QUIET
) -> CheckReport:
    """What `sqlstage check` shows; changes nothing."""
    with connected(project, environment, ask, events, verify_identity=False) as session:
        rows = session.applied()
        history = [row for row in rows if row.is_applied]
        try:
            check_marker(session)
            refusal = None
        except Refused as error:
            refusal = error
        return CheckReport(
            session.info,
            session.marker,
            history[-1] if history else None,
            len(history),
            refusal,
            adoption(project, session, rows),
        )


def live_status(
    project: Project,
    environment: str,
    write: bool = False,
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
    forget: bool = False,
) -> LiveReport:
    """The database's history compared with status.json; with `write`, status.json is
    rewritten from the database. What only status.json records is forgotten only when a
    person says so at the question that names it, or `forget` is given; else Refused."""
    from sqlstage.errors import ChecksumChanged, StatusFileError
    from sqlstage.report import live_report

    with connected(project, environment, ask, events, changes=write) as session:
        history = session.applied()
        try:
            only = [row.migration for row in project.only_in_file(session.environment.key, history)]
        except StatusFileError:
            only = []  # a damaged file: --write rebuilds what it still tells
        if write and only and not forget:
            _confirm_forget(session.environment, only, ask)
        report = live_report(project, session, write, history)
        report = replace(report, adoption=adoption(project, session, history))
        if write:  # the file is rebuilt from the database: its schema's fingerprint too
            from sqlstage.drift.check import live_fingerprint

            fingerprint = live_fingerprint(project, session)
            written = project.record_drift(session.environment.key, fingerprint=fingerprint)
            report = replace(report, written=report.written or written)
        try:
            refuse_edited(
                session.environment.key,
                project.catalog,
                list(report.history),
                session.history.applied_sql,
            )
        except ChecksumChanged as error:
            return replace(report, edited=error)
        return report


def _confirm_forget(env: Environment, only: Sequence[str], ask: Ask) -> None:
    what = (
        f"status.json records {', '.join(only)} as applied to {env.key}, but its database's "
        "history does not; rewriting it from the database forgets them"
    )
    keep = f"`sqlstage baseline {env.key}` records them in the database instead"
    if isinstance(ask, Unattended):  # a script: no question to put, so it must say
        raise Refused(f"{what}; nothing was written", f"{keep}; or pass forget=True")
    if not ask.yes_no(f"{what} ({keep}).\nForget them?"):
        raise Refused("not confirmed: status.json was not changed", keep)


def schema(
    project: Project,
    environment: str,
    ask: Ask = UNATTENDED,
    events: Events = QUIET,
    owners: bool = True,
    grants: bool = True,
) -> Snapshot:
    """The environment's schema as its catalogs describe it (sqlstage's tables left out;
    owners and grants unless switched off, as pg_dump --no-owner --no-privileges)."""
    from sqlstage.schema import snapshot

    with connected(project, environment, ask, events) as session:
        return snapshot(session.driver, owners=owners, grants=grants)


def verify(
    project: Project,
    start: str | None = None,
    data: Path | None = None,
    keep: bool = False,
    environment: str | None = None,
    events: VerifyEvents | None = None,
    ask: Ask = UNATTENDED,
    strict: bool = False,
) -> VerifyReport:
    """`Project.verify` behind the same door: a scratch database on a protected
    environment's server needs a person there (or allow_non_interactive), as changing it
    would."""
    env = project.config.environment(environment or project.verify_base())
    refuse_unattended(env, ask, yes=env.allow_non_interactive)
    return project.verify(start, data, keep, environment, events, ask.secret, strict)


# -- drift ------------------------------------------------------------------------------------
def drift(
    project: Project, environment: str, ask: Ask = UNATTENDED, events: Events = QUIET
) -> DriftReport:
    """ENV's live schema against the schema its own history says it has (the SQL its
    history rows recorded, replayed on a scratch database); the verdict and the live
    schema's fingerprint are recorded in status.json. Raises CheckIncomplete (exit 5) when
    no verdict can be reached: another run holds the database, the replay failed."""
    from sqlstage.drift.check import check

    project.preflight(writes=False)
    with connected(project, environment, ask, events) as session:
        report = check(project, session)
    project.record_drift(environment, report.fingerprint, report.verdict())
    return report


def diff(
    project: Project, left: str, right: str, ask: Ask = UNATTENDED, events: Events = QUIET
) -> EnvironmentsDiff:
    """Two live environments compared: differences explained by migrations one has and the
    other lacks, and unexplained ones (drift in one of them)."""
    from sqlstage.drift.check import read_live
    from sqlstage.drift.compare import compare_environments

    if left == right:
        raise ConfigError(f"diff {left} {left}: name two different environments")
    project.preflight(writes=False)
    with (
        connected(project, left, ask, events) as one,
        connected(project, right, ask, events) as other,
    ):
        if one.driver.dialect != other.driver.dialect:
            raise ConfigError(
                f"{left} is {one.info.product} and {right} is {other.info.product}: their "
                "schemas cannot be compared"
            )
        states = (read_live(one), read_live(other))
        return compare_environments(project, (one, other), states)
