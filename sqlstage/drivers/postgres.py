"""PostgreSQL through psycopg 3: one autocommit connection, explicit transactions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus

from sqlstage.drivers.base import Dialect, Driver, ServerInfo, StatementError
from sqlstage.errors import ConfigError, ConnectionFailed, Refused
from sqlstage.sqltext import Statement, split_statements
from sqlstage.urls import DatabaseUrl, redact

if TYPE_CHECKING:
    from sqlstage.drivers import postgres_message
    from sqlstage.lease import Lease

CONNECT_TIMEOUT_SECONDS = 5

#: what a fresh connection has: DISCARD ALL without its advisory unlock (the run lock stays)
_RESET = (
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ALL",
    "DEALLOCATE ALL",
    "UNLISTEN *",
    "DISCARD PLANS",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
)
#: milliseconds since the server received the message it runs in (statement_timestamp()
#: is when the message arrived): a migration's duration, written in its history row
_ELAPSED_MS = "round(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::int"


class _Counted(psycopg.Cursor[Any]):
    """A cursor that remembers how many results the server sent for its last query, the
    failing one included: which statement of a message failed when the error has no
    position. (psycopg raises on an error result without saying which one it was.)"""

    result_count = 0

    def _check_results(self, results: list[Any]) -> None:
        self.result_count = len(results)
        super()._check_results(results)


class PostgresDriver(Driver):
    facts = Dialect(
        name="postgresql",
        transactional_ddl=True,
        placeholder="%s",
        time_type="timestamptz",
        lock_timeout_codes=frozenset({"55P03"}),  # lock_not_available
        backup_suffix=".dump",
        elapsed_ms=_ELAPSED_MS,
    )

    def __init__(
        self,
        url: DatabaseUrl,
        application_name: str = "sqlstage",
        create: bool = True,
        pooler: str = "detect",
        environment: str | None = None,
    ) -> None:
        super().__init__(url)
        self._notices: list[str] = []
        self._reasons: dict[str, str | None] = {}
        self._controls: dict[str, str | None] = {}
        #: our statements collected for a migration's message; None: run them as they come
        self._at_commit: list[str] | None = None
        #: statements that give the next migration a fresh session; sent in front of it
        self._reset: tuple[str, ...] = ()
        self._lock_timeout: str | None = None
        self.application_name = application_name[:63]
        #: the run lock as a lease row, when the environment allows a transaction pooler
        self.lease: Lease | None = None
        self.conn = self._open()
        if pooler == "transaction":
            from sqlstage.lease import Lease

            # the URL is known to be pooled: no detection, and no session state from here on
            self.lease = Lease(self.conn, self.application_name, connect=self._raw_connection)
        else:
            self._refuse_transaction_pooler(environment or "verify")
        self._set_session_defaults(self.conn)
        row = self.conn.execute("SELECT current_schema()").fetchone()
        self.schema = str(row[0]) if row and row[0] else "public"

    def _raw_connection(self) -> psycopg.Connection[Any]:
        """A new autocommit connection to the URL; raises psycopg.Error. Also what the
        pooler detection's second client and the lease's heartbeat open."""
        options: dict[str, Any] = {"application_name": self.application_name}
        if "connect_timeout" not in conninfo_to_dict(self.url.raw):
            options["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        # no prepared statements: nothing of ours may outlive a transaction on a pooled
        # server connection, and DEALLOCATE ALL (the session reset) must not break a cache
        return psycopg.connect(self.url.raw, autocommit=True, prepare_threshold=None, **options)

    def _open(self) -> psycopg.Connection[Any]:
        try:
            conn = self._raw_connection()
        except psycopg.Error as err:
            raise self._cannot_connect(err) from err
        conn.add_notice_handler(self._on_notice)
        return conn

    def _cannot_connect(self, err: psycopg.Error) -> ConnectionFailed:
        return ConnectionFailed(
            f"cannot connect to {self.url.masked}: {_one_line(err, self.url)}",
            "check that the server is up and the URL, user and password are right",
        )

    def _refuse_transaction_pooler(self, environment: str) -> None:
        """Before anything else is sent: a transaction pooler the environment did not
        allow closes the connection and stops the run (exit 4), whatever the command, so
        `check` tells as early as `apply` would."""
        from sqlstage.pooler import detect, refusal

        try:
            found = detect(self.conn, self._raw_connection)
        except psycopg.Error as err:
            self.conn.close()
            raise self._cannot_connect(err) from err
        if not found.keeps_session:
            self.conn.close()
            raise refusal(environment, self.url.masked, found)

    def _set_session_defaults(self, conn: psycopg.Connection[Any]) -> None:
        """A client killed mid-statement (kill -9) ends its backend within a second, so the
        transaction rolls back and the run lock is freed without waiting for the statement
        to finish on its own (PostgreSQL 14+). Set at startup, so RESET ALL keeps it; behind
        a transaction pooler, with SET LOCAL in each transaction instead."""
        interval = "client_connection_check_interval = 1000"
        has_interval = conn.info.server_version >= 140000
        self._session_defaults: tuple[str, ...] = ()
        self._local_defaults = (f"SET LOCAL {interval}",) if has_interval else ()
        if has_interval and self.lease is None:
            conn.execute(f"SET {interval}")
            self._session_defaults = (f"SET {interval}",)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self._open()
        self._set_session_defaults(conn)
        return conn

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        self._notices.append(f"{diag.severity}: {diag.message_primary}")

    def info(self) -> ServerInfo:
        info = self.conn.info
        major, minor = divmod(info.server_version, 10000)
        version = f"{major}.{minor}" if major >= 10 else str(info.server_version)
        return ServerInfo("PostgreSQL", version, info.dbname, f"{info.host}:{info.port}", info.user)

    def close(self) -> None:
        if self.lease is not None:  # stop the heartbeat; an unreleased row just expires
            with suppress(psycopg.Error):
                self.lease.release()
        self.conn.close()

    def split(self, sql: str) -> list[Statement]:
        """Split with PostgreSQL's own grammar (pglast); fall back to the scanner on a syntax
        error, so the server, not our parser, has the last word on what is valid."""
        from pglast.parser import ParseError

        from sqlstage import pgparse

        try:
            found = pgparse.annotated(sql)
        except ParseError:
            return split_statements(sql)
        for statement, reason, control in found:
            self._reasons[statement.sql] = reason
            self._controls[statement.sql] = control
        return [statement for statement, _reason, _control in found]

    def transaction_control(self, sql: str) -> str | None:
        if sql in self._controls:  # known from splitting its migration
            return self._controls[sql]
        return super().transaction_control(sql)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction of sqlstage's own statements (and verify's): BEGIN after the
        session reset, COMMIT after the lease's fence."""
        try:
            self._send_own("BEGIN", *self._local_settings())
            yield
            self._send_own(*self._fence(), "COMMIT")
        except BaseException as error:
            self._rollback_if_open()
            if isinstance(error, psycopg.Error):  # at COMMIT: a deferred constraint
                raise self._statement_error(error) from error
            raise

    def run_transaction(self, statements: Sequence[str], finish: Callable[[], None]) -> None:
        """The whole transaction as one message (`postgres_message`): the session reset,
        BEGIN, the statements, what `finish` defers (the history row, its duration measured
        by the server), the lease's fence and COMMIT. One round trip."""
        self._at_commit = []
        try:
            finish()
            after = [*self._at_commit, *self._fence(), "COMMIT"]
        finally:
            self._at_commit = None
        from sqlstage.drivers import postgres_message  # not imported by a run that runs nothing

        before = [*self._take_reset(), "BEGIN", *self._local_settings()]
        message = postgres_message.build(before, statements, after)
        cursor = _Counted(self.conn)
        try:
            cursor.execute(message.text, prepare=False)  # no parameters: one simple query
        except BaseException as error:
            self._rollback_if_open()
            if isinstance(error, psycopg.Error):
                raise self._message_error(error, message, cursor.result_count) from error
            raise
        if self.conn.info.transaction_status is not TransactionStatus.IDLE:
            self._rollback_if_open()  # never expected: the server ran less than was sent
            raise StatementError("the migration's message did not end in its COMMIT")

    def _message_error(
        self, err: psycopg.Error, message: postgres_message.Message, results: int
    ) -> StatementError:
        from sqlstage.drivers import postgres_message

        position = err.diag.statement_position
        place = postgres_message.locate(message, results, int(position) if position else None)
        error = self._statement_error(err)
        error.index, error.position = place.index, place.position
        return error

    def _fence(self) -> list[str]:
        return [self.lease.fence_sql()] if self.lease is not None and self.lease.held else []

    def _take_reset(self) -> tuple[str, ...]:
        reset, self._reset = self._reset, ()
        return reset

    def _send_own(self, *statements: str) -> None:
        """Statements of ours as one message, after the pending session reset."""
        from sqlstage.drivers import postgres_message

        sql = postgres_message.build([*self._take_reset(), *statements], [], []).text
        self.conn.execute(sql, prepare=False)

    def _rollback_if_open(self) -> None:
        """End a failed transaction; on a lost connection there is nothing to end (the
        server rolled it back), and the error that matters is the one being raised."""
        if self.conn.closed:
            return
        status = self.conn.info.transaction_status
        if status in (TransactionStatus.IDLE, TransactionStatus.UNKNOWN):
            return
        with suppress(psycopg.Error):
            self.conn.execute("ROLLBACK")

    def execute(self, sql: str) -> None:
        """One statement exactly as given, in a message of its own (a statement that
        cannot run in a transaction block cannot share one)."""
        try:
            if self._reset:
                self._send_own()
            self.conn.execute(sql, prepare=False)  # no parameters: simple query protocol
        except psycopg.Error as err:
            raise self._statement_error(err) from err

    def _local_settings(self) -> list[str]:
        """Behind a transaction pooler, the settings a migration's transaction starts with
        (SET LOCAL: they end with it, on whichever server connection it ran)."""
        if self.lease is None:
            return []
        settings = list(self._local_defaults)
        if self._lock_timeout is not None:
            settings.append(f"SET LOCAL lock_timeout = {self._literal(self._lock_timeout)}")
        return settings

    def reset_session(self) -> None:
        if self.lease is not None:
            # Behind a transaction pooler there is no session of ours to reset: the next
            # transaction may get another server connection than the last migration did,
            # so RESET ALL there would clean some other client's connection, not undo our
            # SET (and DISCARD TEMP cannot run in a transaction block). Our own settings
            # are SET LOCAL. What is checked instead: the lease is still this run's.
            if self.lease.held:
                with self._own_statement():
                    self.lease.verify()
            return
        settings = self._session_defaults
        if self._lock_timeout is not None:
            settings += (f"SET lock_timeout = {self._literal(self._lock_timeout)}",)
        self._reset = _RESET + settings

    def throwaway(self) -> None:
        # a database-level default: RESET ALL between migrations keeps it
        name = self.query("SELECT current_database()")[0][0]
        quoted = '"' + str(name).replace('"', '""') + '"'
        self.query(f"ALTER DATABASE {quoted} SET synchronous_commit = off")
        self.query("SET synchronous_commit = off")

    def recover(self) -> None:
        """A Ctrl-C can land between sending a query and reading its result, leaving the
        connection busy ("another command is already in progress"): then start a new one.
        The old one's transaction, if any, ends with it (rolled back)."""
        self._at_commit = None
        idle = (TransactionStatus.IDLE, TransactionStatus.INTRANS, TransactionStatus.INERROR)
        if not self.conn.closed and self.conn.info.transaction_status in idle:
            self._rollback_if_open()
            if self.conn.info.transaction_status is TransactionStatus.IDLE:
                return
        with suppress(Exception):
            self.conn.close()
        self.conn = self._connect()
        if self.lease is not None:  # a lease outlives the connection; the heartbeat renews it
            self.lease.conn = self.conn
        else:
            self._lock_depth = 0  # the advisory lock went with the old session

    def defer(self, sql: str, params: Sequence[Any] = ()) -> None:
        """In a migration's message the statement goes with it, its values written as
        literals (the message has no parameters); elsewhere it runs now."""
        if self._at_commit is None:
            self.query(sql, params)
            return
        from sqlstage.drivers import postgres_message

        first, *rest = sql.split("%s")
        standard = self._standard_strings()  # asked once per row, not once per value
        values = [postgres_message.literal(value, standard) for value in params]
        pieces = zip(values, rest, strict=True)
        self._at_commit.append(first + "".join(value + piece for value, piece in pieces))

    def _standard_strings(self) -> bool:
        """How the server reads strings now (a migration may SET it)."""
        return self.conn.info.parameter_status("standard_conforming_strings") != "off"

    def _literal(self, value: Any) -> str:
        """A value as SQL text, quoted for how the server reads strings now."""
        from sqlstage.drivers import postgres_message

        return postgres_message.literal(value, self._standard_strings())

    def _statement_error(self, err: psycopg.Error) -> StatementError:
        diag = err.diag
        return StatementError(
            diag.message_primary or _one_line(err, self.url),
            detail=diag.message_detail,
            hint=diag.message_hint,
            position=int(diag.statement_position) if diag.statement_position else None,
            code=err.sqlstate,
        )

    def set_lock_timeout(self, value: str | None) -> None:
        """A session setting: for sqlstage's own statements and every migration (RESET ALL
        between migrations sets it again); a migration may SET its own."""
        self._lock_timeout = value
        try:
            if self.lease is not None:  # checked only (is_local: it ends with the statement)
                if value is not None:
                    self.conn.execute("SELECT set_config('lock_timeout', %s, true)", [value])
            elif value is None:
                self.conn.execute("RESET lock_timeout")
            else:
                self.conn.execute(f"SET lock_timeout = {self._literal(value)}")
        except psycopg.DataError as err:  # out of range, bad unit
            raise ConfigError(
                f'lock_timeout = "{value}" in sqlstage.toml: {err.diag.message_primary}',
                'use a duration such as "5s" or "500ms", or "0" to disable it',
            ) from err

    def check_backup(self) -> None:
        """pg_dump must exist and be at least as new as the server (it refuses older)."""
        self._pg_dump()

    def backup(self, path: Path) -> None:
        """pg_dump in custom format (pg_restore can list and restore it); a fleet's tenant
        schema (schema_only) dumps that schema alone, not its neighbours."""
        only = [f'--schema="{self.schema}"'] if self.schema_only else []
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
                *only,
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
        from sqlstage.pgparse import postgres_reason

        return postgres_reason(sql)

    # a session-level advisory lock: not tied to any transaction, freed when the session ends;
    # behind a transaction pooler the lease row (sqlstage.lease) instead
    def _try_lock(self) -> bool:
        if self.lease is not None:
            with self._own_statement():  # e.g. no right to create sqlstage_lock
                return self.lease.try_acquire()
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", [self._lock_key]).fetchone()
        return bool(row and row[0])

    def _lock_holder(self) -> str | None:
        from sqlstage.locking import holder_text

        if self.lease is not None:
            with self._own_statement():
                holder = self.lease.holder()
            return holder.describe() if holder else None
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
        if self.lease is not None:
            with self._own_statement():  # the heartbeat has stopped; a row left just expires
                self.lease.release()
        elif not self.conn.closed:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", [self._lock_key])

    @property
    def _lock_key(self) -> int:
        from sqlstage.locking import advisory_key

        # one lock per schema holding sqlstage's tables ("public" keeps the old key)
        return advisory_key("sqlstage_history" if self.schema == "public" else self.qualify(""))

    @contextmanager
    def _own_statement(self) -> Iterator[None]:
        """psycopg's errors in sqlstage's own statements as StatementError (the session
        turns them into one line)."""
        try:
            yield
        except psycopg.Error as err:
            raise self._statement_error(err) from err

    def notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            if self._reset:
                self._send_own()
            cursor = self.conn.execute(sql, params or None)
            while cursor.description is None and cursor.nextset():  # `SET LOCAL ...; SELECT`
                pass
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as err:
            raise self._statement_error(err) from err

    def qualify(self, name: str) -> str:
        return '"' + self.schema.replace('"', '""') + '".' + name

    def table_exists(self, name: str) -> bool:
        row = self.query("SELECT to_regclass(%s) IS NOT NULL", [self.qualify(name)])
        return bool(row and row[0][0])

    def columns(self, table: str) -> list[str]:
        rows = self.query(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [self.qualify(table)],
        )
        return [str(row[0]) for row in rows]

    def user_tables(self, limit: int) -> list[str]:
        rows = self.query(
            "SELECT CASE WHEN n.nspname = current_schema() THEN c.relname "
            "ELSE n.nspname || '.' || c.relname END AS name "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%%' "
            "AND NOT (n.nspname = %s AND c.relname LIKE 'sqlstage\\_%%') "
            "AND (NOT %s OR n.nspname = current_schema()) "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
            "AND d.objid = c.oid AND d.deptype = 'e') "
            "ORDER BY 1 LIMIT %s",
            [self.schema, self.schema_only, limit],
        )
        return [str(row[0]) for row in rows]


def _one_line(err: Exception, url: DatabaseUrl) -> str:
    """libpq's multi-line messages folded to one line, with the password removed."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return redact(text, [url.password] if url.password else [])


DRIVER = PostgresDriver
