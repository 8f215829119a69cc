"""MySQL and MariaDB through PyMySQL (pure Python; `pip install 'sqlstage[mysql]'`).

One autocommit connection for the run. What differs from PostgreSQL, as data:
`transactional_ddl = False` (every DDL statement commits on its own, with whatever transaction
it ran in), statements split as the `mysql` client splits them (`DELIMITER` included), the
run lock is `GET_LOCK` (held by the session, freed when it ends), and `lock_timeout` is the
session's `lock_wait_timeout` in whole seconds.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlstage.drivers.base import Dialect, Driver, ServerInfo, StatementError
from sqlstage.drivers.mysql_options import MysqlTarget, parse_target, write_defaults_file
from sqlstage.errors import ConfigError, ConnectionFailed, MigrationFileError, Refused
from sqlstage.mysql_statements import implicit_commit, split_mysql, transaction_control
from sqlstage.sqltext import Statement
from sqlstage.urls import DatabaseUrl, redact

#: "near '...' at line N" in a syntax error: where in the statement the server stopped
_NEAR = re.compile(r"near '(?P<near>.*)' at line (?P<line>\d+)$", re.DOTALL)
_VERSION = re.compile(r"\d+(?:\.\d+)*")
_LOCK_WAIT_DEFAULT = 31536000  # the largest value: one year
_INNODB_LOCK_WAIT_MAX = 1073741824
_DURATION = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|min|h|d)?\s*$", re.I)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}
#: client errors that mean "lost the server" rather than "this statement is wrong"
_CONNECTION_LOST = frozenset({2006, 2013, 2055})


class MysqlDriver(Driver):
    #: DDL commits itself (transactional_ddl=False): a migration with DDL cannot be one
    #: transaction. ER_LOCK_WAIT_TIMEOUT (1205): a metadata lock (DDL) or a row lock waited
    #: past lock_wait_timeout. TEXT columns take no literal DEFAULT on MySQL 8, and
    #: cannot be keys: VARCHAR; applied_sql may exceed TEXT's 64 KiB.
    facts = Dialect(
        name="mysql",
        transactional_ddl=False,
        placeholder="%s",
        time_type="DATETIME(6)",
        key_type="VARCHAR(255)",
        lock_timeout_codes=frozenset({"1205"}),
        backup_suffix=".sql",
        short_text_type="VARCHAR(255)",
        long_text_type="LONGTEXT",
        table_options=" DEFAULT CHARSET=utf8mb4",
        create_database="CREATE DATABASE `{}` CHARACTER SET utf8mb4",
        drop_database="DROP DATABASE IF EXISTS `{}`",
        admin_database="mysql",
    )
    #: the dump tools, in the order tried (mariadb-dump first for a MariaDB server)
    dump_tools: ClassVar[tuple[str, ...]] = ("mariadb-dump", "mysqldump")

    def __init__(
        self,
        url: DatabaseUrl,
        application_name: str = "sqlstage",
        create: bool = True,
        pooler: str = "detect",  # ProxySQL and the like: not checked (issue 17 is PostgreSQL's)
        environment: str | None = None,
    ) -> None:
        super().__init__(url)
        self.target: MysqlTarget = parse_target(url)
        self.application_name = application_name
        self._notices: list[str] = []
        self._lock_timeout: str | None = None
        self.conn = self._connect()
        version = str(self._one("SELECT VERSION()"))
        self.product = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        found = _VERSION.match(version)
        self.version = found.group(0) if found else version

    def _connect(self) -> Any:
        import pymysql

        options = self.target.pymysql_options()
        options["program_name"] = self.application_name[:64]
        try:
            return pymysql.connect(**options)
        except pymysql.Error as err:
            raise ConnectionFailed(
                f"cannot connect to {self.url.masked}: {self._message(err)}",
                "check that the server is up and the URL, user, password and database are right",
            ) from err

    # -- connection ---------------------------------------------------------------------
    def reset_session(self) -> None:
        """The session settings a migration may change, back to the server's defaults.

        Not a new connection: the run lock (GET_LOCK) belongs to this session, and
        COM_RESET_CONNECTION would release it too. User variables (`@x`) and TEMPORARY tables
        a migration left are not reset.
        """
        self._query(
            "SET SESSION sql_mode = DEFAULT, time_zone = DEFAULT, foreign_key_checks = DEFAULT, "
            "unique_checks = DEFAULT, autocommit = 1, sql_safe_updates = DEFAULT, "
            "character_set_client = DEFAULT, character_set_results = DEFAULT, "
            "collation_connection = DEFAULT"
        )
        self._query("SET NAMES utf8mb4")
        self.set_lock_timeout(self._lock_timeout)

    def recover(self) -> None:
        """Roll back what an interrupted statement left open; reconnect when the connection
        is gone (the run lock went with it)."""
        import pymysql

        try:
            self.conn.rollback()
            self.conn.ping(reconnect=False)
        except pymysql.Error:
            with suppress(Exception):
                self.conn.close()
            self._lock_depth = 0
            self.conn = self._connect()
            self.set_lock_timeout(self._lock_timeout)

    def info(self) -> ServerInfo:
        """`MariaDB 10.11.19 · database app_dev on 127.0.0.1:3306 as root`"""
        return ServerInfo(
            self.product, self.version, self.target.database, self.target.where, self.target.user
        )

    def close(self) -> None:
        with suppress(Exception):
            self.conn.close()

    # -- statements ---------------------------------------------------------------------
    def split(self, sql: str) -> list[Statement]:
        """As the mysql client splits (DELIMITER honoured). What the client would not send as
        written — one of its own commands, a bad DELIMITER, a BEGIN ... END body cut at its
        first `;` — is a file error (exit 2) naming the line, before anything runs."""
        split = split_mysql(sql, backslash_escapes=not self._no_backslash_escapes)
        if split.problems:
            problem = split.problems[0]
            raise MigrationFileError(f"line {problem.line}: {problem.message}", problem.fix)
        return list(split.statements)

    @property
    def _no_backslash_escapes(self) -> bool:
        from pymysql.constants import SERVER_STATUS

        return bool(self.conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)

    def outside_transaction_reason(self, sql: str) -> str | None:
        """DDL (and a few others) commit implicitly, so they cannot be inside a migration's
        transaction: `CREATE TABLE`, `ALTER TABLE`, `GRANT`, ..."""
        return implicit_commit(sql)

    def transaction_control(self, sql: str) -> str | None:
        return transaction_control(sql)  # shared with lint (mysql_statements)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT. Only DML is undone by a rollback: DDL has committed itself."""
        self._send("BEGIN")
        try:
            yield
            self._send("COMMIT")
        except BaseException:
            with suppress(Exception):
                self.conn.rollback()
            raise

    def execute(self, sql: str) -> None:
        self._send(sql)

    def _send(self, sql: str) -> None:
        import pymysql

        try:
            with self.conn.cursor() as cursor:
                cursor.execute(sql)  # no parameters: PyMySQL leaves `%` alone
                warnings = cursor.warning_count
        except pymysql.Error as err:
            raise self._statement_error(err, sql) from err
        if warnings:
            self._collect_warnings()

    def _collect_warnings(self) -> None:
        for level, code, message in self._query("SHOW WARNINGS"):
            self._notices.append(f"{level} {code}: {message}")

    def notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def _statement_error(self, err: Exception, sql: str) -> StatementError:
        code, message = _code_and_message(err)
        if code in _CONNECTION_LOST:
            message = f"lost the connection to the server: {message}"
        return StatementError(
            redact(message, [self.url.password or ""]),
            position=_position(sql, message),
            code=str(code) if code is not None else None,
        )

    def _message(self, err: Exception) -> str:
        code, message = _code_and_message(err)
        text = f"{message} (error {code})" if code else message
        return redact(" ".join(text.split()), [self.url.password or ""])

    # -- lock_timeout -------------------------------------------------------------------
    def set_lock_timeout(self, value: str | None) -> None:
        """`SET SESSION lock_wait_timeout` (metadata locks: DDL behind a long transaction) and
        `innodb_lock_wait_timeout` (row locks), in seconds rounded up; None: the defaults."""
        self._lock_timeout = value
        if value is None:
            self._query(
                "SET SESSION lock_wait_timeout = DEFAULT, innodb_lock_wait_timeout = DEFAULT"
            )
            return
        seconds = lock_wait_seconds(value)
        innodb = min(seconds, _INNODB_LOCK_WAIT_MAX)
        self._query(
            f"SET SESSION lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {innodb}"
        )

    # -- run lock: GET_LOCK, server-wide, so the name carries the database ----------------
    @property
    def _lock_name(self) -> str:
        name = f"sqlstage:{self.target.database}"
        if len(name) > 64:  # the server's limit on lock names
            name = "sqlstage:" + hashlib.sha256(self.target.database.encode()).hexdigest()[:40]
        return name

    def _try_lock(self) -> bool:
        return bool(self._one("SELECT GET_LOCK(%s, 0)", [self._lock_name]) == 1)

    def _lock_holder(self) -> str | None:
        holder = self._one("SELECT IS_USED_LOCK(%s)", [self._lock_name])
        if holder is None:
            return None
        rows = self._query(
            "SELECT USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID = %s",
            [holder],
        )
        program = self._program_name(int(holder))
        if not rows:
            return f"{program or 'a session'} (connection {holder})"
        user, host, command, seconds = rows[0]
        who = program or f"a session of {user}@{host}"
        doing = "idle" if command == "Sleep" else f"{command.lower()} for {seconds} s"
        return f"{who} (connection {holder}, {doing}; KILL {holder} ends it)"

    def _program_name(self, connection: int) -> str | None:
        """The holder's application name, where performance_schema keeps it."""
        import pymysql

        with suppress(pymysql.Error):
            rows = self._query(
                "SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs "
                "WHERE PROCESSLIST_ID = %s AND ATTR_NAME = 'program_name'",
                [connection],
            )
            return str(rows[0][0]) if rows else None
        return None

    def _release_lock(self) -> None:
        with suppress(Exception):
            self._query("SELECT RELEASE_LOCK(%s)", [self._lock_name])

    # -- sqlstage's own tables ------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        import pymysql

        try:
            return self._query(sql, params)
        except pymysql.Error as err:
            raise self._statement_error(err, sql) from err

    def table_exists(self, name: str) -> bool:
        return self._table_exists(name)

    def columns(self, table: str) -> list[str]:
        rows = self.query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            [table],
        )
        return [str(row[0]) for row in rows]

    def user_tables(self, limit: int) -> list[str]:
        rows = self.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME NOT LIKE 'sqlstage\\_%%' ORDER BY TABLE_NAME LIMIT %s",
            [limit],
        )
        return [str(row[0]) for row in rows]

    def to_db_time(self, value: datetime) -> Any:
        """DATETIME(6) holds no zone: stored in UTC."""
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def from_db_time(self, value: Any) -> datetime:
        found = super().from_db_time(value)
        return found.replace(tzinfo=UTC) if found.tzinfo is None else found

    # -- backups ------------------------------------------------------------------------
    def check_backup(self) -> None:
        self._dump_tool()

    def backup(self, path: Path) -> None:
        """mariadb-dump (or mysqldump) --single-transaction, routines, triggers and events
        included; the password goes in a 0600 defaults file, never on the command line."""
        tool = self._dump_tool()
        with tempfile.TemporaryDirectory(prefix="sqlstage-dump-") as folder:
            defaults = write_defaults_file(Path(folder), self.target)
            command = [
                tool,
                f"--defaults-extra-file={defaults}",  # must come first
                *self.target.dump_options(),
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                f"--result-file={path}",
                "--",
                self.target.database,
            ]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not path.exists() or path.stat().st_size == 0:
            path.unlink(missing_ok=True)
            message = redact(" ".join(done.stderr.split()), [self.url.password or ""])
            raise Refused(
                f"{Path(tool).name} failed, nothing was applied: {message or 'empty backup'}"
            )

    def _dump_tool(self) -> str:
        tools = self.dump_tools if self.product == "MariaDB" else self.dump_tools[::-1]
        for name in tools:
            found = shutil.which(name)
            if found:
                return found
        raise ConfigError(
            'backup = "mysqldump" but neither mariadb-dump nor mysqldump is installed',
            "install the client tools (e.g. apt-get install mariadb-client)",
        )

    # -- our own queries ----------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql, tuple(params) if params else None)
            return list(cursor.fetchall()) if cursor.description else []

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._query(sql, params)
        return rows[0][0] if rows else None

    def _table_exists(self, name: str) -> bool:
        return bool(
            self._one(
                "SELECT COUNT(*) FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                [name],
            )
        )


def lock_wait_seconds(value: str) -> int:
    """sqlstage's lock_timeout (`"5s"`, `"500ms"`, `"2min"`, a bare number of milliseconds as
    in PostgreSQL, `"0"` for no limit) as whole seconds for lock_wait_timeout.

    >>> lock_wait_seconds("5s"), lock_wait_seconds("500ms"), lock_wait_seconds("0")
    (5, 1, 31536000)
    """
    found = _DURATION.match(value)
    if found is None:
        raise ConfigError(
            f'lock_timeout = "{value}" in sqlstage.toml is not a duration',
            'use a duration such as "5s" or "500ms", or "0" to disable it',
        )
    unit = (found["unit"] or "ms").lower()
    seconds = float(found["number"]) * _UNIT_SECONDS[unit]
    if seconds == 0:
        return _LOCK_WAIT_DEFAULT
    return max(1, -int(-seconds // 1))  # rounded up: never wait less than asked


def _code_and_message(err: Exception) -> tuple[int | None, str]:
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return args[0], str(args[1])
    return None, str(err) or type(err).__name__


def _position(sql: str, message: str) -> int | None:
    """The 1-based character of `sql` a syntax error points at ("near '...' at line 2")."""
    found = _NEAR.search(message)
    if found is None:
        return None
    lines = sql.split("\n")
    line = int(found["line"])
    if not 1 <= line <= len(lines):
        return None
    start = sum(len(text) + 1 for text in lines[: line - 1])
    near = found["near"]
    index = sql.find(near[:40], start) if near else len(sql)
    return index + 1 if index >= 0 else start + 1


DRIVER = MysqlDriver
