"""Database URLs: which driver, what to show (password masked), and redaction of secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlstage.errors import ConfigError

SCHEMES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
}
MASK = "***"
_PASSWORD_PARAM = re.compile(r"(?i)(password=)[^&\s]*")


@dataclass(frozen=True)
class DatabaseUrl:
    """A validated connection URL.

    `raw` holds the password and is only ever handed to the driver; `masked` is what the user,
    the log and error messages see: `postgresql://app:***@db.example.com/app`.
    """

    dialect: str
    raw: str
    masked: str
    password: str | None
    sqlite_path: Path | None = None

    def __repr__(self) -> str:  # keep the password out of tracebacks and debug output
        return f"DatabaseUrl({self.masked!r})"


def parse_url(raw: str, root: Path, environment: str) -> DatabaseUrl:
    """Validate a URL from config, the environment or the prompt.

    `sqlite:///dev.db` is relative to the project root, `sqlite:////var/db/app.db` absolute.
    Errors name the environment and never show the password.
    """
    raw = raw.strip()
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    dialect = SCHEMES.get(scheme)
    if dialect is None:
        raise ConfigError(
            f"environment '{environment}': the URL must start with postgresql://, postgres://, "
            f"mysql://, mariadb:// or sqlite:/// (got '{_shape(raw)}')",
            "fix the URL where it comes from: sqlstage.toml, its environment variable, "
            ".env.local, or what was typed at the prompt",
        )
    if dialect == "sqlite":
        return _sqlite_url(raw, root, environment)
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise ConfigError(
            f"environment '{environment}': malformed URL {mask_url(raw)} ({err})"
        ) from err
    password = unquote(parts.password) if parts.password else None
    match = _PASSWORD_PARAM.search(parts.query)
    if match and not password:
        password = unquote(match.group(0).split("=", 1)[1]) or None
    return DatabaseUrl(dialect, raw, mask_url(raw), password)


def _sqlite_url(raw: str, root: Path, environment: str) -> DatabaseUrl:
    prefix = "sqlite:///"
    if not raw.lower().startswith(prefix) or len(raw) == len(prefix):
        raise ConfigError(
            f"environment '{environment}': a SQLite URL is sqlite:///relative/path.db "
            f"or sqlite:////absolute/path.db (got '{raw}')"
        )
    path = Path(raw[len(prefix) :].split("?", 1)[0])
    if not path.is_absolute():
        path = root / path
    return DatabaseUrl("sqlite", raw, raw, None, path)


def mask_url(url: str) -> str:
    """Replace the password in a URL with ***.

    >>> mask_url("postgresql://app:s3cret@db:5432/app?sslmode=require")
    'postgresql://app:***@db:5432/app?sslmode=require'
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = None
        parts = None
    if parts is not None and password is not None:
        user_info, _, host = parts.netloc.rpartition("@")
        user = user_info.split(":", 1)[0]
        url = url.replace(parts.netloc, f"{user}:{MASK}@{host}", 1)
    return _PASSWORD_PARAM.sub(rf"\g<1>{MASK}", url)


def _shape(raw: str) -> str:
    """Enough of a bad URL to recognise it, never a password."""
    return mask_url(raw)[:40]


def redact(text: str, secrets: list[str]) -> str:
    """Remove every known secret from text bound for the screen, a log or a file."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
