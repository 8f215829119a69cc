"""Drivers, one module per database, chosen by the URL's scheme.

Modules are imported only when a URL of theirs is opened, so psycopg is never loaded for a
SQLite run, and `status` or `--help` load no driver at all.
"""

from __future__ import annotations

from importlib import import_module

from sqlstage.drivers.base import Driver
from sqlstage.urls import DatabaseUrl

MODULES = {
    "postgresql": "sqlstage.drivers.postgres",
    "mysql": "sqlstage.drivers.mysql",
    "sqlite": "sqlstage.drivers.sqlite",
}


def connect(url: DatabaseUrl, application_name: str = "sqlstage", create: bool = True) -> Driver:
    """Open a connection; raises errors.ConnectionFailed (exit 4) when it cannot.

    `create=False` is for commands that change nothing: an embedded database that does not
    exist yet is then not created (it reads as empty)."""
    module = import_module(MODULES[url.dialect])
    driver: Driver = module.DRIVER(url, application_name, create=create)
    return driver
