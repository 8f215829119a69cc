"""Drivers, one module per database, chosen by the URL's scheme (sqlstage.registry).

Modules are imported only when a URL of theirs is opened, so psycopg is never loaded for a
SQLite run, and `status` or `--help` load no driver at all.
"""

from __future__ import annotations

from importlib import import_module

from sqlstage.drivers.base import Driver
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
    module = import_module(backend(url.dialect).driver)
    driver: Driver = module.DRIVER(
        url, application_name, create=create, pooler=pooler, environment=environment
    )
    return driver
