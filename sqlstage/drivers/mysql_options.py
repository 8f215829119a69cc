"""`mysql://` and `mariadb://` URLs -> what PyMySQL and mariadb-dump need to connect.

    mysql://app:secret@db.example.com:3306/app_dev?ssl-mode=REQUIRED
    mariadb://root@localhost/app_dev?unix_socket=/run/mysqld/mysqld.sock

Query parameters, with the spellings the MySQL clients, JDBC and Go drivers use:
`unix_socket` (or `socket`), `ssl-mode` (`DISABLED`, `PREFERRED`, `REQUIRED`, `VERIFY_CA`,
`VERIFY_IDENTITY`), `ssl=true|false`, `ssl-ca`, `ssl-cert`, `ssl-key` (dashes or underscores),
`charset` (default utf8mb4) and `connect_timeout` (seconds, default 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlstage.errors import ConfigError
from sqlstage.urls import DatabaseUrl

DEFAULT_PORT = 3306
CONNECT_TIMEOUT_SECONDS = 5
SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")
_ALIASES = {
    "socket": "unix_socket",
    "sslmode": "ssl_mode",
    "sslca": "ssl_ca",
    "sslcert": "ssl_cert",
    "sslkey": "ssl_key",
}
KNOWN = (
    "unix_socket",
    "ssl_mode",
    "ssl",
    "ssl_ca",
    "ssl_cert",
    "ssl_key",
    "charset",
    "connect_timeout",
)


@dataclass(frozen=True)
class MysqlTarget:
    """Where and how to connect; `password` never leaves the driver and the dump's 0600 file."""

    host: str
    port: int
    user: str
    password: str | None
    database: str
    unix_socket: str | None = None
    ssl_mode: str = "PREFERRED"
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    charset: str = "utf8mb4"
    connect_timeout: int = CONNECT_TIMEOUT_SECONDS

    @property
    def where(self) -> str:
        """`127.0.0.1:3306`, or the socket path."""
        return self.unix_socket if self.unix_socket else f"{self.host}:{self.port}"

    def pymysql_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password or "",
            "database": self.database,
            "charset": self.charset,
            "connect_timeout": self.connect_timeout,
            "autocommit": True,
        }
        if self.unix_socket:
            options["unix_socket"] = self.unix_socket
        options.update(self._pymysql_ssl())
        return options

    def _pymysql_ssl(self) -> dict[str, Any]:
        files = {k: v for k, v in (("ssl_cert", self.ssl_cert), ("ssl_key", self.ssl_key)) if v}
        if self.ssl_mode == "DISABLED":
            return {"ssl_disabled": True}
        if self.ssl_mode in ("VERIFY_CA", "VERIFY_IDENTITY"):
            verify = {"ssl_verify_cert": True}
            if self.ssl_mode == "VERIFY_IDENTITY":
                verify["ssl_verify_identity"] = True
            return {"ssl_ca": self.ssl_ca, **verify, **files}
        if self.ssl_mode == "REQUIRED":
            return {"ssl": _unverified_context(self.ssl_ca, self.ssl_cert, self.ssl_key)}
        return files  # PREFERRED: PyMySQL tries TLS and falls back

    def dump_options(self) -> list[str]:
        """mariadb-dump/mysqldump connection options (the password goes in a 0600 file)."""
        options = [f"--user={self.user}"]
        if self.unix_socket:
            options += ["--protocol=SOCKET", f"--socket={self.unix_socket}"]
        else:
            options += ["--protocol=TCP", f"--host={self.host}", f"--port={self.port}"]
        if self.ssl_mode == "DISABLED":
            options.append("--skip-ssl")
        elif self.ssl_mode != "PREFERRED":
            options.append("--ssl")
        if self.ssl_mode in ("VERIFY_CA", "VERIFY_IDENTITY"):
            options.append("--ssl-verify-server-cert")
        for flag, value in (("ca", self.ssl_ca), ("cert", self.ssl_cert), ("key", self.ssl_key)):
            if value:
                options.append(f"--ssl-{flag}={value}")
        return options


def parse_target(url: DatabaseUrl) -> MysqlTarget:
    """Read a `mysql://` or `mariadb://` URL; a malformed one is a ConfigError naming it."""
    parts = urlsplit(url.raw)
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ConfigError(
            f"{url.masked} names no database",
            "put the database after the host: mysql://user@host:3306/app_dev",
        )
    params = _params(url, parts.query)
    try:
        port = parts.port or DEFAULT_PORT
        timeout = int(params.pop("connect_timeout", CONNECT_TIMEOUT_SECONDS))
    except ValueError as err:
        raise ConfigError(
            f"{url.masked}: {err}", "the port and connect_timeout are numbers"
        ) from err
    return MysqlTarget(
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username) if parts.username else "root",
        password=url.password,
        database=database,
        unix_socket=params.pop("unix_socket", None),
        ssl_mode=_ssl_mode(url, params),
        ssl_ca=params.pop("ssl_ca", None),
        ssl_cert=params.pop("ssl_cert", None),
        ssl_key=params.pop("ssl_key", None),
        charset=params.pop("charset", "utf8mb4"),
        connect_timeout=timeout,
    )


def _params(url: DatabaseUrl, query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        name = key.lower().replace("-", "_")
        name = _ALIASES.get(name, name)
        if name == "password":
            continue  # already read by urls.parse_url
        if name not in KNOWN:
            raise ConfigError(
                f"{url.masked}: unknown URL parameter '{key}'",
                f"use one of {', '.join(KNOWN)} (dashes or underscores)",
            )
        params[name] = value
    return params


def _ssl_mode(url: DatabaseUrl, params: dict[str, str]) -> str:
    mode = params.pop("ssl_mode", "").upper().replace("-", "_")
    flag = params.pop("ssl", "").lower()
    if not mode and flag:
        if flag not in ("true", "1", "false", "0"):
            raise ConfigError(f"{url.masked}: ssl={flag}", "use ssl=true or ssl=false")
        mode = "REQUIRED" if flag in ("true", "1") else "DISABLED"
    mode = mode or ("VERIFY_CA" if params.get("ssl_ca") else "PREFERRED")
    if mode not in SSL_MODES:
        raise ConfigError(
            f"{url.masked}: unknown ssl-mode {mode}", f"use one of {', '.join(SSL_MODES)}"
        )
    return mode


def _unverified_context(ca: str | None, cert: str | None, key: str | None) -> Any:
    """TLS required but the certificate not checked (ssl-mode=REQUIRED, as the mysql client)."""
    import ssl

    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, keyfile=key)
    return context


def defaults_file_text(target: MysqlTarget) -> str:
    """The `[client]` section with the password, for --defaults-extra-file (mode 0600)."""
    escaped = (target.password or "").replace("\\", "\\\\").replace('"', '\\"')
    return f'[client]\npassword="{escaped}"\n'


def write_defaults_file(folder: Path, target: MysqlTarget) -> Path:
    import os

    path = folder / "client.cnf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(defaults_file_text(target))
    return path
