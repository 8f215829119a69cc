"""Database URLs: which driver, what to show (password masked), and redaction of secrets.

Redaction works on the text, not on a parsed URL, so a URL that does not parse is covered
too: whatever looks like `scheme://user:SECRET@`, `scheme:/user:SECRET@`, `user:SECRET@` or
`password=SECRET` has its secret replaced by `***`, and so has every secret the run knows.

    >>> redact("cannot connect to postgresql://app:Zq9#Sup3r@db:5432/x", [])
    'cannot connect to postgresql://app:***@db:5432/x'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote

from sqlstage.errors import ConfigError
from sqlstage.registry import SCHEMES

MASK = "***"
#: `password=...` in a query string or a libpq keyword string, quoted or not
_PASSWORD_PARAM = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^&\s]*)")
#: in one URL (or one blank-free piece of text): `scheme:` + any slashes + `user:SECRET@`, else
#: a bare `user:SECRET@` whose secret does not start with `/` (so the `//` of
#: `postgresql://user@host` is never taken for one). The secret runs to the last `@`, so a
#: password holding `@ / # ?` is covered whole.
_CREDENTIALS = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*:/*[^\s:/@]*:)(?P<secret>.+)@"
    r"|(?P<bare>[^\s:/@]*:)(?P<bare_secret>(?!/).+)@",
    re.DOTALL,
)
#: a blank-free piece of text that holds an `@`, matched from its first character only, so
#: a long line costs one pass
_AT_TOKEN = re.compile(r"(?<!\S)[^\s@]*+@\S*+")
#: a piece longer than this (no URL is) is masked up to its last `@` without a closer look,
#: which would cost its length squared
_LONG_TOKEN = 2000
_SERVER_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>/[^?#]*)?"
    r"(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?",
    re.DOTALL,
)
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+(?:%25[\w.-]+)?\]|[^\[\]:]*)(?::(?P<port>.*))?", re.DOTALL)
_ENCODE_FIX = (
    "percent-encode the user name, password and database name: @ as %40, # as %23, "
    "/ as %2F, ? as %3F, : as %3A, a space as %20"
)


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

    `sqlite:///dev.db` is relative to the project root, `sqlite:////absolute/path.db`
    absolute; a PostgreSQL URL is any libpq URI that names a database, several hosts too
    (`postgresql://h1:5432,h2:5433/app?target_session_attrs=any`). Errors name the
    environment and never show the password, even of a URL that does not parse.
    """
    raw = raw.strip()
    scheme = raw.split(":", 1)[0].lower() if ":" in raw else ""
    dialect = SCHEMES.get(scheme)
    if dialect is None:
        start = f"it starts with '{scheme[:20]}'" if scheme else "it has no scheme"
        starts = [f"{s}:///" if SCHEMES[s] == "sqlite" else f"{s}://" for s in SCHEMES]
        raise ConfigError(
            f"environment '{environment}': the URL must start with {', '.join(starts[:-1])} "
            f"or {starts[-1]} ({start})",
            "fix the URL where it comes from: sqlstage.toml, its environment variable, "
            ".env.local, or what was typed at the prompt",
        )
    if dialect == "sqlite":
        return _sqlite_url(raw, root, environment)
    return _server_url(raw, dialect, environment)


def _server_url(raw: str, dialect: str, environment: str) -> DatabaseUrl:
    """`scheme://user:password@host:port,host:port/database?options`, checked by shape."""
    match = _SERVER_URL.fullmatch(raw)
    shown = _shown(raw, match)

    def malformed(reason: str, fix: str = _ENCODE_FIX) -> ConfigError:
        return ConfigError(f"environment '{environment}': malformed URL {shown} ({reason})", fix)

    if match is None:
        scheme = raw.split(":", 1)[0]
        raise malformed(
            f"it must start with {scheme}://, with two slashes",
            f"write it as {scheme}://user:password@host:port/database",
        )
    if any(c.isspace() or not c.isprintable() for c in raw):
        raise malformed("it holds a blank or a control character")
    authority, path, query = match["authority"], match["path"] or "", match["query"] or ""
    if match["fragment"] is not None or "@" in path + query or authority.count("@") > 1:
        raise malformed("a '@', '#', '/' or '?' in it is not where a URL allows one")
    user_info, _, hosts = authority.rpartition("@")
    for host in hosts.split(","):
        problem = _host_problem(host)
        if problem:
            raise malformed(problem, f"{match['scheme']}://user@host:port/db, or host1,host2:port")
    params = dict(parse_qsl(query, keep_blank_values=True))
    if not unquote(path[1:]) and not params.get("dbname") and not params.get("service"):
        raise ConfigError(
            f"environment '{environment}': the URL {shown} names no database, so the driver "
            "would pick one by itself (libpq: the user's name)",
            f"name it after the host: {match['scheme']}://user@host:port/DATABASE",
        )
    _, colon, secret = user_info.partition(":")
    password = unquote(secret) if colon and secret else params.get("password") or None
    return DatabaseUrl(dialect, raw, mask_url(raw), password)


def _shown(raw: str, match: re.Match[str] | None) -> str:
    """The URL as an error may show it: its password masked, and with no `@` in it, a host
    that is not `name[:port]` masked too (`postgresql://app:secret/db` lost its `@host`)."""
    masked = mask_url(raw)
    if match is None or "@" in match["authority"] or not match["authority"]:
        return masked
    hosts = [MASK if _host_problem(h) else h for h in match["authority"].split(",")]
    return masked.replace(match["authority"], ",".join(hosts), 1)


def _host_problem(host: str) -> str | None:
    """What is wrong with one host of the list (never quoting it: with the `@` missing it may
    be `user:password`); `name`, `name:5432`, `[::1]:5432` and empty (the local socket) are
    fine."""
    match = _HOST.fullmatch(host)
    if match is None:
        return "a '[' or ']' outside an IPv6 address in brackets, like [::1]:5432"
    port = match["port"]
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return "a host's port must be a number from 1 to 65535"
    return None


def _sqlite_url(raw: str, root: Path, environment: str) -> DatabaseUrl:
    prefix = "sqlite:///"
    if not raw.lower().startswith(prefix) or len(raw) == len(prefix):
        raise ConfigError(
            f"environment '{environment}': a SQLite URL is sqlite:///relative/path.db "
            f"or sqlite:////absolute/path.db (got '{mask_url(raw)}')"
        )
    path = Path(raw[len(prefix) :].split("?", 1)[0])
    if not path.is_absolute():
        path = root / path
    return DatabaseUrl("sqlite", raw, raw, None, path)


def mask_url(url: str) -> str:
    """Replace the password in one URL with ***, whether or not the URL parses.

    >>> mask_url("postgresql://app:s3cret@db:5432/app?sslmode=require")
    'postgresql://app:***@db:5432/app?sslmode=require'
    >>> mask_url("postgresql://app:pa@ss/word@[::1:5432/app")
    'postgresql://app:***@[::1:5432/app'
    """
    return _mask_password_param(_mask_token(url))


def redact(text: str, secrets: list[str]) -> str:
    """Text bound for the screen, a log or a file, with every URL-like password and every
    known secret replaced by ***.

    >>> redact("got 'postgresql//app:pw@db/x', and pw again", ["pw"])
    "got 'postgresql//app:***@db/x', and *** again"
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    if "@" in text:  # the common case, a line with no URL, costs a scan in C
        text = _AT_TOKEN.sub(lambda token: _mask_token(token[0]), text)
    return _mask_password_param(text)


def needs_redacting(text: str, secrets: list[str]) -> bool:
    """Whether `redact` may change `text` or some part of it; False promises that every
    substring of `text` comes out of `redact(..., secrets)` as it went in.

    >>> needs_redacting("00001_create_users", ["pw"]), needs_redacting("a@b", [])
    (False, True)
    """
    return "@" in text or "=" in text or any(secret in text for secret in secrets if secret)


def secrets_in(url: str) -> list[str]:
    """Every spelling of the passwords an answer at the URL prompt may hold, to redact them
    wherever they show up; the whole answer when none is recognised (a password typed at the
    URL prompt by mistake)."""
    found = [m["secret"] or m["bare_secret"] for m in _CREDENTIALS.finditer(url)]
    found += [m[2].strip("'") for m in _PASSWORD_PARAM.finditer(url)]
    found = [spelling for s in found if s for spelling in {s, unquote(s)}]
    answer = url.strip()
    return found or ([answer] if len(answer) >= 4 else [])


def _mask_password_param(text: str) -> str:
    return _PASSWORD_PARAM.sub(rf"\g<1>{MASK}", text) if "=" in text else text


def _mask_token(token: str) -> str:
    if ":" not in token:
        return token
    if len(token) > _LONG_TOKEN:
        head, _, tail = token.rpartition("@")
        return f"{MASK}@{tail}" if ":" in head else token
    return _CREDENTIALS.sub(_keep_user, token)


def _keep_user(match: re.Match[str]) -> str:
    return f"{match['head'] or match['bare']}{MASK}@"
