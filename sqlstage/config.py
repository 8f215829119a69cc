"""sqlstage.toml and .env.local -> `Config` and `Environment` values."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlstage import pooler
from sqlstage.drift.settings import DriftSettings, parse_drift
from sqlstage.errors import ConfigError
from sqlstage.urls import DatabaseUrl, parse_url

CONFIG_FILE = "sqlstage.toml"
ENV_FILE = ".env.local"
DEFAULTS = {
    "migrations": "database/migrations/sql",
    "status_file": "database/migrations/status.json",
    "log_dir": "logs/migrations",
}
ENVIRONMENT_KEYS = {
    "name",
    "url",
    "protected",
    "requires",
    "allow_non_interactive",
    "lock_timeout",
    "backup",
    "verify_url",
    "schema_dump",
    "pooler",
    # fleets (sqlstage.fleet): many targets instead of one url
    "targets",
    "targets_file",
    "schemas",
    "parallel",
    "canary",
    "targets_query",
    "schemas_query",
    "control_url",
}
#: top-level keys that are not paths or tables
OPTIONAL_KEYS = ("verify_url",)
#: PostgreSQL's default for protected environments: fail fast instead of queueing traffic
PROTECTED_LOCK_TIMEOUT = "5s"
#: a unit is required: PostgreSQL reads a bare 5 as five milliseconds
_DURATION = re.compile(r"^(0|(?P<number>[0-9]+(\.[0-9]+)?)[ \t]*(?P<unit>us|ms|s|min|h|d))$")
_UNIT_MS = {"us": "0.001", "ms": "1", "s": "1000", "min": "60000", "h": "3600000", "d": "86400000"}
#: the largest lock_timeout PostgreSQL takes: an int of milliseconds
MAX_LOCK_TIMEOUT_MS = 2**31 - 1
BACKUP_KINDS = {"pg_dump", "sqlite", "mysqldump", "mariadb-dump"}
#: an environment's key is part of file names (logs, backups): no `/`, `..` or capitals
ENVIRONMENT_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
#: a tenant schema: a plain identifier, never quoted
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

#: where `schema_dump = true` writes the schema
DEFAULT_SCHEMA_DUMP = "database/schema.sql"


@dataclass(frozen=True)
class Environment:
    """One named target: `dev`, `staging`, `pro`.

    `url` is how to find the connection: `env:VAR`, `prompt`, or a literal URL.
    """

    key: str
    name: str
    url: str
    protected: bool = False
    #: the environment that must have applied a migration (same checksum) before this one may
    requires: str | None = None
    #: the committed config's permission for unattended runs of a protected environment
    allow_non_interactive: bool = False
    #: PostgreSQL lock_timeout per migration; None = the default for the environment
    lock_timeout: str | None = None
    #: take a backup before applying: "pg_dump", "mysqldump"/"mariadb-dump" or "sqlite";
    #: None = only warn (protected)
    backup: str | None = None
    #: where `sqlstage verify` makes its scratch database when this environment is its base
    verify_url: str | None = None
    #: where to write the schema after each apply and rollback (relative to the root), or None
    schema_dump: str | None = None
    #: "detect": refuse a transaction-mode connection pooler (exit 4); "transaction": run
    #: through one on purpose, with a lease row as the run lock and no session state
    pooler: str = "detect"
    #: a fleet (sqlstage.fleet): each a URL or `env:VAR` (`url` is then absent) ...
    targets: tuple[str, ...] = ()
    #: ... or a file of them, one a line, relative to the root (not committed) ...
    targets_file: str | None = None
    #: ... or schemas of the one database at `url` (schema-per-tenant)
    schemas: tuple[str, ...] = ()
    #: how many targets of a fleet run at once
    parallel: int = 4
    #: the fleet's first targets, run one by one before the rest: how many, or their names
    canary: int | tuple[str, ...] = 1
    #: targets from a query returning (name, url) rows, run on `control_url` ...
    targets_query: str | None = None
    control_url: str | None = None
    #: ... or schemas from a query returning their names, run on `url`
    schemas_query: str | None = None

    @property
    def canary_names(self) -> tuple[str, ...]:
        return self.canary if isinstance(self.canary, tuple) else ()

    @property
    def is_fleet(self) -> bool:
        return bool(
            self.targets
            or self.targets_file
            or self.schemas
            or self.targets_query
            or self.schemas_query
        )

    @property
    def effective_lock_timeout(self) -> str | None:
        """The lock_timeout to set, or None to leave the server's ("0" disables it)."""
        value = self.lock_timeout
        if value is None:
            value = PROTECTED_LOCK_TIMEOUT if self.protected else None
        return None if value in (None, "0") else value

    @property
    def label(self) -> str:
        """`dev (Development)`"""
        return f"{self.key} ({self.name})" if self.name != self.key else self.key


@dataclass(frozen=True)
class LintConfig:
    """`[lint]`: rules switched off, rules down-graded to warnings, the oldest server to
    target (None: the connected server's version, else sqlstage.lint's default)."""

    disable: tuple[str, ...] = ()
    warn: tuple[str, ...] = ()
    pg_version: int | None = None


@dataclass(frozen=True)
class Config:
    """sqlstage.toml, read and checked: the project's folders and its environments."""

    root: Path
    migrations_dir: Path
    status_file: Path
    log_dir: Path
    environments: dict[str, Environment]
    lint: LintConfig = LintConfig()
    verify_url: str | None = None
    #: `[drift]`: which environments are checked before a change, what is noise
    drift: DriftSettings = field(default_factory=DriftSettings)

    def environment(self, key: str) -> Environment:
        try:
            return self.environments[key]
        except KeyError:
            known = ", ".join(self.environments) or "none"
            raise ConfigError(
                f"unknown environment '{key}' (configured: {known})",
                f"add [environments.{key}] to {self.root / CONFIG_FILE}",
            ) from None


def find_root(start: Path) -> Path:
    """The nearest folder at or above `start` that holds sqlstage.toml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {CONFIG_FILE} in {start} or any folder above it",
        "run `sqlstage init` in your project's root, or pass -C DIR",
    )


def load_config(start: Path) -> Config:
    root = find_root(start)
    path = root / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # editors may add a BOM
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not valid UTF-8") from err
    return parse_config(root, data)


def parse_config(root: Path, data: dict[str, Any]) -> Config:
    where = root / CONFIG_FILE
    tables = ("environments", "lint", "drift")
    unknown = set(data) - {*DEFAULTS, *OPTIONAL_KEYS, *tables}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{sorted(unknown)[0]}'",
            "the top-level keys are " + ", ".join([*DEFAULTS, *OPTIONAL_KEYS, *tables]),
        )
    paths = {}
    for key, default in DEFAULTS.items():
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: '{key}' must be a path in quotes")
        paths[key] = root / value
    tables = data.get("environments", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{where}: 'environments' must be a table: [environments.dev]")
    environments = {key: _environment(where, key, table) for key, table in tables.items()}
    _check_requires(where, environments)
    _check_schema_dumps(where, environments)
    return Config(
        root=root,
        migrations_dir=paths["migrations"],
        status_file=paths["status_file"],
        log_dir=paths["log_dir"],
        environments=environments,
        lint=_lint(where, data.get("lint", {})),
        verify_url=_verify_url(where, "verify_url", data.get("verify_url")),
        drift=parse_drift(where, data.get("drift", {}), set(environments)),
    )


def _lint(where: Path, table: Any) -> LintConfig:
    """`[lint]`; rule ids are checked when linting (sqlstage.lint knows them)."""
    if not isinstance(table, dict) or set(table) - {"disable", "warn", "pg_version"}:
        raise ConfigError(f"{where}: [lint] takes disable = [...], warn = [...], pg_version = 15")
    lists = {}
    for key in ("disable", "warn"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f'{where}: lint.{key} must be a list of rule ids: ["truncate"]')
        lists[key] = tuple(value)
    version = table.get("pg_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise ConfigError(f"{where}: lint.pg_version must be a major version number: 15")
    return LintConfig(lists["disable"], lists["warn"], version)


def _verify_url(where: Path, key: str, value: Any) -> str | None:
    """`verify_url`: like an environment's url (`env:VAR` or a URL; not `prompt`)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value.strip() == "prompt":
        raise ConfigError(
            f"{where}: '{key}' must be \"env:VAR\" or a database URL in quotes",
            "it names a server where `sqlstage verify` may CREATE DATABASE",
        )
    return value.strip()


def _environment(where: Path, key: str, table: Any) -> Environment:
    if not ENVIRONMENT_KEY.fullmatch(key):
        raise ConfigError(
            f"{where}: environment name {key!r} is not a lowercase name of up to 63 "
            "characters: it becomes part of file names (logs, backups)",
            "start with a letter a-z, then a-z, 0-9, _ or -: [environments.pro-eu]",
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: environments.{key} must be a table")
    unknown = set(table) - ENVIRONMENT_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{sorted(unknown)[0]}' in [environments.{key}]",
            f"the keys are {', '.join(sorted(ENVIRONMENT_KEYS))}",
        )
    fleet = fleet_settings(where, key, table)
    listed = bool(fleet["targets"] or fleet["targets_file"] or fleet["targets_query"])
    url = table.get("url", "" if listed else None)
    if not isinstance(url, str) or not (url.strip() or listed):
        raise ConfigError(
            f'{where}: [environments.{key}] needs url = "env:DATABASE_URL", "prompt" '
            'or a database URL (or targets = ["env:TENANT_A_URL", ...] for a fleet)'
        )
    if url.strip() and listed:
        raise ConfigError(
            f"{where}: [environments.{key}] gives both url and targets",
            "a fleet lists its databases in targets (or targets_file); schemas = [...] goes "
            "with url",
        )
    name = table.get("name", key)
    if not isinstance(name, str):
        raise ConfigError(f"{where}: environments.{key}.name must be a string")
    return Environment(
        key=key,
        name=name,
        url=url.strip(),
        protected=_bool(where, key, table, "protected"),
        requires=_optional_str(where, key, table, "requires"),
        allow_non_interactive=_bool(where, key, table, "allow_non_interactive"),
        lock_timeout=_lock_timeout(where, key, table.get("lock_timeout")),
        backup=_backup(where, key, table.get("backup")),
        verify_url=_verify_url(where, f"environments.{key}.verify_url", table.get("verify_url")),
        schema_dump=_schema_dump(where, key, table.get("schema_dump", False)),
        pooler=pooler.check_setting(table.get("pooler", "detect"), key),
        **fleet,
    )


def fleet_settings(where: Path, key: str, table: dict[str, Any]) -> dict[str, Any]:
    """A fleet's keys: `targets`, `targets_file`, `schemas`, `parallel`, `canary`."""
    name = f"{where}: environments.{key}"
    settings: dict[str, Any] = {}
    for list_key in ("targets", "schemas"):
        value = table.get(list_key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError(
                f'{name}.{list_key} must be a list of strings: {list_key} = ["...", "..."]'
            )
        settings[list_key] = tuple(v.strip() for v in value)
    for schema in settings["schemas"]:
        if not SCHEMA_NAME.fullmatch(schema):
            raise ConfigError(
                f"{name}.schemas: {schema!r} is not a lowercase schema name of up to 63 "
                "characters (a-z, 0-9, _; a letter or _ first)"
            )
    for text_key in ("targets_file", "targets_query", "schemas_query"):
        settings[text_key] = _optional_str(where, key, table, text_key)
    kinds = ("targets", "targets_file", "targets_query", "schemas", "schemas_query")
    given = [k for k in kinds if settings[k]]
    if len(given) > 1:
        raise ConfigError(f"{name} gives both {given[0]} and {given[1]}: give one of them")
    control = table.get("control_url")
    if control is not None and (not isinstance(control, str) or not control.strip()):
        raise ConfigError(f'{name}.control_url must be "env:VAR" or a database URL in quotes')
    settings["control_url"] = control.strip() if control else None
    if bool(settings["targets_query"]) != bool(settings["control_url"]):
        raise ConfigError(
            f"{name}: targets_query and control_url go together",
            'targets_query = "SELECT name, url FROM tenants" runs on control_url = "env:VAR"',
        )
    parallel = table.get("parallel", 4)
    if isinstance(parallel, bool) or not isinstance(parallel, int) or not 1 <= parallel <= 64:
        raise ConfigError(f"{name}.parallel must be a number from 1 to 64 (got {parallel!r})")
    settings["parallel"] = parallel
    canary = table.get("canary", 1)
    if isinstance(canary, list) and all(isinstance(c, str) and c for c in canary):
        settings["canary"] = tuple(canary)
    elif isinstance(canary, int) and not isinstance(canary, bool) and canary >= 0:
        settings["canary"] = canary
    else:
        raise ConfigError(
            f"{name}.canary must be a number of targets (0 for none) or a list of target "
            f'names: canary = 1, canary = ["tenant_a"] (got {canary!r})'
        )
    if table.get("pooler") == "transaction" and (settings["schemas"] or settings["schemas_query"]):
        raise ConfigError(
            f'{name}: schemas and pooler = "transaction" do not go together (a transaction '
            "pooler does not pass on each schema's search_path)",
            "give the fleet a direct URL (or a session pooler)",
        )
    return settings


def _schema_dump(where: Path, key: str, value: Any) -> str | None:
    """`schema_dump = true` (database/schema.sql) or a path relative to sqlstage.toml."""
    if value is True:
        return DEFAULT_SCHEMA_DUMP
    if value is False:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{where}: environments.{key}.schema_dump must be true, false or a path in quotes "
            f"(got {value!r})",
            f"schema_dump = true writes {DEFAULT_SCHEMA_DUMP}; "
            'schema_dump = "db/schema.sql" another file',
        )
    return value.strip()


def _bool(where: Path, key: str, table: dict[str, Any], name: str) -> bool:
    value = table.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: environments.{key}.{name} must be true or false")
    return value


def _optional_str(where: Path, key: str, table: dict[str, Any], name: str) -> str | None:
    value = table.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where}: environments.{key}.{name} must be a string")
    return value


def _lock_timeout(where: Path, key: str, value: Any) -> str | None:
    """A duration PostgreSQL's `SET lock_timeout` takes and keeps: a unit, at most
    2147483647 ms, and not so small that it rounds to 0 (which would disable it)."""
    if value is None:
        return None
    name = f"{where}: environments.{key}.lock_timeout"
    text = str(value).strip() if isinstance(value, int | str) and value is not True else ""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(
            f"{name} must be a duration with its unit, like "
            f'"5s" or "500ms", or "0" to disable (got {value!r}; PostgreSQL would read a bare '
            "number as milliseconds)"
        )
    if text == "0":
        return text
    from decimal import ROUND_HALF_EVEN, Decimal  # exact, where a float would round

    number = Decimal(match["number"])
    milliseconds = (number * Decimal(_UNIT_MS[match["unit"]])).to_integral_value(ROUND_HALF_EVEN)
    if milliseconds > MAX_LOCK_TIMEOUT_MS:
        raise ConfigError(
            f'{name} = "{text}" is longer than PostgreSQL allows ({MAX_LOCK_TIMEOUT_MS} ms, '
            "about 24 days)",
            'a migration should give up in seconds: lock_timeout = "5s"',
        )
    if milliseconds == 0 and number != 0:
        raise ConfigError(
            f'{name} = "{text}" rounds to 0 ms in PostgreSQL, which disables the timeout '
            "(a lock wait would never end)",
            'give at least "1ms", or "0" to disable it on purpose',
        )
    return text


def _backup(where: Path, key: str, value: Any) -> str | None:
    if value is None or value is False:
        return None
    if value not in BACKUP_KINDS:
        raise ConfigError(
            f'{where}: environments.{key}.backup must be "pg_dump", "mysqldump", "mariadb-dump" '
            f'or "sqlite" (got {value!r})'
        )
    return str(value)


def _check_schema_dumps(where: Path, environments: dict[str, Environment]) -> None:
    """Two environments writing one file would overwrite each other's schema on every run."""
    seen: dict[str, str] = {}
    for env in environments.values():
        if env.schema_dump is None:
            continue
        path = os.path.normpath(env.schema_dump)
        if path in seen:
            raise ConfigError(
                f"{where}: environments {seen[path]} and {env.key} both write their schema to "
                f"{env.schema_dump}",
                f'give one of them schema_dump = "database/schema-{env.key}.sql"',
            )
        seen[path] = env.key


def _check_requires(where: Path, environments: dict[str, Environment]) -> None:
    for env in environments.values():
        if env.requires is not None and (
            env.requires not in environments or env.requires == env.key
        ):
            raise ConfigError(
                f"{where}: environments.{env.key}.requires names '{env.requires}', "
                "which is not another configured environment",
                f"configured: {', '.join(environments)}",
            )


def resolve_url(
    config: Config, environment: Environment, ask: Callable[[str], str] | None = None
) -> DatabaseUrl:
    """The environment's connection URL.

    `env:VAR` reads the process environment, then .env.local (never for a protected
    environment: production credentials do not live in files). `prompt` calls `ask` with a
    question; the answer is used for this run only.
    """
    spec = environment.url
    if spec == "prompt":
        if ask is None:
            raise ConfigError(
                f"environment '{environment.key}' asks for its URL at a prompt, "
                "and this run cannot prompt"
            )
        raw = ask(f"Database URL for {environment.label}")
        if not raw.strip():
            raise ConfigError(f"environment '{environment.key}': no URL was given")
    elif spec.startswith("env:"):
        variable = spec[len("env:") :]
        raw = os.environ.get(variable) or _from_env_file(config, environment, variable)
    else:
        raw = spec
    return parse_url(raw, config.root, environment.key)


def _from_env_file(config: Config, environment: Environment, variable: str) -> str:
    env_file = config.root / ENV_FILE
    if not environment.protected and env_file.is_file():
        from dotenv import dotenv_values

        value = dotenv_values(env_file).get(variable)
        if value:
            return value
    where = "the process environment" if environment.protected else f"the environment or {ENV_FILE}"
    raise ConfigError(
        f"environment '{environment.key}' reads its URL from ${variable}, "
        f"which is not set in {where}",
        f"export {variable}=postgresql://user@host/db"
        + ("" if environment.protected else f" or add it to {ENV_FILE}"),
    )
