"""Drivers, one module per database, chosen by the URL's scheme (sqlstage.registry).

Modules are imported only when a URL of theirs is opened, so psycopg is never loaded for a
SQLite run, and `status` or `--help` load no driver at all.
"""

from __future__ import annotations

from importlib import import_module

from sqlstage.drivers.base import Driver
from sqlstage.errors import ConfigError
from sqlstage.registry import backend
from sqlstage.urls import DatabaseUrl


def connect(
    url: DatabaseUrl,
    application_name: str = "sqlstage",
    create: bool = True,
    pooler: str = "detect",
    environment: str | None = None,
) -> Driver:
    """Open a connection; raises errors.ConnectionFailed (exit 4) when it cannot, or when
    it goes through a transaction-mode pooler that `pooler` (the environment's setting,
    see sqlstage.pooler) does not allow; `environment` names it in that message.

    `create=False` is for commands that change nothing: an embedded database that does not
    exist yet is then not created (it reads as empty)."""
    kind = backend(url.dialect)
    if kind.package:
        try:
            import_module(kind.package)
        except ImportError:
            raise ConfigError(
                f"{url.masked}: sqlstage's {kind.dialect} driver needs {kind.package}, "
                "which is not installed",
                f"install it with pip install 'sqlstage[{kind.extra}]'",
            ) from None
    module = import_module(kind.driver)
    driver: Driver = module.DRIVER(
        url, application_name, create=create, pooler=pooler, environment=environment
    )
    return driver
