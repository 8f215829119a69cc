"""How the library reaches a person and tells what happens: `Ask` (answers) and `Events`
(progress), and the confirmations a plan needs, asked in one place for every command.

A caller that passes nothing gets `UNATTENDED` (no one to ask: every question is a refusal)
and `QUIET`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sqlstage.config import Environment
from sqlstage.errors import Refused
from sqlstage.plan import Confirmation, Direction, NoEvents, Plan, StepEvents
from sqlstage.session import Session


class Ask(Protocol):
    """Answers from a person. `attended` says whether one is there to answer at all."""

    @property
    def attended(self) -> bool: ...

    def yes_no(self, question: str) -> bool: ...

    def typed(self, question: str) -> str: ...

    def secret(self, question: str) -> str: ...


class Unattended:
    """No one to ask (a script, CI): every question is a refusal."""

    attended = False

    def yes_no(self, question: str) -> bool:
        raise Refused(f"no one to answer '{question}': this run is unattended", "pass yes=True")

    def typed(self, question: str) -> str:
        raise Refused(f"no one to answer '{question}': this run is unattended")

    def secret(self, question: str) -> str:
        raise Refused(f"no one to answer '{question}': this run is unattended")


UNATTENDED = Unattended()


class Events(StepEvents, Protocol):
    def connected(self, session: Session) -> None: ...

    def warning(self, text: str) -> None: ...

    def waiting(self, holder: str) -> None: ...

    def planned(self, plan: Plan) -> None: ...

    def backed_up(self, path: Path) -> None: ...


class Quiet(NoEvents):
    def connected(self, session: Session) -> None:
        pass

    def warning(self, text: str) -> None:
        pass

    def waiting(self, holder: str) -> None:
        pass

    def planned(self, plan: Plan) -> None:
        pass

    def backed_up(self, path: Path) -> None:
        pass


QUIET = Quiet()


def confirm(plan: Plan, ask: Ask) -> None:
    """Ask what the plan says must be asked; a 'no' is Refused (exit 3), nothing changed."""
    env, direction = plan.environment, plan.direction
    count = len(plan.steps) + len(plan.renames)
    what = f"{count} migration{'s' if count != 1 else ''}"
    nothing = f"nothing was {direction.past} {direction.prep} {env.key}"
    if plan.adopt:
        if not ask.attended:
            raise Refused(
                adoption_question(plan),
                f"check the URL of '{env.key}', then pass --adopt to mark it as '{env.key}'",
            )
        what = adoption_question(plan)
        question = f"{what[0].upper()}{what[1:]}.\nIs it '{env.key}' ({env.name})? Mark it as such"
        if not ask.yes_no(question):
            raise Refused(f"not confirmed: {nothing}")
    if plan.confirmation is Confirmation.NONE:
        return
    if plan.confirmation is Confirmation.TYPE_KEY:
        if not plan.backup and not ask.yes_no(
            f"{env.name} is protected: take a backup before {direction.gerund} "
            '(or set backup = "pg_dump" for it in sqlstage.toml, or pass --backup). '
            "Backup taken?"
        ):
            raise Refused(
                f"no backup confirmed: {nothing}", "take a backup first, or pass --backup"
            )
        verb = "roll back" if direction is Direction.DOWN else "apply"
        answer = ask.typed(f"Type '{env.key}' to {verb} {what} {direction.prep} {env.name}")
        if answer.strip() != env.key:
            raise Refused(f"not confirmed: {nothing}", f"type '{env.key}' exactly to go on")
        return
    verb = "Roll back" if direction is Direction.DOWN else "Apply"
    if not ask.yes_no(f"{verb} {what} {direction.prep} {env.label}?"):
        raise Refused(f"not confirmed: {nothing}", "answer y, or pass --yes")


def adoption_question(plan: Plan) -> str:
    applied = len([row for row in plan.history if row.is_applied])
    return (
        f"this database has {applied} applied migration{'s' if applied != 1 else ''} but no "
        "sqlstage environment marker, so nothing tells which environment it is"
    )


def confirm_action(env: Environment, what: str, yes: bool, ask: Ask) -> None:
    """Type the key for a protected environment, else [y/N] or yes."""
    if env.protected:
        if env.allow_non_interactive and yes:
            return
        if ask.typed(f"Type '{env.key}' to {what}").strip() != env.key:
            raise Refused(f"not confirmed: nothing was changed on {env.key}")
        return
    if yes:
        return
    if not ask.yes_no(f"{what[0].upper()}{what[1:]}?"):
        raise Refused(f"not confirmed: nothing was changed on {env.key}", "answer y, or pass --yes")
