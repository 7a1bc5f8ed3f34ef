"""Compare source and target: row counts and content checksums per primary-key range.

Both servers compute the checksums (MD5 of each row's exact text form, XOR-folded per
chunk), so only a few numbers per chunk cross the network. Chunks are ranges of the
source's primary key; the first and last are open-ended, so extra rows in the target are
found too.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from dbsync.extract import text_expression
from dbsync.runtime import Runtime
from dbsync.schema import TableSchema, qualified, quote, require_source_table
from dbsync.sync import table_config

if TYPE_CHECKING:
    from dbsync.dialects import MySQLDialect

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


def range_predicate(
    key: Sequence[str], lower: Key | None, upper: Key | None, placeholder: str = "%s"
) -> tuple[str, list]:
    """``lower <= key < upper`` for a (composite) key, in a form index ranges can use."""
    parts: list[str] = []
    params: list[Any] = []
    if lower is not None:
        sql, values = _at_or_after(key, lower, placeholder)
        parts.append(sql)
        params += values
    if upper is not None:
        sql, values = _at_or_after(key, upper, placeholder)
        parts.append(f"NOT {sql}")
        params += values
    return (" AND ".join(parts) or "1=1"), params


def _at_or_after(key: Sequence[str], values: Key, placeholder: str) -> tuple[str, list]:
    """``key >= values`` in lexicographic order, expanded so the first column bounds a range."""
    ors: list[str] = []
    params: list[Any] = []
    for i, column in enumerate(key):
        equal = [f"{quote(k)} = {placeholder}" for k in key[:i]]
        last = ">=" if i == len(key) - 1 else ">"
        ors.append("(" + " AND ".join([*equal, f"{quote(column)} {last} {placeholder}"]) + ")")
        params += [*values[:i], values[i]]
    return "(" + " OR ".join(ors) + ")", params


def _boundaries(
    dialect: MySQLDialect, engine: Engine, database: str, table: str, key: Sequence[str], every: int
) -> list[Key]:
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


_FOLD_SQL = (
    "SELECT COUNT(*), "
    "COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0), "
    "COALESCE(BIT_XOR(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) "
    "FROM (SELECT {row_hash} AS h FROM {table} WHERE {where}) AS x"
)


def _aggregate(
    dialect: MySQLDialect,
    engine: Engine,
    table: str,
    schema: TableSchema,
    columns: Sequence[str],
    where: str,
    params: list,
) -> tuple[int, int, int]:
    """(rows, xor of the rows' MD5 halves) of one key range, computed by the server."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if dialect.name == "sqlite":
            return _aggregate_locally(cursor, dialect, table, schema, columns, where, params)
        cursor.execute(
            _FOLD_SQL.format(row_hash=row_hash_sql(schema, columns), table=table, where=where),
            params,
        )
        count, low, high = cursor.fetchone()
        cursor.close()
        return int(count), int(low), int(high)
    finally:
        raw.close()


def _aggregate_locally(
    cursor: Any,
    dialect: MySQLDialect,
    table: str,
    schema: TableSchema,
    columns: Sequence[str],
    where: str,
    params: list,
) -> tuple[int, int, int]:
    """The same fold in Python, for SQLite (demo), which lacks MD5 and BIT_XOR."""
    chosen = [c for c in schema.columns if c.name in columns]
    values = ", ".join(dialect.text_expression(c) for c in chosen)
    cursor.execute(f"SELECT {values} FROM {table} WHERE {where}", params)
    count = low = high = 0
    for row in cursor.fetchall():
        text = (
            "#".join(v for v in row if v is not None)
            + "#"
            + "".join("1" if v is None else "0" for v in row)
        )
        digest = hashlib.md5(text.encode(), usedforsecurity=False).digest()
        count += 1
        low ^= int.from_bytes(digest[:8], "big")
        high ^= int.from_bytes(digest[8:], "big")
    return count, low, high


def verify_table(runtime: Runtime, table: str, chunk_rows: int = 10_000) -> VerifyReport:
    """Compare one table's rows on both sides; report mismatching key ranges."""
    report = VerifyReport(table=table)
    config = table_config(runtime, table)
    engines = runtime.engines
    dialect = runtime.dialect
    source_db, target_db = dialect.source_schema(), dialect.target_schema()
    with engines.source.connect() as conn:
        source = require_source_table(
            conn, source_db, table, config.primary_key, config.modifier, read=dialect.read_table
        )
    with engines.target.connect() as conn:
        target = dialect.read_table(conn, target_db, table)
    if target is None:
        report.error = f"table {table!r} does not exist in the target"
        return report
    missing = [c for c in source.column_names if target.column(c) is None]
    if missing:
        report.error = f"target table {table!r} lacks column(s) {missing}"
        return report
    key = config.primary_key
    columns = source.column_names
    bounds = _boundaries(dialect, engines.source, source_db, table, key, chunk_rows)
    edges: list[Key | None] = [None, *bounds, None]
    for lower, upper in zip(edges, edges[1:], strict=False):
        where, params = range_predicate(key, lower, upper, dialect.placeholder)
        src = _aggregate(
            dialect, engines.source, qualified(source_db, table), source, columns, where, params
        )
        dst = _aggregate(
            dialect, engines.target, qualified(target_db, table), target, columns, where, params
        )
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
