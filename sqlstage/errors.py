"""The exception family. Each error carries its exit code and, where there is one, the fix.

The CLI catches only `SqlstageError`, prints `str(error)` on one line and exits with
`error.exit_code`. Nothing below the CLI prints.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes (README, "Exit codes")."""

    OK = 0
    MIGRATION_FAILED = 1
    USAGE = 2
    REFUSED = 3
    CANNOT_CONNECT = 4
    #: `pending --exit-code`, `status --check`: something is pending, failed or edited
    NOT_UP_TO_DATE = 5
    #: a drift check (`drift`, `diff`) could not finish: its verdict is unknown, not clean
    CHECK_INCOMPLETE = 6
    INTERRUPTED = 130
    TERMINATED = 143


class SqlstageError(Exception):
    """Base class: a message the user can act on, and an exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, fix: str | None = None, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        #: more lines the CLI prints after the one-line error (a diff), or ""
        self.details = details

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}" if self.fix else self.message


class ConfigError(SqlstageError):
    """sqlstage.toml, .env.local or the command line asks for something that cannot be."""


class MigrationFileError(SqlstageError):
    """A migration file is misnamed, unreadable or malformed."""


class UnwrittenMigration(MigrationFileError):
    """A migration file with no SQL yet (`sqlstage new` wrote it, no one filled it in):
    refused where it would run, a warning where the files are only read (status, pending)."""


class StatusFileError(SqlstageError):
    """status.json cannot be read: not JSON, conflict markers, a value of the wrong type."""


class FileAccessError(SqlstageError):
    """A file or folder sqlstage writes (status.json, the run log) cannot be used: missing
    permission, a file where a folder should be (or the reverse), a full disk. Unlike
    StatusFileError the content is not at fault, so rebuilding the file cannot help."""


class Refused(SqlstageError):
    """A safety rule or the user said no; nothing was changed."""

    exit_code = ExitCode.REFUSED


class Locked(Refused):
    """Another run holds the database's lock and did not let go within --lock-wait."""


class ChecksumChanged(MigrationFileError):
    """An applied migration's forward SQL was edited; `details` holds the diff."""


class ConnectionFailed(SqlstageError):
    """The database cannot be reached, or refused the credentials."""

    exit_code = ExitCode.CANNOT_CONNECT


class MigrationFailed(SqlstageError):
    """A statement failed; its migration was rolled back and the run stopped."""

    exit_code = ExitCode.MIGRATION_FAILED


class DriftFound(SqlstageError):
    """`drift` or `diff` found schema differences the histories do not explain."""

    exit_code = ExitCode.MIGRATION_FAILED


class CheckIncomplete(SqlstageError):
    """A drift check could not finish (the history's SQL failed to replay, another run
    holds the database): no verdict, which is never "no drift"."""

    exit_code = ExitCode.CHECK_INCOMPLETE


class NotUpToDate(SqlstageError):
    """`pending ENV --exit-code` / `status --check`: an environment has migrations pending,
    failed or edited, or a schema its last drift check found drifted."""

    exit_code = ExitCode.NOT_UP_TO_DATE


class Terminated(KeyboardInterrupt):
    """SIGTERM: the run stops as on Ctrl-C (exit 143)."""
