"""A fleet's targets: the databases (or schemas) one environment names, each with a stable
name, opened as one database through `session.open_session`.

    [environments.pro]
    targets = ["env:TENANT_A_URL", "env:TENANT_B_URL"]   # or targets_file = "tenants.txt"
    # schemas = ["tenant_a", "tenant_b"] with url = "env:PRO_URL"

A target's name is the name before its URL in the targets_file, its schema, or its URL's
`host:port/database` (never the user or password); the fleet's record (`fleet_record`) is
kept by name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from sqlstage import fleet_record
from sqlstage.config import SCHEMA_NAME, Config, Environment, resolve_url
from sqlstage.errors import ConfigError, Refused, SqlstageError
from sqlstage.history import AppliedMigration
from sqlstage.project import Project
from sqlstage.session import Session, open_session
from sqlstage.status_file import (
    DriftVerdict,
    EnvironmentState,
    Recorded,
    StatusFile,
    with_environment,
)
from sqlstage.urls import DatabaseUrl

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """One database (or schema) of a fleet. `environment` is the fleet's, with `url` the
    target's own spec, so every rule and message of one database holds for it."""

    name: str
    environment: Environment
    url: DatabaseUrl = field(repr=False)
    schema: str | None = None


def targets(
    config: Config,
    env: Environment,
    ask: Callable[[str], str] | None = None,
    only: Sequence[str] = (),
) -> list[Target]:
    """The fleet's targets in configured order (narrowed to `only`, by name). URLs from
    `env:VAR` are read here; names are stable: given in targets_file, the schema's name, or
    the URL's host, port and database (never its user or password)."""
    if not env.is_fleet:
        raise ConfigError(f"{env.key} is one database, not a fleet: it has no targets")
    if env.schemas or env.schemas_query:
        base = resolve_url(config, env, ask)
        schemas = env.schemas or _queried_schemas(env, base)
        found = [_schema_target(env, base, schema) for schema in schemas]
    elif env.targets_file:
        found = _from_file(config, env)
    elif env.targets_query:
        found = _queried_targets(config, env)
    else:
        found = [_target(config, env, None, spec, "sqlstage.toml") for spec in env.targets]
    _check_unique(env, found)
    names = {target.name for target in found}
    unknown = [name for name in env.canary_names if name not in names]
    if unknown:
        raise ConfigError(
            f"environments.{env.key}.canary names {unknown[0]}, which is not one of its targets",
            f"a target's name is its schema, the name before its URL in the targets_file, or "
            f"host:port/database (`sqlstage check {env.key}` lists them)",
        )
    return _narrowed(env, found, only)


def _target(config: Config, env: Environment, name: str | None, spec: str, where: str) -> Target:
    target_env = replace(env, url=spec)
    try:
        url = resolve_url(config, target_env)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error.message}", error.fix) from error
    return Target(name or derived_name(url, config.root), target_env, url)


def _schema_target(env: Environment, base: DatabaseUrl, schema: str) -> Target:
    if base.dialect != "postgresql":
        raise ConfigError(
            f"environments.{env.key}.schemas: schema-per-tenant needs PostgreSQL "
            f"({base.masked} is {base.dialect})"
        )
    if "options=" in base.raw:
        raise ConfigError(
            f"environments.{env.key}: a fleet of schemas sets each one's search_path through "
            "the URL's options parameter, which this URL already gives",
            "move those settings into the migrations, or drop options= from the URL",
        )
    joiner = "&" if "?" in base.raw else "?"
    option = f"{joiner}options=-csearch_path%3D{schema}"
    url = replace(base, raw=base.raw + option, masked=base.masked + option)
    return Target(schema, env, url, schema)


def _from_file(config: Config, env: Environment) -> list[Target]:
    """targets_file: a URL or env:VAR a line, optionally after a name (`acme env:ACME_URL`);
    blank lines and `#` comments skipped."""
    path = config.root / (env.targets_file or "")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"environments.{env.key}.targets_file: cannot read {path}: {err.strerror}",
            "create it with one URL (or env:VAR) a line; keep it out of git",
        ) from err
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split() if not line.lstrip().startswith("#") else []
        if not words:
            continue
        if len(words) > 2:
            raise ConfigError(f"{path}:{number}: expected `URL` or `NAME URL`, not more words")
        name, spec = (None, words[0]) if len(words) == 1 else (words[0], words[1])
        found.append(_target(config, env, name, spec, f"{path}:{number}"))
    if not found:
        raise ConfigError(f"{path}: lists no targets", "one URL (or env:VAR) a line")
    return found


def _query(env: Environment, url: DatabaseUrl, what: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of a fleet's query (targets_query, schemas_query); a failure is one line."""
    from sqlstage.drivers import connect
    from sqlstage.drivers.base import StatementError

    driver = connect(url, f"sqlstage {env.key} {what}", create=False, environment=env.key)
    try:
        return driver.query(sql)
    except StatementError as error:
        raise ConfigError(
            f"environments.{env.key}.{what} failed on {url.masked}: {error.message}",
            f"fix the query in sqlstage.toml: it returns {_SHAPES[what]}",
        ) from error
    finally:
        driver.close()


_SHAPES = {"targets_query": "(name, url) rows", "schemas_query": "one schema name a row"}


def _queried_targets(config: Config, env: Environment) -> list[Target]:
    control = resolve_url(config, replace(env, url=env.control_url or ""))
    found = []
    for row in _query(env, control, "targets_query", env.targets_query or ""):
        if len(row) != 2 or not all(isinstance(value, str) and value for value in row):
            raise ConfigError(
                f"environments.{env.key}.targets_query must return (name, url) rows of text"
            )
        found.append(_target(config, env, row[0], row[1], "targets_query"))
    return found


def _queried_schemas(env: Environment, base: DatabaseUrl) -> list[str]:
    names = []
    for row in _query(env, base, "schemas_query", env.schemas_query or ""):
        name = row[0] if len(row) == 1 else None
        if not isinstance(name, str) or not SCHEMA_NAME.fullmatch(name):
            raise ConfigError(
                f"environments.{env.key}.schemas_query returned {name!r}, not a lowercase "
                "schema name (a-z, 0-9, _)",
                "return one column of plain schema names",
            )
        names.append(name)
    return names


def derived_name(url: DatabaseUrl, root: Path) -> str:
    """`127.0.0.1:5433/tenant_01` for a server, the file's path (relative to the project)
    for SQLite."""
    if url.sqlite_path is not None:
        path = url.sqlite_path
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    rest = url.masked.split("://", 1)[-1].split("?", 1)[0]
    return rest.rpartition("@")[2] or "local"


def _check_unique(env: Environment, found: list[Target]) -> None:
    seen: set[str] = set()
    for target in found:
        if target.name in seen:
            raise ConfigError(
                f"{env.key}: two targets are both named {target.name}",
                "each database of a fleet is listed once",
            )
        seen.add(target.name)


def _narrowed(env: Environment, found: list[Target], only: Sequence[str]) -> list[Target]:
    if not only:
        return found
    names = {target.name for target in found}
    unknown = [name for name in only if name not in names]
    if unknown:
        shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
        raise ConfigError(f"--target {unknown[0]}: {env.key} has no such target (it has {shown})")
    return [target for target in found if target.name in only]


@contextmanager
def target_session(
    config: Config, target: Target, create: bool = True, verify_identity: bool = True
) -> Iterator[Session]:
    """The target opened as one database; a tenant schema that does not exist is refused
    (its search_path would fall through to another schema)."""
    session = open_session(
        config, target.environment, create=create, verify_identity=verify_identity, url=target.url
    )
    session.driver.schema_only = target.schema is not None  # the other tenants are not its
    with session:
        actual = getattr(session.driver, "schema", None)
        if target.schema is not None and actual != target.schema:
            raise Refused(
                f"schema {target.schema} does not exist in {session.url.masked}; nothing "
                "was changed",
                f"create it (CREATE SCHEMA {target.schema}) or remove it from schemas",
            )
        yield session


#: one target's drift verdict is merged into the fleet's under this lock
_DRIFT_LOCK = threading.Lock()


class TargetProject(Project):
    """The project as one target of a fleet sees it: the environment is that one database,
    so `sqlstage.commands` (repair, baseline, check, status --live) runs on it with every
    rule of one database; what it records goes to the fleet's record and status.json's
    entry for the fleet, not over it."""

    def __init__(
        self, project: Project, target: Target, record: fleet_record.FleetRecord | None = None
    ) -> None:
        env = target.environment
        self.fleet_config = project.config
        self.target = target
        one = replace(
            env,
            url=target.url.raw if target.schema else env.url,
            targets=(),
            targets_file=None,
            schemas=(),
        )
        super().__init__(
            replace(project.config, environments={**project.config.environments, env.key: one})
        )
        self.__dict__["catalog"] = project.catalog  # one catalog for the fleet: files read once
        self.record_name = f"{fleet_record.FLEET_DIR}/{env.key}.json"
        #: the fleet's record as read once for every target (None: read it when asked)
        self.record = record

    @property
    def key(self) -> str:
        return self.target.environment.key

    def state(self) -> fleet_record.TargetState | None:
        """What the fleet's record says of this target."""
        record = self.record
        if record is None:
            path = fleet_record.record_path(self.fleet_config, self.key)
            record = fleet_record.read_record(path, self.key)
        return record.targets.get(self.target.name)

    def read_status(self) -> StatusFile:
        """status.json as this target sees it: its environment's entry is the target's
        place in the fleet's record (checksums are in the database)."""
        status = super().read_status()
        state = self.state()
        if state is None:
            return with_environment(status, self.key, EnvironmentState(self.key, complete=True))
        names = [m.name for m in self.catalog.migrations if state.has(m.name, self.catalog)]
        entry = EnvironmentState(
            self.target.environment.name,
            state.last_applied,
            state.applied_at,
            tuple(Recorded(name) for name in names),
        )
        return with_environment(status, self.key, entry)

    def record_drift(
        self, key: str, fingerprint: str | None = None, verdict: DriftVerdict | None = None
    ) -> bool:
        """One target's schema is not the fleet's: its fingerprint stays out of the fleet's
        entry, and its verdict (apply's check) replaces only its own objects in the fleet's
        verdict, each named `TARGET: object` (`sqlstage.fleet.drift` records the whole)."""
        if verdict is None:
            return False
        mine = f"{self.target.name}: "
        with _DRIFT_LOCK:  # the fleet's targets are checked in parallel threads
            status = super().read_status().environments.get(self.key)
            before = status.drift if status is not None else None
            others = [o for o in (before.objects if before else ()) if not o.startswith(mine)]
            objects = (*others, *(mine + label for label in verdict.objects))
            stamp = verdict.checked_at
            merged = DriftVerdict(stamp, not objects, stamp if objects else None, objects)
            return super().record_drift(key, verdict=merged)

    def record_status(
        self,
        environment: Environment,
        history: list[AppliedMigration],
        rebuild: bool = False,
        keep: Sequence[Recorded] = (),
        fingerprint: str | None = None,
    ) -> bool:
        """The target's history into the fleet's record; its `fingerprint` stays out of the
        fleet's entry (one target's schema is not the fleet's)."""
        config, key = self.fleet_config, environment.key
        state = fleet_record.target_state(history, self.catalog)
        fleet_record.update_targets(config, key, {self.target.name: state})
        fleet_env = config.environment(key)
        return fleet_record.record_status(config, self.catalog, fleet_env, [history])


def target_projects(
    project: Project,
    environment: str,
    only: Sequence[str] = (),
    ask: Callable[[str], str] | None = None,
) -> list[TargetProject]:
    """Each chosen target of the fleet as a project of one database (`sqlstage.commands`
    runs on it unchanged)."""
    env = project.config.environment(environment)
    return [TargetProject(project, t) for t in targets(project.config, env, ask, only)]


def one_target(project: Project, environment: str, only: Sequence[str], what: str) -> TargetProject:
    """The one target a command that changes records (repair, baseline) works on."""
    if len(only) != 1:
        raise ConfigError(
            f"{environment} is a fleet: {what} works on one target at a time",
            f"name it: --target NAME (`sqlstage check {environment}` lists them)",
        )
    return target_projects(project, environment, only)[0]


def each(
    projects: Sequence[TargetProject], action: Callable[[TargetProject], T], parallel: int
) -> list[tuple[str, T | SqlstageError]]:
    """`action` on every target, `parallel` at a time, in the targets' order: its result
    or the error it raised (its message naming the target)."""

    def one(project: TargetProject) -> T | SqlstageError:
        try:
            return action(project)
        except SqlstageError as error:
            return error

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="target") as pool:
        results = list(pool.map(one, projects))
    return [(p.target.name, result) for p, result in zip(projects, results, strict=True)]
