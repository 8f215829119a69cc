"""The database's own records: the history table and the identity marker.

Written once over the driver's dialect facts and verbs, so a new database gets them by
filling in `Dialect`; nothing here knows PostgreSQL from SQLite. A history row is a fact with
typed fields (`Status`, `Origin`, `out_of_order`, `statements_done`), never a phrase in the
note that someone parses back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlstage import __version__
from sqlstage.drivers.base import Driver, StatementError
from sqlstage.migration import Migration

HISTORY_TABLE = "sqlstage_history"
#: one row naming the environment this database belongs to, so `dev` never hits production
MARKER_TABLE = "sqlstage_environment"


class Status(StrEnum):
    """Where a migration stands in one database."""

    APPLIED = "applied"
    #: stopped midway outside a transaction: blocked until `sqlstage repair`
    FAILED = "failed"
    #: running statement by statement outside a transaction; after a crash it reads as
    #: failed, with `statements_done` telling how far it got
    RUNNING = "running"


class Origin(StrEnum):
    """How a migration came to be recorded: only RAN counts as a rehearsal."""

    RAN = "ran"
    MARKED = "marked"  # repair --mark-applied
    BASELINE = "baseline"
    ACCEPTED = "accepted"  # repair --accept: the file changed after it ran

    @property
    def words(self) -> str:
        return {
            Origin.RAN: "run by sqlstage",
            Origin.MARKED: "recorded by `repair --mark-applied`, not run by sqlstage",
            Origin.BASELINE: "recorded by `baseline`, not run by sqlstage",
            Origin.ACCEPTED: "recorded by `repair --accept`: the file was edited after it ran",
        }[self]


@dataclass(frozen=True)
class AppliedMigration:
    """One row of the history table: the database's own record of what it has run."""

    migration: str
    checksum: str
    applied_at: datetime
    applied_by: str
    duration_ms: int
    tool_version: str
    status: Status = Status.APPLIED
    note: str | None = None
    origin: Origin = Origin.RAN
    out_of_order: bool = False
    #: statements committed so far (migrations that run outside a transaction)
    statements_done: int | None = None
    #: applied despite drift (`--allow-drift --reason`): the reason and what differed
    allowed_drift: str | None = None

    @property
    def is_applied(self) -> bool:
        return self.status == Status.APPLIED

    @property
    def stopped_midway(self) -> bool:
        """Failed, or still `running` after a crash (the run lock excludes a live one)."""
        return self.status != Status.APPLIED


#: column -> (type, default for rows of an older table)
_COLUMNS: dict[str, tuple[str, str | None]] = {
    "migration": ("KEY", None),
    "checksum": ("TEXT NOT NULL", None),
    "applied_at": ("TIME NOT NULL", None),
    "applied_by": ("TEXT NOT NULL", None),
    "duration_ms": ("INTEGER NOT NULL", None),
    "tool_version": ("TEXT NOT NULL", None),
    "status": ("TEXT NOT NULL DEFAULT 'applied'", None),
    "note": ("LONG", None),
    "applied_sql": ("LONG", None),
    "origin": ("TEXT NOT NULL DEFAULT 'ran'", "'ran'"),
    "out_of_order": ("INTEGER NOT NULL DEFAULT 0", "0"),
    "statements_done": ("INTEGER", None),
    "allowed_drift": ("LONG", None),
}
#: the columns read back into AppliedMigration, in its field order
_READ = (
    "migration",
    "checksum",
    "applied_at",
    "applied_by",
    "duration_ms",
    "tool_version",
    "status",
    "note",
    "origin",
    "out_of_order",
    "statements_done",
    "allowed_drift",
)
_STATUSES = {status.value: status for status in Status}
_ORIGINS = {origin.value: origin for origin in Origin}
#: what older versions wrote in the note instead of a column (read once, when upgrading)
_LEGACY_ORIGINS = (
    ("baseline by ", Origin.BASELINE),
    ("marked applied by ", Origin.MARKED),
    ("edit accepted by ", Origin.ACCEPTED),
)


class History:
    """The history table of one database, through its driver.

    What it read is kept until it writes (the run lock keeps other runs from writing), so
    a run that changes nothing reads the table once: to plan, and again to sync status.json.
    """

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.table = driver.qualify(HISTORY_TABLE)
        self._columns: frozenset[str] | None = None
        self._exists = False  # known to exist (once it does, sqlstage never drops it)
        self._rows: tuple[AppliedMigration, ...] | None = None

    def _type(self, declared: str) -> str:
        return column_type(self.driver, declared)

    def exists(self) -> bool:
        if not self._exists:  # asked again until it does (another run may be creating it)
            # one round trip for both questions: a table that exists has columns
            columns = self.driver.columns(HISTORY_TABLE)
            if columns:
                self._columns = frozenset(columns)
                self._exists = True
        return self._exists

    def ensure(self) -> None:
        """Create the table, or bring one made by an older version up to date."""
        if not self.exists():
            self._rows = None
            columns = ",\n    ".join(f"{n} {self._type(t)}" for n, (t, _) in _COLUMNS.items())
            options = self.driver.facts.table_options
            try:
                self.driver.query(f"CREATE TABLE {self.table} (\n    {columns}\n){options}")
            except StatementError:
                if not self.exists():
                    raise
                # another session created it at the same moment (PostgreSQL reports that as
                # a unique violation in pg_type): it is there, which is all this asks
            self._columns = frozenset(_COLUMNS)
            return
        missing = [name for name in _COLUMNS if name not in self._existing()]
        if not missing:
            return
        self._rows = None
        with self.driver.transaction():
            for name in missing:
                declared = self._type(_COLUMNS[name][0])
                self.driver.query(f"ALTER TABLE {self.table} ADD COLUMN {name} {declared}")
            if "origin" in missing:
                mark = self.driver.facts.placeholder
                for phrase, origin in _LEGACY_ORIGINS:
                    self.driver.query(
                        f"UPDATE {self.table} SET origin = {mark} WHERE note LIKE {mark}",
                        [origin.value, f"%{phrase}%"],
                    )
            if "out_of_order" in missing:
                self.driver.query(
                    f"UPDATE {self.table} SET out_of_order = 1 "
                    "WHERE note LIKE '%applied out of order%'"
                )
        self._columns = frozenset(_COLUMNS)

    def _existing(self) -> frozenset[str]:
        if self._columns is None:
            self._columns = frozenset(self.driver.columns(HISTORY_TABLE))
        return self._columns

    def read(self) -> list[AppliedMigration]:
        """The history in the order it was applied; empty when there is no history table."""
        if self._rows is None:
            self._rows = tuple(self._read())
        return list(self._rows)

    def _read(self) -> list[AppliedMigration]:
        if not self.exists():
            return []
        have = self._existing()
        columns = ", ".join(
            name if name in have else f"{_COLUMNS[name][1] or 'NULL'} AS {name}" for name in _READ
        )
        rows = self.driver.query(
            f"SELECT {columns} FROM {self.table} ORDER BY applied_at, migration"
        )
        return [self._row(row) for row in rows]

    def _row(self, row: Sequence[Any]) -> AppliedMigration:
        # positional, in _READ's order (AppliedMigration's field order): a no-op apply
        # builds one per applied migration
        (migration, checksum, applied_at, applied_by, duration_ms, tool_version, status, note,
         origin, out_of_order, statements_done, allowed_drift) = row  # fmt: skip
        return AppliedMigration(
            migration,
            checksum,
            self.driver.from_db_time(applied_at),
            applied_by,
            int(duration_ms),
            tool_version,
            _STATUSES.get(status) or Status(status),  # Status() names an unknown one
            note,
            _ORIGINS.get(origin) or Origin(origin or Origin.RAN),
            bool(out_of_order),
            statements_done,
            allowed_drift,
        )

    def record(self, row: AppliedMigration, sql: str, *, with_migration: bool = False) -> None:
        """Insert a history row; inside a transaction it commits with the migration.
        `with_migration`: it is the `finish` of `Driver.run_transaction`, so where the
        dialect can (`Dialect.elapsed_ms`) the server writes the migration's duration."""
        self._rows = None
        values: list[Any] = [
            row.migration,
            row.checksum,
            self.driver.to_db_time(row.applied_at),
            row.applied_by,
            row.duration_ms,
            row.tool_version,
            row.status.value,
            row.note,
            sql,
            row.origin.value,
            int(row.out_of_order),
            row.statements_done,
            row.allowed_drift,
        ]
        names = (*_READ[:8], "applied_sql", *_READ[8:])
        marks = [self.driver.facts.placeholder] * len(names)
        elapsed = self.driver.facts.elapsed_ms
        if with_migration and elapsed is not None:
            duration = names.index("duration_ms")
            marks[duration] = elapsed
            del values[duration]
        self.driver.defer(
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join(marks)})", values
        )

    def forget(self, migration: str) -> None:
        self._rows = None
        mark = self.driver.facts.placeholder
        self.driver.defer(f"DELETE FROM {self.table} WHERE migration = {mark}", [migration])

    def update(self, row: AppliedMigration) -> None:
        """Rewrite a row's state (`repair`, progress of a statement-by-statement run)."""
        self._rows = None
        mark = self.driver.facts.placeholder
        self.driver.query(
            f"UPDATE {self.table} SET status = {mark}, checksum = {mark}, note = {mark}, "
            f"origin = {mark}, statements_done = {mark}, duration_ms = {mark} "
            f"WHERE migration = {mark}",
            [
                row.status.value,
                row.checksum,
                row.note,
                row.origin.value,
                row.statements_done,
                row.duration_ms,
                row.migration,
            ],
        )

    def rename(self, old: str, new: str) -> None:
        self._rows = None
        mark = self.driver.facts.placeholder
        self.driver.query(
            f"UPDATE {self.table} SET migration = {mark} WHERE migration = {mark}", [new, old]
        )

    def applied_sql(self, migration: str) -> str | None:
        """The forward SQL exactly as it was run, from the history row."""
        if not self.exists():
            return None
        rows = self.driver.query(
            f"SELECT applied_sql FROM {self.table} WHERE migration = "
            f"{self.driver.facts.placeholder}",
            [migration],
        )
        return rows[0][0] if rows else None

    def applied_sqls(self) -> dict[str, str | None]:
        """Every row's forward SQL as it was run, in one query (a drift check's replay)."""
        if not self.exists():
            return {}
        rows = self.driver.query(f"SELECT migration, applied_sql FROM {self.table}")
        return {str(name): sql for name, sql in rows}


def with_progress(row: AppliedMigration, done: int, duration_ms: int) -> AppliedMigration:
    return replace(row, statements_done=done, duration_ms=duration_ms)


@dataclass(frozen=True)
class Marker:
    """What the database says it is: an environment's key, and whether it is protected.

    `rows` is how many rows the marker table holds; anything but one is refused."""

    environment: str | None
    protected: bool = False
    rows: int = 1

    @property
    def present(self) -> bool:
        return self.environment is not None


NO_MARKER = Marker(None, rows=0)


def read_marker(driver: Driver) -> Marker:
    columns = driver.columns(MARKER_TABLE)  # none: no table (one round trip for both)
    if not columns:
        return NO_MARKER
    table = driver.qualify(MARKER_TABLE)
    protected = "protected" if "protected" in columns else "0"
    rows = driver.query(f"SELECT environment, {protected} FROM {table}")
    if len(rows) != 1:
        names = sorted({str(row[0]) for row in rows})
        return Marker(names[0] if names else None, any(bool(r[1]) for r in rows), len(rows))
    return Marker(str(rows[0][0]), bool(rows[0][1]), 1)


def column_type(driver: Driver, declared: str) -> str:
    """A declared type of `_COLUMNS` in the dialect's types (`KEY`, `TIME`, `TEXT`, `LONG`)."""
    dialect = driver.facts
    words = declared.split(" ", 1)
    spelled = {
        "KEY": f"{dialect.key_type} PRIMARY KEY",
        "TIME": dialect.time_type,
        "TEXT": dialect.short_text_type,
        "LONG": dialect.long_text_type,
    }.get(words[0], words[0])
    return " ".join([spelled, *words[1:]])


def write_marker(driver: Driver, environment: str, protected: bool, marked_by: str) -> None:
    """Mark the database as `environment` (replacing any marker it had)."""
    table = driver.qualify(MARKER_TABLE)
    mark = driver.facts.placeholder
    with driver.transaction():
        if not driver.table_exists(MARKER_TABLE):
            key, text = driver.facts.key_type, driver.facts.short_text_type
            driver.query(
                f"CREATE TABLE {table} (\n    environment {key} NOT NULL,\n"
                f"    marked_at {text} NOT NULL,\n    marked_by {text} NOT NULL,\n"
                f"    protected INTEGER NOT NULL DEFAULT 0\n){driver.facts.table_options}"
            )
        elif "protected" not in driver.columns(MARKER_TABLE):
            driver.query(f"ALTER TABLE {table} ADD COLUMN protected INTEGER NOT NULL DEFAULT 0")
        driver.query(f"DELETE FROM {table}")
        driver.query(
            f"INSERT INTO {table} (environment, marked_at, marked_by, protected) "
            f"VALUES ({mark}, {mark}, {mark}, {mark})",
            [environment, datetime.now(UTC).isoformat(), marked_by, int(protected)],
        )


def new_row(
    migration: Migration,
    applied_by: str,
    duration_ms: int = 0,
    *,
    status: Status = Status.APPLIED,
    origin: Origin = Origin.RAN,
    note: str | None = None,
    out_of_order: bool = False,
    statements_done: int | None = None,
    allowed_drift: str | None = None,
) -> AppliedMigration:
    """The history row recording `migration`, stamped now."""
    return AppliedMigration(
        migration=migration.name,
        checksum=migration.checksum,
        applied_at=datetime.now(UTC),
        applied_by=applied_by,
        duration_ms=duration_ms,
        tool_version=__version__,
        status=status,
        note=note,
        origin=origin,
        out_of_order=out_of_order,
        statements_done=statements_done,
        allowed_drift=allowed_drift,
    )
