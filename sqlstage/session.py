"""One connected environment: its driver, what the database says it is, its lock, its history.

Opening a session checks identity before anything else can happen: a database marked as
another environment, marked protected while the config says otherwise, or holding a marker
table that does not have exactly one row, is refused (exit 3) and the connection closed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TypeVar

from sqlstage.config import CONFIG_FILE, ENV_FILE, Config, Environment, resolve_url
from sqlstage.drivers import connect
from sqlstage.drivers.base import Driver, ServerInfo, StatementError
from sqlstage.errors import ConnectionFailed, Refused
from sqlstage.history import (
    MARKER_TABLE,
    NO_MARKER,
    AppliedMigration,
    History,
    Marker,
    read_marker,
    write_marker,
)
from sqlstage.locking import DEFAULT_LOCK_WAIT_SECONDS
from sqlstage.urls import DatabaseUrl
from sqlstage.user import current_user

T = TypeVar("T")


@dataclass
class Session:
    """An open connection to one environment's database, for the whole run."""

    environment: Environment
    url: DatabaseUrl
    driver: Driver
    info: ServerInfo
    marker: Marker = NO_MARKER
    warnings: tuple[str, ...] = ()
    #: where the URL came from, for messages: "sqlstage.toml", "$DEV_DATABASE_URL", ...
    source: str = CONFIG_FILE
    #: whether this run rewrote status.json
    status_written: bool = False
    #: the live schema's fingerprint after this run's changes, written with its history
    fingerprint: str | None = None
    history: History = field(init=False)

    def __post_init__(self) -> None:
        self.history = History(self.driver)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def secrets(self) -> list[str]:
        return [self.url.password] if self.url.password else []

    def applied(self) -> list[AppliedMigration]:
        """The database's history, oldest first."""
        return own_statement(self, self.history.read)

    @contextmanager
    def locked(
        self,
        wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
        waiting: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        """Hold the database's run lock (re-entrant); raises Locked (exit 3) after
        `wait_seconds`, telling `waiting` who holds it."""
        own_statement(self, lambda: self.driver.lock(wait_seconds, waiting))
        try:
            yield
        finally:
            with suppress(StatementError):  # the connection is gone: so is the lock
                self.driver.unlock()

    def mark(self) -> bool:
        """Record the environment (and whether it is protected) in an unmarked database;
        returns whether it did."""
        if self.marker.present:
            return False
        env = self.environment
        own_statement(
            self, lambda: write_marker(self.driver, env.key, env.protected, current_user())
        )
        self.marker = Marker(env.key, env.protected)
        return True


def open_session(
    config: Config,
    environment: str | Environment,
    ask: Callable[[str], str] | None = None,
    create: bool = True,
    verify_identity: bool = True,
    url: DatabaseUrl | None = None,
) -> Session:
    """Resolve the environment's URL (asking through `ask` when it says `prompt`) and open
    the connection: raises ConnectionFailed (exit 4) with the password masked, and Refused
    (exit 3) when the database says it is something else.

    A fleet's target passes its environment (`url` the target's own spec) and the URL
    already resolved (sqlstage.fleet)."""
    env = config.environment(environment) if isinstance(environment, str) else environment
    if url is None:
        url = resolve_url(config, env, ask)
    driver = connect(
        url,
        f"sqlstage {env.key} {current_user()}",
        create=create,
        pooler=env.pooler,
        environment=env.key,
    )
    session = Session(env, url, driver, driver.info(), source=_source(env))
    try:
        if env.effective_lock_timeout is not None:  # sqlstage's own statements obey it too
            driver.set_lock_timeout(env.effective_lock_timeout)
        session.marker = own_statement(session, lambda: read_marker(driver))
        if verify_identity:
            check_marker(session)
    except BaseException:
        driver.close()
        raise
    literal = env.url != "prompt" and not env.url.startswith("env:")
    if env.protected and literal and url.password:
        session.warnings = (
            f"the password of protected environment '{env.key}' is written in "
            f'{CONFIG_FILE}; use url = "prompt" or url = "env:VAR" instead',
        )
    return session


def _source(env: Environment) -> str:
    if env.url == "prompt":
        return "the prompt"
    if env.url.startswith("env:"):
        variable = env.url[4:]
        if os.environ.get(variable):
            return f"${variable} in the process environment, which overrides {ENV_FILE}"
        return f"${variable} in {ENV_FILE}"
    return CONFIG_FILE


def check_marker(session: Session) -> None:
    """Refuse a database that says it is another environment, or protected when the config
    says it is not, or whose marker table does not hold exactly one row."""
    env, marker = session.environment, session.marker
    where = f"the URL of '{env.key}' (from {session.source})"
    if marker.rows > 1 or (marker.rows == 0 and marker is not NO_MARKER):
        raise Refused(
            f"this database's {MARKER_TABLE} table holds {marker.rows} rows, not one, so "
            "nothing tells which environment it is; nothing was changed",
            f"check {where}; keep the one right row (`DELETE FROM {MARKER_TABLE} WHERE ...`)",
        )
    if marker.present and marker.environment != env.key:
        raise Refused(
            f"this database is marked '{marker.environment}' but you asked for '{env.key}'",
            f"check {where}; nothing was changed (a copy of '{marker.environment}' restored "
            f"as {env.key}? `sqlstage repair {env.key} --remark`)",
        )
    if marker.protected and not env.protected:
        raise Refused(
            f"this database is marked as protected environment '{marker.environment}', but "
            f"{CONFIG_FILE} does not say '{env.key}' is protected; nothing was changed",
            f"set protected = true in [environments.{env.key}], or check {where}",
        )


def own_statement(session: Session, action: Callable[[], T]) -> T:
    """Run sqlstage's own statements (history, marker, lock): a database error there is
    one line, exit 4, naming the environment and what to grant."""
    try:
        return action()
    except StatementError as error:
        env = session.environment
        if error.code in session.driver.facts.lock_timeout_codes:
            raise Refused(
                f"{env.key}: sqlstage's own tables are locked by another session and "
                f"lock_timeout {env.effective_lock_timeout} ran out; nothing was changed",
                "find the session holding them (pg_locks) and try again",
            ) from error
        raise ConnectionFailed(
            f"{env.key}: the database refused sqlstage's bookkeeping: {error.message}",
            f"let {session.info.user or 'the user'} create and write tables in "
            f"{_schema(session)} (e.g. GRANT CREATE ON SCHEMA ...), or use a role that may",
        ) from error


def _schema(session: Session) -> str:
    schema = getattr(session.driver, "schema", None)
    return f"schema {schema}" if schema else "the database"
