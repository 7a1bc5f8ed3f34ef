"""The database layer: one package per database kind (``mysql``, ``sqlite``), each holding
all the SQL it runs, and what both share.

This package's own names are the one surface policy code (``dbsync.sync``, ``copy``,
``compare``, ``ops``) may import from here: the dialect of a target, the engines (connection
pools) of a process, a liveness probe, and the status table. Everything else a sync says to a
database goes through the :class:`dbsync.dialect.Dialect` it gets from :func:`dialect_for`.
See docs/modules.md.
"""

from dbsync.backends.engines import (
    Engines,
    create_engine,
    has_room,
    ping,
    pool_numbers,
    pool_status,
    server_engine,
)
from dbsync.backends.mysql.dialect import MySQLDialect
from dbsync.backends.registry import dialect_class, dialect_for
from dbsync.backends.sqlite.dialect import SQLiteDialect
from dbsync.backends.status import (
    last_delete_check,
    last_diff_repaired,
    last_reconcile,
    last_target_definition,
    read_status,
    record_result,
    table_status,
)

__all__ = [
    "Engines",
    "MySQLDialect",
    "SQLiteDialect",
    "create_engine",
    "dialect_class",
    "dialect_for",
    "has_room",
    "last_delete_check",
    "last_diff_repaired",
    "last_reconcile",
    "last_target_definition",
    "ping",
    "pool_numbers",
    "pool_status",
    "read_status",
    "record_result",
    "server_engine",
    "table_status",
]
