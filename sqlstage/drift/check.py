"""One environment's drift: its live schema against the schema its own history says it has.

    live      = snapshot of the environment's database       (under the run lock, try mode)
    expected  = replay of the SQL its history rows recorded   (sqlstage.drift.replay)
    drift     = diff(expected, live), both seen through [drift] (ignore patterns, roles)

Migrations the environment has not applied are pending, not drift: only what its history
recorded is replayed. The lock is taken without waiting, so a deploy in flight makes the
check `CheckIncomplete` (busy), never a verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlstage.config import Config, resolve_url
from sqlstage.drift.fixes import default_only, suggestion
from sqlstage.drift.replay import Replayed, recorded_migrations, replay
from sqlstage.errors import CheckIncomplete, Locked, Refused
from sqlstage.history import AppliedMigration
from sqlstage.project import Project
from sqlstage.runner import current_user
from sqlstage.schema import Difference, Snapshot, diff, snapshot, snapshot_document
from sqlstage.session import Session
from sqlstage.status_file import DriftVerdict, objects_summary, utc_stamp
from sqlstage.urls import DatabaseUrl


@dataclass(frozen=True)
class Drifted:
    """One difference, with its short label (`column users.plan default`) and the statement
    that would undo it, when there is one obvious statement (never run)."""

    difference: Difference
    label: str
    fix: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {**self.difference.to_dict(), "object": self.label, "fix": self.fix}


@dataclass(frozen=True)
class DriftReport:
    environment: str
    checked_at: datetime
    differences: tuple[Drifted, ...]
    #: migrations replayed: what the history recorded as applied
    replayed: int
    #: migration files the environment has not applied (pending, not drift)
    pending: tuple[str, ...]
    #: the live schema's fingerprint (comparable across environments)
    fingerprint: str
    #: where the expected schema was built (masked)
    scratch: str

    @property
    def drifted(self) -> bool:
        return bool(self.differences)

    def verdict(self) -> DriftVerdict:
        stamp = utc_stamp(self.checked_at)
        labels = tuple(d.label for d in self.differences)
        return DriftVerdict(stamp, not self.drifted, None if not labels else stamp, labels)

    def summary(self, limit: int = 5) -> str:
        """`2 objects: index posts_title_idx, column users.plan default`"""
        return objects_summary([d.label for d in self.differences], limit)

    def to_dict(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "drifted": self.drifted,
            "checkedAt": utc_stamp(self.checked_at),
            "replayed": self.replayed,
            "pending": list(self.pending),
            "fingerprint": self.fingerprint,
            "differences": [d.to_dict() for d in self.differences],
        }


@dataclass(frozen=True)
class LiveState:
    """What one look at the environment under its lock gave: its history and its schema."""

    history: tuple[AppliedMigration, ...]
    snapshot: Snapshot
    user: str | None


def read_live(session: Session, locked: bool = False) -> LiveState:
    """The history and the live schema, read together under the run lock: taken without
    waiting (`locked`: the caller holds it already), so a deploy in flight is reported as
    busy (exit 5), not as drift."""
    with _lock(session, locked):
        history = tuple(row for row in session.applied())
        live = snapshot(session.driver)
    return LiveState(history, live, session.info.user)


@contextmanager
def _lock(session: Session, held: bool) -> Iterator[None]:
    if held:
        yield
        return
    with ExitStack() as stack:
        try:
            stack.enter_context(session.locked(0))
        except Locked as busy:
            raise CheckIncomplete(
                f"{session.environment.key} is busy: {busy.message.split('; waited')[0]}; "
                "no drift verdict while a run changes it",
                "check again when that run is done",
            ) from busy
        yield


def expected(project: Project, session: Session, state: LiveState) -> Replayed:
    """Replay the environment's history on a scratch database next to its own server (or
    where `verify_url` says)."""
    env = session.environment
    rows = [row for row in state.history if row.is_applied or row.stopped_midway]
    sqls = session.history.applied_sqls()
    migrations = recorded_migrations(env.key, rows, sqls, project.catalog)
    return replay(env.key, scratch_base(project.config, session), migrations, _app(env.key))


def scratch_base(config: Config, session: Session) -> DatabaseUrl:
    """The environment's own server, unless verify_url names another."""
    env = session.environment
    spec = env.verify_url or config.verify_url
    if spec is None:
        return session.url
    return resolve_url(config, replace(env, url=spec))


def _app(key: str) -> str:
    return f"sqlstage drift {key} {current_user()}"


def compare(
    project: Project, key: str, state: LiveState, replayed: Replayed
) -> tuple[Snapshot, Snapshot]:
    """Both sides as environment `key` is compared: [drift] ignore and roles, and the
    scratch connection's user taken for the live one (it made every object there)."""
    settings = project.config.drift
    owner = (
        {replayed.user: state.user}
        if replayed.user and state.user and replayed.user != state.user
        else {}
    )
    want = settings.normalise(key, replayed.snapshot, owner)
    have = settings.normalise(key, state.snapshot)
    return want, have


def check(project: Project, session: Session, locked: bool = False) -> DriftReport:
    """The drift of the environment `session` is connected to."""
    state = read_live(session, locked)
    replayed = expected(project, session, state)
    want, have = compare(project, session.environment.key, state, replayed)
    found = diff(want, have)
    applied = {row.migration for row in state.history if row.is_applied}
    pending = tuple(m.name for m in project.catalog.migrations if m.name not in applied)
    return DriftReport(
        session.environment.key,
        datetime.now(UTC),
        tuple(describe(d, have.dialect) for d in found),
        replayed.migrations,
        pending,
        fingerprint_of(have),
        replayed.database,
    )


def describe(difference: Difference, dialect: str) -> Drifted:
    label = f"{difference.kind} {difference.name}"
    if difference.change == "order":
        label = f"column order of {difference.name}"
    elif (
        difference.kind == "column"
        and difference.change == "changed"
        and default_only(difference.expected or "", difference.live or "")
    ):
        label += " default"
    return Drifted(difference, label, suggestion(difference, dialect))


def fingerprint_of(snap: Snapshot) -> str:
    """A hash of the normalised schema: equal in two environments exactly when their
    schemas (as [drift] compares them) are equal."""
    return _digest(snap.to_dict())


def _digest(document: dict[str, object]) -> str:
    text = json.dumps(document, sort_keys=False, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def live_fingerprint(project: Project, session: Session) -> str:
    """The fingerprint of the environment's schema now (after a run)."""
    key, settings = session.environment.key, project.config.drift
    if settings.changes_nothing(key):  # the snapshot as read: no object need be made
        return _digest(snapshot_document(session.driver))
    return fingerprint_of(settings.normalise(key, snapshot(session.driver)))


def refusal(report: DriftReport) -> Refused:
    """What `apply` / `rollback` of a checked environment says when it drifted."""
    env = report.environment
    return Refused(
        f"{env} has drifted from what its history says ({report.summary()}); nothing was changed",
        f"see `sqlstage drift {env}`; fix it by hand or in a migration, or go on with "
        '--allow-drift --reason "why"',
        details=render_lines(report),
    )


def render_lines(report: DriftReport) -> str:
    """The differences as `drift` prints them, with the suggested fixes."""
    lines = []
    for item in report.differences:
        text = item.difference.text.splitlines()
        lines.append(f"  {text[0]}")
        lines += [f"  {line}" for line in text[1:]]
        if item.fix:
            lines.append(f"      fix (not run): {item.fix}")
    return "\n".join(lines)
