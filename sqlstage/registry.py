"""Which databases sqlstage knows: one line each, read by everything that depends on the kind.

URL parsing takes its schemes from here, `connect` its driver module, `schema` its catalog
reader, `verify` whether scratch databases are files or live on a server, and offline lint its
dialect. Nothing here imports a driver: modules are named, and imported when used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backend:
    """One database sqlstage supports: its URL schemes and the modules that serve it."""

    dialect: str
    #: URL schemes, the first one canonical
    schemes: tuple[str, ...]
    #: the module whose DRIVER class connects
    driver: str
    #: the module whose read(driver) takes a schema snapshot
    schema_reader: str
    #: a file on this machine, not a server (scratch databases are temporary files)
    embedded: bool = False
    #: the package the driver needs that a plain install lacks, and the extra that brings it
    package: str | None = None
    extra: str | None = None


BACKENDS = (
    Backend(
        "postgresql",
        ("postgresql", "postgres"),
        "sqlstage.drivers.postgres",
        "sqlstage.schema.postgres",
    ),
    Backend(
        "mysql",
        ("mysql", "mariadb"),
        "sqlstage.drivers.mysql",
        "sqlstage.schema.mysql",
        package="pymysql",
        extra="mysql",
    ),
    Backend("sqlite", ("sqlite",), "sqlstage.drivers.sqlite", "sqlstage.schema.sqlite", True),
)

#: URL scheme -> dialect
SCHEMES = {scheme: backend.dialect for backend in BACKENDS for scheme in backend.schemes}


def backend(dialect: str) -> Backend:
    return next(b for b in BACKENDS if b.dialect == dialect)
