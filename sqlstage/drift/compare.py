"""Two live environments compared (`sqlstage diff dev pro`), each difference sorted into
explained (a migration one has applied and the other has not) or unexplained (drift in one
of them, or both).

Each side's expected schema is replayed from its own history (once, when both histories
recorded the same SQL). A live difference that the two expected schemas show in the same way
is explained by the migrations; any other is unexplained, and is put down to the side whose
live schema differs from its own expected one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlstage.drift.check import Drifted, LiveState, compare, describe, expected
from sqlstage.history import AppliedMigration
from sqlstage.project import Project
from sqlstage.schema import Difference, diff
from sqlstage.session import Session


@dataclass(frozen=True)
class Unexplained:
    drifted: Drifted
    #: the environments whose live schema differs from their history here
    drift_in: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {**self.drifted.to_dict(), "driftIn": list(self.drift_in)}


@dataclass(frozen=True)
class EnvironmentsDiff:
    """`expected` is the left environment, `live` the right one in every difference."""

    left: str
    right: str
    #: migrations applied to one and not the other
    only_left: tuple[str, ...]
    only_right: tuple[str, ...]
    explained: tuple[Drifted, ...]
    unexplained: tuple[Unexplained, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "environments": [self.left, self.right],
            "onlyIn": {self.left: list(self.only_left), self.right: list(self.only_right)},
            "explained": [d.to_dict() for d in self.explained],
            "unexplained": [u.to_dict() for u in self.unexplained],
        }


def _recorded(history: tuple[AppliedMigration, ...]) -> list[tuple[str, str]]:
    return [(row.migration, row.checksum) for row in history if row.is_applied]


def compare_environments(
    project: Project,
    sessions: tuple[Session, Session],
    states: tuple[LiveState, LiveState],
) -> EnvironmentsDiff:
    left, right = sessions
    keys = (left.environment.key, right.environment.key)
    replay_left = expected(project, left, states[0])
    same = _recorded(states[0].history) == _recorded(states[1].history) and (
        left.history.applied_sqls() == right.history.applied_sqls()
    )
    replay_right = replay_left if same else expected(project, right, states[1])
    want_left, have_left = compare(project, keys[0], states[0], replay_left)
    want_right, have_right = compare(project, keys[1], states[1], replay_right)
    explained_by = {_key(d) for d in diff(want_left, want_right)}
    drift_left = {(d.kind, d.name) for d in diff(want_left, have_left)}
    drift_right = {(d.kind, d.name) for d in diff(want_right, have_right)}
    explained, unexplained = [], []
    dialect = have_left.dialect
    for found in diff(have_left, have_right):
        if _key(found) in explained_by:
            explained.append(describe(found, dialect))
            continue
        where = tuple(
            key
            for key, drifted in zip(keys, (drift_left, drift_right), strict=True)
            if (found.kind, found.name) in drifted
        )
        unexplained.append(Unexplained(describe(found, dialect), where))
    names = [{m for m, _ in _recorded(state.history)} for state in states]
    order = [m.name for m in project.catalog.migrations]
    extra = sorted((names[0] | names[1]) - set(order))
    return EnvironmentsDiff(
        keys[0],
        keys[1],
        tuple(m for m in [*order, *extra] if m in names[0] - names[1]),
        tuple(m for m in [*order, *extra] if m in names[1] - names[0]),
        tuple(explained),
        tuple(unexplained),
    )


def _key(found: Difference) -> tuple[str, str, str, str | None, str | None]:
    return found.change, found.kind, found.name, found.expected, found.live
