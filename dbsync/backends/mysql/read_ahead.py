"""The statements of the read-ahead (:mod:`dbsync.sync.read_ahead`): which keys a window
holds, and reading the target pages (rows and cursor index entries) of those keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from dbsync.backends.engines import fetch_all
from dbsync.backends.mysql.extract import window_positional
from dbsync.backends.mysql.schema import quote
from dbsync.model import Index, TableSchema, Window


def window_keys(
    engine: Engine, table: str, key: Sequence[str], window: Window, limit: int
) -> list[tuple[Any, ...]]:
    """At most ``limit`` keys of the rows in ``window`` (from the cursor index: no row read)."""
    where, params = window_positional(window)
    columns = ", ".join(quote(k) for k in key)
    return fetch_all(engine, f"SELECT {columns} FROM {table}{where} LIMIT {limit}", params)


def read_rows(
    engine: Engine,
    table: str,
    key: Sequence[str],
    index: Index | None,
    keys: Sequence[tuple[Any, ...]],
) -> None:
    """Read the rows (and ``index`` entries) of ``keys`` into the server's cache."""
    sql = read_ahead_sql(table, key, index, len(keys))
    fetch_all(engine, sql, [value for row in keys for value in row])


def cursor_index(schema: TableSchema, cursor: str) -> Index | None:
    """The secondary index led by the cursor column, if it has no prefix-length parts."""
    for index in schema.indexes:
        plain = all(c.endswith("`") for c in index.columns)
        if plain and index.columns[0] == quote(cursor):
            return index
    return None


def read_ahead_sql(table: str, key: Sequence[str], index: Index | None, rows: int) -> str:
    """Count ``rows`` keys' rows through the primary key and, when given, ``index`` entries.

    Reading the row through ``FORCE INDEX (PRIMARY)`` loads its clustered page; the join on
    every column of ``index`` plus the key (InnoDB's secondary entries end with the key) is
    one point lookup of the exact entry the merge will replace.
    """
    columns = [quote(k) for k in key]
    marks = "(" + ", ".join(["%s"] * len(key)) + ")"
    keys = "(" + ", ".join(f"x.{c}" for c in columns) + ")"
    where = f"{keys} IN ({', '.join([marks] * rows)})"
    sql = f"SELECT COUNT(*) FROM {table} AS x FORCE INDEX (PRIMARY)"
    if index is None:
        return f"{sql} WHERE {where}"
    on = " AND ".join(f"y.{c} <=> x.{c}" for c in (*index.columns, *columns))
    return f"{sql} JOIN {table} AS y FORCE INDEX ({quote(index.name)}) ON {on} WHERE {where}"
