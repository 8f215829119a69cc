"""Rules that keep production from being hit by accident.

Each rule is a function that returns the refusal it makes (a `Refused`, exit 3) or None; the
plan carries them and `commands` refuses a plan that has any. They decide; the CLI only asks
the questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING

from sqlstage.catalog import Catalog
from sqlstage.config import Environment
from sqlstage.errors import Refused
from sqlstage.history import Marker, Origin
from sqlstage.migration import Migration
from sqlstage.status_file import StatusFile

if TYPE_CHECKING:
    from sqlstage.lint import Finding

OVERRIDE = 'or, if you must, pass --skip-rehearsal --reason "..."'


class Identity(Enum):
    """What the database's marker says about the environment we were asked for."""

    MATCHES = "matches"
    #: a new database: it is marked on the first apply
    UNMARKED_EMPTY = "unmarked-empty"
    #: migrations applied but no marker (adopted from elsewhere): ask before marking it
    UNMARKED_ADOPTED = "unmarked-adopted"


def identity(marker: Marker, applied_count: int) -> Identity:
    """The session has already refused a marker naming another environment."""
    if marker.present:
        return Identity.MATCHES
    return Identity.UNMARKED_ADOPTED if applied_count else Identity.UNMARKED_EMPTY


def unattended_refusal(env: Environment, attended: bool, yes: bool) -> Refused | None:
    """A protected environment needs a person at a terminal, unless the committed config says
    otherwise: no flag alone lets an unattended process (or an AI agent) reach production.
    Checked before connecting."""
    if not env.protected or attended:
        return None
    if not env.allow_non_interactive:
        return Refused(
            f"{env.key} is protected and this run has no terminal to confirm on",
            "a person runs it in a terminal; for CI deploys set allow_non_interactive = true "
            f"in [environments.{env.key}] of sqlstage.toml and pass --yes",
        )
    if not yes:
        return Refused(f"{env.key} is protected: an unattended run needs --yes", "pass --yes")
    return None


def prompt_refusal(env: Environment, attended: bool) -> Refused | None:
    """`url = "prompt"` is typed by a person: never read from a pipe."""
    if env.url != "prompt" or attended:
        return None
    return Refused(
        f"{env.key}'s URL is typed at a prompt, and this run has no terminal",
        f'run it in a terminal; an unattended deploy takes url = "env:VAR" in '
        f"[environments.{env.key}]",
    )


def rehearsal_refusal(
    environment: Environment,
    migrations: Sequence[Migration],
    status: StatusFile,
    catalog: Catalog,
) -> Refused | None:
    """Refuse a migration that the environment's `requires` has not run, as recorded in
    status.json with the same checksum: nothing reaches production that did not pass dev.
    A record made without running the SQL (baseline, repair) is no rehearsal."""
    upstream_key = environment.requires
    if upstream_key is None or not migrations:
        return None
    upstream = status.environments.get(upstream_key)
    if upstream is not None and not upstream.complete:
        return Refused(
            f"status.json does not record checksums for '{upstream_key}', so the rehearsal "
            f"of {migrations[0].name} cannot be checked",
            f"run `sqlstage status --live {upstream_key} --write` and commit it, {OVERRIDE}",
        )
    recorded = {row.migration: row for row in upstream.applied} if upstream else {}
    not_run = [
        (m, recorded[m.name].origin)
        for m in migrations
        if m.name in recorded and recorded[m.name].origin is not Origin.RAN
    ]
    if not_run:
        names = ", ".join(f"{m.name} ({origin.words})" for m, origin in not_run)
        return Refused(
            f"not rehearsed in '{upstream_key}': {names}; its SQL never ran there",
            f"run it in a fresh '{upstream_key}' database with `sqlstage apply "
            f"{upstream_key}`, {OVERRIDE}",
        )
    for migration in migrations:
        if migration.name not in recorded:
            return Refused(
                f"{migration.name} has not been applied to '{upstream_key}', which must come "
                f"before '{environment.key}'",
                f"rehearse it first: `sqlstage apply {upstream_key} {migration.name}` "
                f"and commit status.json, {OVERRIDE}",
            )
        if not migration.matches(recorded[migration.name].checksum):
            return Refused(
                f"{migration.file_name} changed after it was applied to '{upstream_key}' "
                f"(checksum differs), so what '{environment.key}' would run was never rehearsed",
                f"apply the same file to '{upstream_key}' first, {OVERRIDE}",
            )
    return None


def lint_refusal(
    env: Environment, findings: Sequence[Finding], allowed: Sequence[str], command: str
) -> Refused | None:
    """Error findings not waived in the file nor allowed by --allow-lint, in every environment:
    dev meets the gate production applies, so the waiver is written before dev records a
    checksum (and a waiver line is no part of it). Lists them all, with the `command` line
    that allows them all for this run."""
    blocking = [f for f in findings if f.blocking and f.rule not in allowed]
    if not blocking:
        return None
    rules = list(dict.fromkeys(f.rule for f in blocking))
    flags = " ".join(f"--allow-lint {rule}" for rule in rules)
    return Refused(
        f"{env.key}: the plan has {len(blocking)} lint error"
        f"{'s' if len(blocking) != 1 else ''}, the gate every environment applies: "
        + ", ".join(f"{f.rule} at {f.path.name}:{f.line}" for f in blocking),
        "write the safe form shown, or waive each on the line above its "
        "statement with '-- sqlstage:allow RULE <why it is safe>' (directive lines are not "
        f"part of the checksum), or allow them for this run only: {command} {flags}",
    )


def lint_note(findings: Sequence[Finding], allowed: Sequence[str]) -> str | None:
    """The log's and history's note naming the errors --allow-lint let through."""
    used = [f for f in findings if f.blocking and f.rule in allowed]
    if not used:
        return None
    return "lint allowed (--allow-lint): " + ", ".join(
        f"{f.rule} at {f.path.name}:{f.line}" for f in used
    )


def adoption_refusal(
    env: Environment, only_in_file: Sequence[str], tables: Sequence[str]
) -> Refused | None:
    """A database sqlstage has no history of, though it is not new: status.json records
    migrations its history does not (`only_in_file`), or it has `tables` but no history at
    all (the caller looks only then). Running the migrations would fail on what exists, or
    run them twice; `baseline` records what the database already has instead."""
    key = env.key
    if only_in_file:
        names = _names(only_in_file)
        return Refused(
            f"status.json records {names} as applied to {key}, but its database's history "
            f"does not: it was built without sqlstage (psql -f?) or recreated",
            f"if the database has them, record them without running anything: `sqlstage "
            f"baseline {key}` (status.json's dates are kept); if it was recreated empty, "
            f"`sqlstage status --live {key} --write` forgets them (it asks first)",
        )
    if tables:
        shown = ", ".join(tables[:3]) + (", ..." if len(tables) > 3 else "")
        return Refused(
            f"{key}'s database has tables ({shown}) but no sqlstage history: it was built "
            "without sqlstage",
            f"record the migrations it already has without running them: `sqlstage baseline "
            f"{key} MIGRATION`; if those tables are not from these migrations, pass "
            "--not-from-migrations",
        )
    return None


def _names(names: Sequence[str]) -> str:
    if len(names) <= 3:
        return ", ".join(names)
    return f"{len(names)} migrations ({names[0]} .. {names[-1]})"
