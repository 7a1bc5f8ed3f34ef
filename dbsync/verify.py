"""Compare source and target: row counts and content checksums per primary-key range.

Both servers compute the checksums (MD5 of each row's exact text form, XOR-folded per
chunk), so only a few numbers per chunk cross the network. Chunks are ranges of the
source's primary key; the first and last are open-ended, so extra rows in the target are
found too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pymysql.cursors
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.extract import text_expression
from dbsync.runtime import Runtime
from dbsync.schema import TableSchema, qualified, quote, read_table, require_source_table
from dbsync.sync import table_config

log = logging.getLogger("dbsync.verify")

Key = tuple[Any, ...]


@dataclass(frozen=True)
class ChunkDiff:
    lower: Key | None
    upper: Key | None
    source_rows: int
    target_rows: int

    def describe(self, key: Sequence[str]) -> str:
        low = "start" if self.lower is None else _show(key, self.lower)
        high = "end" if self.upper is None else _show(key, self.upper)
        return (
            f"[{low} .. {high}): source {self.source_rows} rows, target {self.target_rows} rows"
            + (", content differs" if self.source_rows == self.target_rows else "")
        )


def _show(key: Sequence[str], values: Key) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(key, values, strict=True))


@dataclass
class VerifyReport:
    table: str
    source_rows: int = 0
    target_rows: int = 0
    chunks: int = 0
    mismatches: list[ChunkDiff] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.mismatches and self.source_rows == self.target_rows


def row_hash_sql(schema: TableSchema, columns: Sequence[str]) -> str:
    """MD5 over a row's exact text form, with a NULL map so NULL and '' differ."""
    chosen = [c for c in schema.columns if c.name in columns]
    values = ", ".join(text_expression(c) for c in chosen)
    nulls = ", ".join(f"ISNULL({quote(c.name)})" for c in chosen)
    return f"MD5(CONCAT_WS('#', {values}, CONCAT({nulls})))"


def range_predicate(key: Sequence[str], lower: Key | None, upper: Key | None) -> tuple[str, list]:
    """``lower <= key < upper`` for a (composite) key, in a form index ranges can use."""
    parts: list[str] = []
    params: list[Any] = []
    if lower is not None:
        sql, values = _at_or_after(key, lower)
        parts.append(sql)
        params += values
    if upper is not None:
        sql, values = _at_or_after(key, upper)
        parts.append(f"NOT {sql}")
        params += values
    return (" AND ".join(parts) or "1=1"), params


def _at_or_after(key: Sequence[str], values: Key) -> tuple[str, list]:
    """``key >= values`` in lexicographic order, expanded so the first column bounds a range."""
    ors: list[str] = []
    params: list[Any] = []
    for i, column in enumerate(key):
        equal = [f"{quote(k)} = %s" for k in key[:i]]
        last = ">=" if i == len(key) - 1 else ">"
        ors.append("(" + " AND ".join([*equal, f"{quote(column)} {last} %s"]) + ")")
        params += [*values[:i], values[i]]
    return "(" + " OR ".join(ors) + ")", params


def _boundaries(
    engine: Engine, database: str, table: str, key: Sequence[str], every: int
) -> list[Key]:
    columns = ", ".join(quote(k) for k in key)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor(pymysql.cursors.SSCursor)
        cursor.execute(f"SELECT {columns} FROM {qualified(database, table)} ORDER BY {columns}")
        bounds: list[Key] = []
        index = 0
        while rows := cursor.fetchmany(10_000):
            for row in rows:
                if index and index % every == 0:
                    bounds.append(tuple(row))
                index += 1
        cursor.close()
        return bounds
    finally:
        raw.close()


def _aggregate(
    engine: Engine, database: str, table: str, row_hash: str, where: str, params: list
) -> tuple:
    sql = (
        "SELECT COUNT(*), "
        "COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0), "
        "COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) "
        f"FROM (SELECT {row_hash} AS h FROM {qualified(database, table)} WHERE {where}) AS x"
    )
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql, params)
        count, low, high = cursor.fetchone()
        cursor.close()
        return int(count), int(low), int(high)
    finally:
        raw.close()


def verify_table(runtime: Runtime, table: str, chunk_rows: int = 10_000) -> VerifyReport:
    """Compare one table's rows on both sides; report mismatching key ranges."""
    report = VerifyReport(table=table)
    config = table_config(runtime, table)
    engines = runtime.engines
    source_db, target_db = runtime.settings.source.database, runtime.settings.target.database
    with engines.source.connect() as conn:
        source = require_source_table(conn, source_db, table, config.primary_key, config.modifier)
    with engines.target.connect() as conn:
        target = read_table(conn, target_db, table)
    if target is None:
        report.error = f"table {table!r} does not exist in the target"
        return report
    missing = [c for c in source.column_names if target.column(c) is None]
    if missing:
        report.error = f"target table {table!r} lacks column(s) {missing}"
        return report
    key = config.primary_key
    source_hash = row_hash_sql(source, source.column_names)
    target_hash = row_hash_sql(target, source.column_names)
    bounds = _boundaries(engines.source, source_db, table, key, chunk_rows)
    edges: list[Key | None] = [None, *bounds, None]
    for lower, upper in zip(edges, edges[1:], strict=False):
        where, params = range_predicate(key, lower, upper)
        src = _aggregate(engines.source, source_db, table, source_hash, where, params)
        dst = _aggregate(engines.target, target_db, table, target_hash, where, params)
        report.chunks += 1
        report.source_rows += src[0]
        report.target_rows += dst[0]
        if src != dst:
            report.mismatches.append(ChunkDiff(lower, upper, src[0], dst[0]))
    log.info(
        "table %s: %s source rows, %s target rows, %s chunks, %s mismatching",
        table,
        report.source_rows,
        report.target_rows,
        report.chunks,
        len(report.mismatches),
    )
    return report
