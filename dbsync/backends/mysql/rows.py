"""Row-level reads of the comparisons (:mod:`dbsync.compare`): whether keys still exist in
the source, and the keys that cut a table into chunks to verify."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from dbsync.backends.engines import fetch_all
from dbsync.backends.mysql.schema import qualified, quote
from dbsync.model import Key

if TYPE_CHECKING:
    from dbsync.dialect import Dialect


def keys_present(
    engine: Engine, table: str, key: Sequence[str], batch: Sequence[Key], placeholder: str
) -> list[bool]:
    """For each key of ``batch``: does ``table`` hold a row with it (the server's equality)?"""
    sql, params = exists_sql(table, key, batch, placeholder)
    return list(fetch_all(engine, sql, params)[0])


def exists_sql(
    table: str, key: Sequence[str], batch: Sequence[Key], placeholder: str
) -> tuple[str, list]:
    """One row of flags: does ``table`` hold a row with each of these keys?"""
    match = " AND ".join(f"{quote(k)} = {placeholder}" for k in key)
    probes = ", ".join(f"EXISTS(SELECT 1 FROM {table} WHERE {match})" for _ in batch)
    return f"SELECT {probes}", [value for values in batch for value in values]


def key_boundaries(
    dialect: Dialect, engine: Engine, database: str, table: str, key: Sequence[str], every: int
) -> list[Key]:
    """Every ``every``-th key of ``table`` in key order, read in one consistent snapshot."""
    columns = ", ".join(quote(k) for k in key)
    raw = engine.raw_connection()
    try:
        cursor = dialect.begin_snapshot(raw)
        cursor.execute(f"SELECT {columns} FROM {qualified(database, table)} ORDER BY {columns}")
        bounds: list[Key] = []
        index = 0
        while rows := cursor.fetchmany(10_000):
            for row in rows:
                if index and index % every == 0:
                    bounds.append(tuple(row))
                index += 1
        cursor.close()
        raw.commit()
        return bounds
    finally:
        raw.close()
