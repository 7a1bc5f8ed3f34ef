"""Row checksums over a set of rows, computed where the rows are.

The fold: the sums of the MD5s of each row's exact text form, and the row count. Where it
runs is the dialect's choice (:meth:`dbsync.dialect.Dialect.aggregate`): MySQL/MariaDB fold
server-side (:func:`fold_on_server`, only three numbers cross the network); SQLite (demo)
lacks MD5, so the same fold runs in Python there (:func:`fold_locally`). The fold is a sum,
not an XOR: a table without a key may hold the same row twice, and two equal rows would
cancel out of an XOR (source {A, A, B} and target {B, C, C} would compare equal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from dbsync.backends.engines import fetch_all
from dbsync.backends.key_folds import identity_sql, identity_text
from dbsync.backends.mysql.schema import quote
from dbsync.backends.mysql.types import comparable_text
from dbsync.model import Column, RowSet, TableSchema

if TYPE_CHECKING:
    from dbsync.dialect import Dialect


def row_hash_sql(schema: TableSchema, columns: Sequence[str]) -> str:
    """MD5 over a row's exact text form, with a NULL map so NULL and '' differ.

    Each value is prefixed with its length, so text cannot move across the separator
    unnoticed (``'x#', 'y'`` and ``'x', '#y'`` hash differently).
    """
    chosen = _by_name(schema, columns)
    texts = [comparable_text(c, quote(c.name)) for c in chosen]
    values = ", ".join(f"CONCAT(CHAR_LENGTH({e}), ':', {e})" for e in texts)
    nulls = ", ".join(f"ISNULL({quote(c.name)})" for c in chosen)
    return f"MD5(CONCAT_WS('#', {values}, CONCAT({nulls})))"


def _by_name(schema: TableSchema, columns: Sequence[str]) -> list[Column]:
    """``schema``'s columns named in ``columns``, in that order (a column moved in one table
    only, ``MODIFY ... FIRST``, is not a difference)."""
    return [c for c in (schema.column(n) for n in columns) if c is not None]


_FOLD_SQL = (
    "SELECT COUNT(*), "
    "COALESCE(SUM(CAST(CONV(SUBSTRING(h, 1, 16), 16, 10) AS UNSIGNED)), 0), "
    "COALESCE(SUM(CAST(CONV(SUBSTRING(h, 17, 16), 16, 10) AS UNSIGNED)), 0) "
    "FROM (SELECT {row_hash} AS h FROM {table} WHERE {where}) AS x"
)


def aggregate(dialect: Dialect, engine: Engine, rows: RowSet) -> tuple[int, int, int]:
    """(rows, sums of the rows' MD5 halves) of a set of rows, computed where the dialect can."""
    return dialect.aggregate(engine, rows)


def fold_on_server(engine: Engine, rows: RowSet) -> tuple[int, int, int]:
    """The fold computed by a MySQL/MariaDB server."""
    sql = _FOLD_SQL.format(
        row_hash=row_hash_sql(rows.schema, rows.columns), table=rows.table, where=rows.where
    )
    count, low, high = fetch_all(engine, sql, rows.params)[0]
    return int(count), int(low), int(high)


def fold_locally(
    engine: Engine, rows: RowSet, text_expression: Callable[[Column], str]
) -> tuple[int, int, int]:
    """The same fold in Python, over the rows' text (``text_expression``) as fetched."""
    chosen = _by_name(rows.schema, rows.columns)
    values = ", ".join(text_expression(c) for c in chosen)
    sql = f"SELECT {values} FROM {rows.table} WHERE {rows.where}"
    count = low = high = 0
    for row in fetch_all(engine, sql, rows.params):
        digest = _local_digest(row)
        count += 1
        low += int.from_bytes(digest[:8], "big")
        high += int.from_bytes(digest[8:], "big")
    return count, low, high


def _local_digest(values: Sequence[str | None]) -> bytes:
    """MD5 of a row's text values as ``row_hash_sql`` forms them on the server."""
    text = (
        "#".join(f"{len(v)}:{v}" for v in values if v is not None)
        + "#"
        + "".join("1" if v is None else "0" for v in values)
    )
    return hashlib.md5(text.encode(), usedforsecurity=False).digest()


def row_digests(
    dialect: Dialect, engine: Engine, rows: RowSet, key: Sequence[str]
) -> dict[object, object]:
    """Each row's key identity and content digest: a mismatching chunk, row by row."""
    return dialect.row_digests(engine, rows, key)


def digests_on_server(engine: Engine, rows: RowSet, key: Sequence[str]) -> dict[object, object]:
    """Key identities and row hashes computed by a MySQL/MariaDB server."""
    sql = (
        f"SELECT {identity_sql(rows.schema, key)}, {row_hash_sql(rows.schema, rows.columns)} "
        f"FROM {rows.table} WHERE {rows.where}"
    )
    return dict(fetch_all(engine, sql, rows.params))


def digests_locally(
    engine: Engine,
    rows: RowSet,
    key: Sequence[str],
    text_expression: Callable[[Column], str],
) -> dict[object, object]:
    """The same identities and digests in Python, over the rows' text as fetched."""
    chosen = _by_name(rows.schema, rows.columns)
    keys = [rows.schema.column(k) for k in key]
    texts = [text_expression(c) for c in [*keys, *chosen] if c is not None]
    sql = f"SELECT {', '.join(texts)} FROM {rows.table} WHERE {rows.where}"
    return {
        identity_text(row[: len(key)]): _local_digest(row[len(key) :])
        for row in fetch_all(engine, sql, rows.params)
    }
