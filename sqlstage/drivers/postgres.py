"""PostgreSQL through psycopg 3: one autocommit connection, explicit transactions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from sqlstage.drivers.base import (
    HISTORY_COLUMNS,
    HISTORY_TABLE,
    AppliedMigration,
    Driver,
    ServerInfo,
    StatementError,
)
from sqlstage.errors import ConfigError, ConnectionFailed, Refused
from sqlstage.sqltext import Statement, split_statements
from sqlstage.urls import DatabaseUrl, redact

CONNECT_TIMEOUT_SECONDS = 5
_BEGIN = "BEGIN; "


class PostgresDriver(Driver):
    dialect = "postgresql"
    placeholder = "%s"
    time_type = "timestamptz"
    lock_timeout_codes = frozenset({"55P03"})  # lock_not_available
    backup_suffix = ".dump"

    def __init__(
        self, url: DatabaseUrl, application_name: str = "sqlstage", create: bool = True
    ) -> None:
        super().__init__(url)
        self._notices: list[str] = []
        self._reasons: dict[str, str | None] = {}
        self._controls: dict[str, str | None] = {}
        self._begin_pending = False
        self._offset = 0  # characters of our own before the statement last sent
        self._at_commit: list[str] | None = None  # SQL to send with COMMIT; None: no transaction
        options: dict[str, Any] = {"application_name": application_name[:63]}
        try:
            if "connect_timeout" not in conninfo_to_dict(url.raw):
                options["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
            self.conn = psycopg.connect(url.raw, autocommit=True, **options)
        except psycopg.Error as err:
            raise ConnectionFailed(
                f"cannot connect to {url.masked}: {_one_line(err, url)}",
                "check that the server is up and the URL, user and password are right",
            ) from err
        self.conn.add_notice_handler(self._on_notice)
        if self.conn.info.server_version >= 140000:
            # a client killed mid-statement (kill -9) ends its backend within a second, so
            # the transaction rolls back and the run lock is freed without waiting for the
            # statement to finish on its own
            self.conn.execute("SET client_connection_check_interval = 1000")

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        self._notices.append(f"{diag.severity}: {diag.message_primary}")

    def info(self) -> ServerInfo:
        info = self.conn.info
        major, minor = divmod(info.server_version, 10000)
        version = f"{major}.{minor}" if major >= 10 else str(info.server_version)
        return ServerInfo("PostgreSQL", version, info.dbname, f"{info.host}:{info.port}", info.user)

    def close(self) -> None:
        self.conn.close()

    def split(self, sql: str) -> list[Statement]:
        """Split with PostgreSQL's own grammar (pglast); fall back to the scanner on a syntax
        error, so the server, not our parser, has the last word on what is valid."""
        from pglast.parser import ParseError

        from sqlstage import pgparse

        try:
            statements = pgparse.statements(sql)
            reasons = pgparse.reasons(sql)  # the same (cached) parse
            controls = pgparse.controls(sql)
        except ParseError:
            return split_statements(sql)
        self._reasons.update((s.sql, r) for s, r in zip(statements, reasons, strict=True))
        self._controls.update((s.sql, c) for s, c in zip(statements, controls, strict=True))
        return statements

    def transaction_control(self, sql: str) -> str | None:
        if sql in self._controls:  # known from splitting its migration
            return self._controls[sql]
        return super().transaction_control(sql)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction, in two round trips fewer than BEGIN and COMMIT of their own:
        BEGIN travels with the first statement, and the history row with COMMIT."""
        self._begin_pending, self._at_commit = True, []
        try:
            yield
            self._send("; ".join([*self._at_commit, "COMMIT"]))
        except BaseException as error:
            self._rollback_if_open()
            if isinstance(error, psycopg.Error):  # at COMMIT: a deferred constraint
                raise self._statement_error(error) from error
            raise
        finally:
            self._begin_pending, self._at_commit = False, None

    def _rollback_if_open(self) -> None:
        """End a failed transaction; on a lost connection there is nothing to end (the
        server rolled it back), and the error that matters is the one being raised."""
        status = self.conn.info.transaction_status
        if self.conn.closed or status in (TransactionStatus.IDLE, TransactionStatus.UNKNOWN):
            return
        with suppress(psycopg.Error):
            self.conn.execute("ROLLBACK")

    def execute(self, sql: str) -> None:
        try:
            self._send(sql)
        except psycopg.Error as err:
            raise self._statement_error(err) from err

    def _send(self, sql: str) -> None:
        """Run SQL exactly as given, after the transaction's BEGIN if that is still to send."""
        self._offset = 0
        if self._begin_pending:
            self._begin_pending, sql = False, f"{_BEGIN}{sql}"
            self._offset = len(_BEGIN)
        self.conn.execute(sql, prepare=False)  # no parameters: the simple query protocol

    def record(self, applied: AppliedMigration, sql: str) -> None:
        """Inside a transaction the history row is sent with its COMMIT (same atomicity)."""
        if self._at_commit is None:
            super().record(applied, sql)
            return
        from psycopg import sql as pgsql

        values = [*(getattr(applied, column) for column in HISTORY_COLUMNS), sql]
        insert = pgsql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            pgsql.Identifier(HISTORY_TABLE),
            pgsql.SQL(", ").join(map(pgsql.Identifier, [*HISTORY_COLUMNS, "applied_sql"])),
            pgsql.SQL(", ").join(map(pgsql.Literal, values)),
        )
        self._at_commit.append(insert.as_string(self.conn))

    def _statement_error(self, err: psycopg.Error) -> StatementError:
        diag = err.diag
        position = int(diag.statement_position) if diag.statement_position else None
        return StatementError(
            diag.message_primary or _one_line(err, self.url),
            detail=diag.message_detail,
            hint=diag.message_hint,
            position=position - self._offset if position else None,
            code=err.sqlstate,
        )

    def set_lock_timeout(self, value: str | None, session: bool = False) -> None:
        from psycopg import sql

        if value is None:
            self.conn.execute("RESET lock_timeout")
            return
        # SET LOCAL ends with the migration's transaction; a session setting is reset after
        scope = sql.SQL("SET lock_timeout = {}" if session else "SET LOCAL lock_timeout = {}")
        try:
            self._send(scope.format(sql.Literal(value)).as_string(self.conn))
        except psycopg.DataError as err:  # out of range, bad unit
            self._rollback_if_open()
            raise ConfigError(
                f'lock_timeout = "{value}" in sqlstage.toml: {err.diag.message_primary}',
                'use a duration such as "5s" or "500ms", or "0" to disable it',
            ) from err

    def check_backup(self) -> None:
        """pg_dump must exist and be at least as new as the server (it refuses older)."""
        self._pg_dump()

    def backup(self, path: Path) -> None:
        """pg_dump in custom format (pg_restore can list and restore it)."""
        options = conninfo_to_dict(self.url.raw)
        password = options.pop("password", None)
        environment = {**os.environ, "PGAPPNAME": "sqlstage backup"}
        if password:
            environment["PGPASSWORD"] = str(password)  # never on the command line (ps shows it)
        done = subprocess.run(
            [
                self._pg_dump(),
                "--format=custom",
                f"--file={path}",
                f"--dbname={make_conninfo('', **options)}",
            ],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            path.unlink(missing_ok=True)
            message = redact(" ".join(done.stderr.split()), [self.url.password or ""])
            raise Refused(f"pg_dump failed, nothing was applied: {message}")

    def _pg_dump(self) -> str:
        path = shutil.which("pg_dump")
        if path is None:
            raise ConfigError(
                'backup = "pg_dump" but pg_dump is not installed',
                "install the PostgreSQL client tools (e.g. apt-get install postgresql-client)",
            )
        version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"(\d+)(?:\.\d+)?", version.stdout)
        server_major = self.conn.info.server_version // 10000
        if found is None or int(found.group(1)) < server_major:
            raise ConfigError(
                f"{path} ({version.stdout.strip() or 'unknown version'}) is older than the "
                f"server (PostgreSQL {server_major}) and cannot dump it",
                f"install pg_dump {server_major} or newer, or put it first on PATH",
            )
        return path

    def outside_transaction_reason(self, sql: str) -> str | None:
        if sql in self._reasons:  # known from splitting its migration: no second parse
            return self._reasons[sql]
        from sqlstage.transactions import postgres_reason

        return postgres_reason(sql)

    # a session-level advisory lock: not tied to any transaction, freed when the session ends
    def _try_lock(self) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", [self._lock_key]).fetchone()
        return bool(row and row[0])

    def _lock_holder(self) -> str | None:
        from sqlstage.locking import holder_text

        key = self._lock_key
        row = self.conn.execute(
            """SELECT a.application_name, a.pid, a.backend_start
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid::bigint = %s AND l.objid::bigint = %s""",
            [key >> 32, key & 0xFFFFFFFF],
        ).fetchone()
        return holder_text(row[0], row[1], row[2]) if row else None

    def _release_lock(self) -> None:
        if not self.conn.closed:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", [self._lock_key])

    @property
    def _lock_key(self) -> int:
        from sqlstage.locking import advisory_key

        return advisory_key(HISTORY_TABLE)

    def notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._begin_pending:  # a query of our own opens the transaction it belongs to
            self._begin_pending = False
            self.conn.execute("BEGIN")
        cursor = self.conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []

    def _table_exists(self, name: str) -> bool:
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL", [name]).fetchone()
        return bool(row and row[0])


def _one_line(err: Exception, url: DatabaseUrl) -> str:
    """libpq's multi-line messages folded to one line, with the password removed."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return redact(text, [url.password] if url.password else [])


DRIVER = PostgresDriver
