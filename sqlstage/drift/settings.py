"""`[drift]` in sqlstage.toml: which environments are checked before a change, what is noise.

```toml
[drift]
ignore = ["extension *", "role monitoring", "schema audit"]

[drift.pro]
check = true                   # default: protected environments are checked
roles = { app_pro = "app" }    # pro's role app_pro is called app elsewhere
ignore = ["index *_hotfix"]    # only for pro
```

A pattern is `KIND GLOB` (an object of that kind whose full name matches: `index
posts_*`, `grant table posts`, `extension *`), `schema NAME` (the schema and every object in
it), `role NAME` (privileges granted to the role, and what it owns), or `*`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlstage.errors import ConfigError

if TYPE_CHECKING:
    from sqlstage.schema import SchemaObject, Snapshot

#: kinds whose definitions name roles (renamed by `roles`, filtered by `role NAME`)
ROLE_KINDS = ("grant", "owner", "policy")
_MULTI_WORD = ("materialized view", "composite type", "range type", "event trigger")
_ENV_KEYS = {"check", "roles", "ignore"}


@dataclass(frozen=True)
class Pattern:
    """One `ignore` entry, parsed: `kind` is `*`, a kind, `schema` or `role`."""

    text: str
    kind: str
    name: str

    def drops(self, item: SchemaObject) -> bool:
        if self.kind == "*":
            return True
        if self.kind == "schema":
            return _in_schema(item, self.name)
        if self.kind == "role":
            return item.kind == "owner" and fnmatchcase(item.definition, self.name)
        return fnmatchcase(item.kind, self.kind) and fnmatchcase(item.name, self.name)


@dataclass(frozen=True)
class EnvironmentDrift:
    """`[drift.ENV]`: `check` None means the default (protected environments are checked)."""

    check: bool | None = None
    #: this environment's role name -> the name the others use
    roles: dict[str, str] = field(default_factory=dict)
    ignore: tuple[Pattern, ...] = ()


@dataclass(frozen=True)
class DriftSettings:
    ignore: tuple[Pattern, ...] = ()
    environments: dict[str, EnvironmentDrift] = field(default_factory=dict)

    def of(self, key: str) -> EnvironmentDrift:
        return self.environments.get(key, EnvironmentDrift())

    def checked(self, key: str, protected: bool) -> bool:
        """Whether `apply` and `rollback` run the drift check first."""
        setting = self.of(key).check
        return protected if setting is None else setting

    def changes_nothing(self, key: str) -> bool:
        """Whether `normalise` gives environment `key`'s snapshots back as they are (no
        roles renamed, nothing ignored)."""
        env = self.of(key)
        return not env.roles and not self.ignore and not env.ignore

    def normalise(self, key: str, snap: Snapshot, also: dict[str, str] | None = None) -> Snapshot:
        """`snap` as environment `key` is compared: its roles renamed (`roles`, then
        `also`), ignored objects and role privileges left out."""
        from sqlstage.schema import make_snapshot

        if not also and self.changes_nothing(key):  # a snapshot is made sorted, ours left out
            return snap
        env = self.of(key)
        roles = {**env.roles, **(also or {})}
        patterns = (*self.ignore, *env.ignore)
        ignored_roles = [p.name for p in patterns if p.kind == "role"]
        kept = []
        for item in snap.objects:
            item = _renamed(item, roles) if roles and item.kind in ROLE_KINDS else item
            if item.kind == "grant" and ignored_roles:
                item = _without_roles(item, ignored_roles)
                if not item.definition:
                    continue
            if not any(pattern.drops(item) for pattern in patterns):
                kept.append(item)
        return make_snapshot(snap.dialect, kept)


def parse_drift(where: Path, table: Any, environments: set[str]) -> DriftSettings:
    """The `[drift]` table; errors name the key and say what it takes."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [drift] must be a table", _SHAPE)
    settings: dict[str, EnvironmentDrift] = {}
    for key, value in table.items():
        if key == "ignore" and not isinstance(value, dict):
            continue
        if key not in environments:
            raise ConfigError(
                f"{where}: [drift.{key}] names no configured environment",
                f"configured: {', '.join(sorted(environments)) or 'none'}; {_SHAPE}",
            )
        settings[key] = _environment(where, key, value)
    ignore = table.get("ignore", [])
    return DriftSettings(_patterns(where, "drift.ignore", ignore), settings)


_SHAPE = (
    '[drift] takes ignore = ["index *_tmp", "role monitoring", "schema audit"], and '
    '[drift.ENV] check = true|false, roles = { live_name = "name" }, ignore = [...]'
)


def _environment(where: Path, key: str, value: Any) -> EnvironmentDrift:
    if not isinstance(value, dict) or set(value) - _ENV_KEYS:
        raise ConfigError(f"{where}: [drift.{key}] takes check, roles and ignore", _SHAPE)
    check = value.get("check")
    if check is not None and not isinstance(check, bool):
        raise ConfigError(f"{where}: drift.{key}.check must be true or false")
    roles = value.get("roles", {})
    if not isinstance(roles, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in roles.items()
    ):
        raise ConfigError(
            f"{where}: drift.{key}.roles must map role names to role names",
            'roles = { app_pro = "app" }: role app_pro here is called app elsewhere',
        )
    return EnvironmentDrift(
        check, dict(roles), _patterns(where, f"drift.{key}.ignore", value.get("ignore", []))
    )


def _patterns(where: Path, key: str, value: Any) -> tuple[Pattern, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key} must be a list of object patterns", _SHAPE)
    return tuple(parse_pattern(text) for text in value)


def parse_pattern(text: str) -> Pattern:
    """`index posts_*` -> Pattern(kind="index", name="posts_*").

    >>> parse_pattern("materialized view reports.*")
    Pattern(text='materialized view reports.*', kind='materialized view', name='reports.*')
    >>> parse_pattern("extension").name
    '*'
    """
    words = " ".join(text.split())
    kind = next((k for k in _MULTI_WORD if words == k or words.startswith(k + " ")), None)
    if kind is None:
        kind = words.split(" ", 1)[0]
    name = words[len(kind) :].strip() or "*"
    return Pattern(text, kind, name)


def _in_schema(item: SchemaObject, schema: str) -> bool:
    if item.kind == "schema":
        return fnmatchcase(item.name, schema)
    for name in (item.name, item.table, item.name.split(" ")[-1]):
        if "." in name and fnmatchcase(name.split(".", 1)[0], schema):
            return True
    return False


def _renamed(item: SchemaObject, roles: dict[str, str]) -> SchemaObject:
    def swap(found: re.Match[str]) -> str:
        return roles.get(found.group(0), found.group(0))

    pattern = "|".join(re.escape(name) for name in sorted(roles, key=len, reverse=True))
    text = re.sub(rf"(?<![\w$])(?:{pattern})(?![\w$])", swap, item.definition)
    if item.kind == "grant":  # entries are sorted by name: keep them so after renaming
        text = "; ".join(sorted(text.split("; ")))
    return replace(item, definition=text)


def _without_roles(item: SchemaObject, roles: list[str]) -> SchemaObject:
    """A grant's entries (`app SELECT (by postgres)`, `revoked PUBLIC USAGE (by x)`) minus
    those granted to an ignored role."""
    kept = []
    for entry in item.definition.split("; "):
        grantee = entry.removeprefix("revoked ").split(" ", 1)[0]
        if not any(fnmatchcase(grantee, role) for role in roles):
            kept.append(entry)
    return replace(item, definition="; ".join(kept))
