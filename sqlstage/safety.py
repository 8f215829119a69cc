"""Rules that keep production from being hit by accident.

Each function either returns quietly or raises `Refused` (exit 3) naming the environment and
the way out. They decide; the CLI asks the questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from sqlstage.catalog import Catalog
from sqlstage.config import Environment
from sqlstage.errors import Refused
from sqlstage.migration import Migration
from sqlstage.status_file import StatusFile


class Identity(Enum):
    """What the database's marker says about the environment we were asked for."""

    MATCHES = "matches"
    #: a new database: it is marked on the first apply
    UNMARKED_EMPTY = "unmarked-empty"
    #: migrations applied but no marker (adopted from elsewhere): ask before marking it
    UNMARKED_ADOPTED = "unmarked-adopted"


def check_identity(environment: Environment, marker: str | None, applied_count: int) -> Identity:
    """Refuse when the database is marked as another environment.

    >>> check_identity(Environment("dev", "Development", "env:X"), "pro", 3)
    Traceback (most recent call last):
    ...
    sqlstage.errors.Refused: this database is marked 'pro' but you asked for 'dev'; ...
    """
    if marker is None:
        return Identity.UNMARKED_ADOPTED if applied_count else Identity.UNMARKED_EMPTY
    if marker != environment.key:
        raise Refused(
            f"this database is marked '{marker}' but you asked for '{environment.key}'",
            f"check the URL of '{environment.key}'; nothing was changed",
        )
    return Identity.MATCHES


def check_rehearsal(
    environment: Environment,
    migrations: Sequence[Migration],
    status: StatusFile,
    catalog: Catalog,
) -> None:
    """Refuse a migration that the environment's `requires` has not applied, as recorded in
    status.json with the same checksum: nothing reaches production that did not pass dev."""
    upstream_key = environment.requires
    if upstream_key is None or not migrations:
        return
    upstream = status.environments.get(upstream_key)
    override = 'or, if you must, pass --skip-rehearsal --reason "..."'
    if upstream is not None and not upstream.complete:
        raise Refused(
            f"status.json does not record checksums for '{upstream_key}', so the rehearsal "
            f"of {migrations[0].name} cannot be checked",
            f"run `sqlstage status --live {upstream_key} --write` and commit it, {override}",
        )
    recorded = {row.migration: row.checksum for row in upstream.applied} if upstream else {}
    for migration in migrations:
        if migration.name not in recorded:
            raise Refused(
                f"{migration.name} has not been applied to '{upstream_key}', which must come "
                f"before '{environment.key}'",
                f"rehearse it first: `sqlstage apply {upstream_key} {migration.name}` "
                f"and commit status.json, {override}",
            )
        if recorded[migration.name] != migration.checksum:
            raise Refused(
                f"{migration.file_name} changed after it was applied to '{upstream_key}' "
                f"(checksum differs), so what '{environment.key}' would run was never rehearsed",
                f"apply the same file to '{upstream_key}' first, {override}",
            )
