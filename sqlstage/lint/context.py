"""What a rule sees: the options of the run, the file's statements, and what the migration
has done so far. Rules (`rules_*.py`) and the engine both import it; it imports neither."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sqlstage.pgparse import ParsedStatement
from sqlstage.sqltext import first_code_offset

if TYPE_CHECKING:
    from sqlstage.config import Config

DEFAULT_PG_VERSION = 15  # the oldest PostgreSQL release still supported upstream (Nov 2026)


@dataclass(frozen=True)
class LintOptions:
    """What to check and how strictly: `[lint]` in sqlstage.toml plus what the run knows."""

    dialect: str = "postgresql"
    pg_version: int = DEFAULT_PG_VERSION
    disable: frozenset[str] = frozenset()
    warn: frozenset[str] = frozenset()
    #: sqlstage itself sets lock_timeout for this run (then migrations need not)
    tool_lock_timeout: bool = False

    @classmethod
    def of_config(
        cls,
        config: Config,
        dialect: str,
        server_version: int | None = None,
        tool_lock_timeout: bool | None = None,
    ) -> LintOptions:
        """The options `[lint]` of sqlstage.toml gives. The target version is the lower of
        `[lint] pg_version` and `server_version` (the connected server). `tool_lock_timeout`
        says whether sqlstage sets lock_timeout itself; None means: every protected
        environment (or every one, when none is protected) has one, which is what `lint` and
        every `apply` use, so they report the same findings."""
        settings = config.lint
        versions = [v for v in (settings.pg_version, server_version) if v is not None]
        if tool_lock_timeout is None:
            envs = list(config.environments.values())
            targets = [env for env in envs if env.protected] or envs
            tool_lock_timeout = bool(targets) and all(
                env.effective_lock_timeout is not None for env in targets
            )
        return cls(
            dialect=dialect,
            pg_version=min(versions) if versions else DEFAULT_PG_VERSION,
            disable=frozenset(settings.disable),
            warn=frozenset(settings.warn),
            tool_lock_timeout=tool_lock_timeout,
        )


@dataclass(frozen=True)
class Hit:
    """What a rule reports; the engine adds file, line, severity and waivers."""

    rule: str
    message: str
    safe: str
    location: int | None = None  # byte offset in the file; the statement's start when None


#: a statement as rules see it: `kind`, `node` (decoded when first read), `start` (the byte
#: offset of its first token) and `end`
Statement = ParsedStatement


class Source:
    """The file's text, and the mapping from pglast's byte offsets to lines and columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._data = None if text.isascii() else text.encode("utf-8")

    def char(self, byte_offset: int) -> int:
        if self._data is None:
            return byte_offset
        return len(self._data[:byte_offset].decode("utf-8", "replace"))

    def position(self, byte_offset: int) -> tuple[int, int]:
        """1-based (line, column) of a byte offset; the column counts characters."""
        offset = self.char(byte_offset)
        line_start = self.text.rfind("\n", 0, offset) + 1
        return self.text.count("\n", 0, offset) + 1, offset - line_start + 1

    def sql(self, statement: Statement) -> str:
        start, end = self.char(statement.start), self.char(statement.end)
        begin = first_code_offset(self.text, start, end)
        return self.text[start if begin is None else begin : end].strip()


@dataclass
class Created:
    """What the earlier migrations of the same plan created: new to the database when this
    one runs, so no lock on them blocks anybody (the first deploy to an empty database)."""

    tables: set[str] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)
    views: set[str] = field(default_factory=set)


@dataclass
class Context:
    """What the rules know about the migration so far (statements before the current one)."""

    options: LintOptions
    source: Source
    statements: Sequence[Statement]
    wrapped: bool  # sqlstage runs this migration inside one transaction
    #: the file's first line is `-- sqlstage:no-transaction`: it manages transactions itself
    directive: bool = False
    #: created by the plan's earlier migrations or by this one so far (the engine hands in
    #: the plan's own `Created` sets, which so learn what this migration creates)
    created_tables: set[str] = field(default_factory=set)
    created_indexes: set[str] = field(default_factory=set)
    created_views: set[str] = field(default_factory=set)  # anywhere in the file
    ddl_tables: set[str] = field(default_factory=set)  # existing tables altered in the file
    constrained_tables: set[str] = field(default_factory=set)  # constraints added in the file
    validated_tables: set[str] = field(default_factory=set)
    explicit_transaction: bool = False
    lock_timeout: bool = False
    lock_timeout_warned: bool = False

    def existing(self, name: str) -> bool:
        """True for a table this migration did not create itself."""
        return name not in self.created_tables

    def in_transaction(self) -> bool:
        return self.wrapped or self.explicit_transaction

    def sql(self, statement: Statement) -> str:
        return self.source.sql(statement)


Check = Callable[[Statement, Context], Iterable[Hit]]
C = TypeVar("C", bound=Check)


def for_kinds(*kinds: str) -> Callable[[C], C]:
    """Mark a check that can find something only in statements of these kinds
    (`"AlterTableStmt"`...): the engine calls it for those alone. The check keeps its own
    test of the kind, so called for another one it finds nothing."""

    def mark(check: C) -> C:
        setattr(check, "kinds", frozenset(kinds))  # noqa: B010 - an attribute of a function
        return check

    return mark


def checks_for(kind: str, checks: Iterable[Check]) -> tuple[Check, ...]:
    """The checks that look at statements of `kind` (those marked otherwise left out)."""
    return tuple(c for c in checks if kind in getattr(c, "kinds", (kind,)))
