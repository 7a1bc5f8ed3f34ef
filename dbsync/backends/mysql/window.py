"""The SQL behind comparing an incremental read's window bucket by bucket (MySQL/MariaDB).

The rows of a window (``checksum.RowSet``: one table, the window's WHERE clause) are placed
in buckets by their key, as :mod:`dbsync.compare.keydiff` places keys (``CRC32`` of the key's exact
text, low bits); a bucket folds to ``(rows, BIT_XOR of the first 64 bits of each row's MD5)``
over the row's exact text as the row comparison forms it, one plan for both sides
(:func:`dbsync.backends.mysql.rowdiff.row_text_sql`: numbers and times as they are, FLOAT and
DOUBLE by ``SFORMAT`` where both servers print them alike; about half the time of the
normalized text forms). Policy lives in :mod:`dbsync.sync.window_diff`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from dbsync.backends.engines import fetch_all
from dbsync.backends.key_folds import identity_sql, read_folds
from dbsync.backends.mysql.extract import window_positional
from dbsync.backends.mysql.rowdiff import Fingerprint, row_text_sql
from dbsync.backends.mysql.schema import qualified
from dbsync.model import Buckets, Fold, RowSet, TableSchema, Window, WindowRows

if TYPE_CHECKING:
    from dbsync.dialect import Dialect


def window_rows(
    dialect: Dialect,
    engines: tuple[Engine, Engine],
    source: TableSchema,
    target: TableSchema,
    window: Window,
) -> WindowRows | None:
    """The window's rows on both sides, counted (an index range on the cursor); None when
    the target lacks some of the source's columns (the window cannot match)."""
    columns = [c for c in source.column_names if target.column(c) is not None]
    if len(columns) != len(source.columns):
        return None
    where, params = window_positional(window, dialect.placeholder)
    condition = where.removeprefix(" WHERE ")
    sets = (
        RowSet(qualified(dialect.source_schema(), source.name), source, columns, condition, params),
        RowSet(qualified(dialect.target_schema(), target.name), target, columns, condition, params),
    )
    counts = tuple(_count(engine, rows) for engine, rows in zip(engines, sets, strict=True))
    return WindowRows(sets, (counts[0], counts[1]))


def _count(engine: Engine, rows: RowSet) -> int:
    sql = f"SELECT COUNT(*) FROM {rows.table} WHERE {rows.where}"
    (count,) = fetch_all(engine, sql, rows.params)[0]
    return int(count)


def _mask(bits: int) -> int:
    return (1 << bits) - 1


def bucket_hash(schema: TableSchema, key: Sequence[str]) -> str:
    return f"CRC32({identity_sql(schema, key)})"


def in_buckets(schema: TableSchema, key: Sequence[str], buckets: Buckets) -> str:
    """A predicate selecting the rows of ``buckets.within`` (TRUE when it is None)."""
    if buckets.within is None:
        return "TRUE"
    bits, numbers = buckets.within
    listed = ", ".join(str(n) for n in numbers)
    return f"({bucket_hash(schema, key)} & {_mask(bits)}) IN ({listed})"


class WindowSide:
    """One side's rows of a window, folded per bucket by the server (a keydiff ``Side``)."""

    def __init__(self, rows: RowSet, engine: Any, key: Sequence[str], plan: Fingerprint) -> None:
        self.rows, self.engine, self.key = rows, engine, tuple(key)
        self.row_hash = f"MD5({row_text_sql(rows.schema, plan)})"

    def _inner(self, buckets: Buckets) -> str:
        rows = self.rows
        return (
            f"SELECT {bucket_hash(rows.schema, self.key)} AS k, "
            f"CAST(CONV(SUBSTRING({self.row_hash}, 1, 16), 16, 10) "
            f"AS UNSIGNED) AS h FROM {rows.table} "
            f"WHERE ({rows.where}) AND {in_buckets(rows.schema, self.key, buckets)}"
        )

    def total(self) -> Fold:
        sql = f"SELECT COUNT(*), COALESCE(BIT_XOR(h), 0) FROM ({self._inner(Buckets(0))}) AS x"
        rows, xor = fetch_all(self.engine, sql, self.rows.params)[0]
        return int(rows), int(xor)

    def folds(self, buckets: Buckets) -> dict[int, Fold]:
        fetch = partial(fetch_all, self.engine, params=self.rows.params)
        rows = f"({self._inner(buckets)}) AS r"
        return read_folds(fetch, f"k & {_mask(buckets.bits)}", "h", rows)

    def identities(self, buckets: Buckets, with_keys: bool) -> list[tuple[Any, ...]]:
        rows = self.rows
        sql = (
            f"SELECT {identity_sql(rows.schema, self.key)} FROM {rows.table} "
            f"WHERE ({rows.where}) AND {in_buckets(rows.schema, self.key, buckets)}"
        )
        return fetch_all(self.engine, sql, rows.params)
