"""The one place that maps a backend name to its dialect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbsync.backends.mysql.dialect import MySQLDialect
from dbsync.backends.sqlite.dialect import SQLiteDialect

if TYPE_CHECKING:
    from dbsync.config.settings import Settings
    from dbsync.dialect import Dialect


def dialect_class(backend: str) -> type[MySQLDialect] | type[SQLiteDialect]:
    """The dialect of a SQLAlchemy backend name (``engine.dialect.name``)."""
    return SQLiteDialect if backend == "sqlite" else MySQLDialect


def dialect_for(settings: Settings) -> Dialect:
    """The dialect of the configured target."""
    return dialect_class(settings.target.url.get_backend_name())(settings)
