"""Applied migrations whose file was edited afterwards: found, shown as a diff, refused.

The database's history row keeps the checksum and the exact SQL that ran, so a live check can
show what changed; status.json keeps only the checksum, so the offline check can only say
that it changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlstage.catalog import Catalog
from sqlstage.errors import ChecksumChanged
from sqlstage.history import AppliedMigration
from sqlstage.migration import Migration
from sqlstage.status_file import StatusFile


def edited(
    catalog: Catalog, history: Iterable[AppliedMigration]
) -> list[tuple[Migration, AppliedMigration]]:
    """Applied rows whose file's forward SQL no longer has the recorded checksum."""
    files = catalog.by_name()
    return [
        (migration, row)
        for row in history
        if row.status == "applied"
        and (migration := files.get(row.migration)) is not None
        and not migration.matches(row.checksum)
    ]


def refuse_edited(
    environment: str,
    catalog: Catalog,
    history: Sequence[AppliedMigration],
    applied_sql: Callable[[str], str | None],
) -> None:
    """Raise ChecksumChanged (exit 2) with a unified diff when an applied file was edited."""
    found = edited(catalog, history)
    if not found:
        return
    migration, row = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    raise ChecksumChanged(
        f"{migration.path}: edited after it was applied to {environment} on "
        f"{row.applied_at:%Y-%m-%d}{more}; the database ran different SQL",
        f"revert the file (the diff shows what changed), or accept the edit with "
        f"`sqlstage repair {environment} --accept {migration.name}`",
        details=diff(migration, applied_sql(migration.name), f"as applied to {environment}"),
    )


def diff(migration: Migration, applied: str | None, label: str) -> str:
    """A unified diff from the SQL that ran to the file's forward section."""
    if applied is None:
        return f"(the SQL {label} was not kept; only its checksum differs)"
    import difflib  # only for an edited file

    lines = difflib.unified_diff(
        applied.splitlines(keepends=True),
        migration.forward.splitlines(keepends=True),
        fromfile=f"{migration.name} {label}",
        tofile=str(migration.path),
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines).rstrip("\n")


def refuse_edited_offline(status: StatusFile, catalog: Catalog) -> None:
    """The offline check against status.json's checksums (no SQL to diff against)."""
    files = catalog.by_name()
    for key, state in status.environments.items():
        for row in state.applied:
            migration = files.get(row.migration)
            if migration and row.checksum and not migration.matches(row.checksum):
                raise ChecksumChanged(
                    f"{migration.path}: edited after it was applied to {key} "
                    "(its checksum differs from status.json)",
                    f"revert the file; `sqlstage status --live {key}` shows the diff, and "
                    f"`sqlstage repair {key} --accept {migration.name}` accepts the edit",
                )


@dataclass(frozen=True)
class AppliedEdit:
    """A migration status.json records as applied (with its checksum) whose file now has
    another checksum (`file` set) or is gone (`file` None)."""

    environment: str
    migration: str
    recorded: str
    file: Path | None = None
    actual: str | None = None


def applied_edits(status: StatusFile, catalog: Catalog) -> list[AppliedEdit]:
    """Every applied migration whose file was edited or removed since, from status.json's
    checksums (entries without one, the seed's shape, cannot be checked). A file renamed
    with the same number and SQL is the same migration, not a removal."""
    files = catalog.by_name()
    by_number = {
        (m.number, checksum)
        for m in catalog.migrations
        for checksum in (m.checksum, m.legacy_checksum)
        if checksum
    }
    found = []
    for key, state in status.environments.items():
        for row in state.applied:
            migration = files.get(row.migration)
            if not row.checksum:
                continue
            if migration is None:
                number = row.migration.split("_", 1)[0]
                if not (number.isdigit() and (int(number), row.checksum) in by_number):
                    found.append(AppliedEdit(key, row.migration, row.checksum))
            elif not migration.matches(row.checksum):
                found.append(
                    AppliedEdit(
                        key, row.migration, row.checksum, migration.path, migration.checksum
                    )
                )
    return found


def refuse_applied_edits(found: Sequence[AppliedEdit], source: str) -> None:
    """ChecksumChanged (exit 2) naming the first edit and how many more; `source` says
    which status.json recorded them (`status.json at origin/main`)."""
    if not found:
        return
    first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    where = f"{first.file}: edited" if first.file else f"{first.migration}: deleted"
    raise ChecksumChanged(
        f"{where} after it was applied to {first.environment} (checksum {first.recorded[:12]} "
        f"in {source}){more}",
        "an applied migration is never changed: revert it and put the change in a new "
        f"migration (`sqlstage new NAME`); a deliberate edit needs "
        f"`sqlstage repair {first.environment} {first.migration} --accept` on each environment",
    )
