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
    "sqlite": "sqlstage.drivers.sqlite",
}


def connect(url: DatabaseUrl, application_name: str = "sqlstage") -> Driver:
    """Open a connection; raises errors.ConnectionFailed (exit 4) when it cannot."""
    module = import_module(MODULES[url.dialect])
    driver: Driver = module.DRIVER(url, application_name)
    return driver
