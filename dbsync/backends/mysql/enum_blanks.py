"""ENUM's error value: writing it into a strict target without giving up strictness.

A non-strict source stores a value outside an ENUM's members as the error value, index 0,
which reads as ``''``. The target's sessions are strict (``STRICT_ALL_TABLES``, see
``backends/engines.py``), and a strict session refuses to write ``''`` (or 0) into an ENUM
that has no ``''`` member, from LOAD DATA as from ``VALUES``; copying the column from another
table (the merge's ``INSERT ... SELECT``) keeps index 0 without complaint.

So a write that carries such blanks runs with the strict modes off, and is then held to
exactly what strictness would have let through: as many warnings as blanks, each a
truncation (1265) of one of those ENUM columns. Anything else fails the write, whose caller
rolls its transaction back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dbsync.backends.mysql.types import ENUM, enum_values, parse_column_type
from dbsync.config.errors import LoadDataError
from dbsync.model import Column

TRUNCATED = 1265  # "Data truncated for column ..."
STRICT_MODES = ("STRICT_ALL_TABLES", "STRICT_TRANS_TABLES")


def blank_rejecting(columns: Sequence[Column]) -> list[int]:
    """Positions of the ENUM columns without a ``''`` member (a strict write refuses ``''``)."""
    return [i for i, column in enumerate(columns) if _rejects_blank(column)]


def _rejects_blank(column: Column) -> bool:
    if column.data_type != ENUM:
        return False
    return "" not in enum_values(parse_column_type(column.column_type)[1])


def blanks_in_batch(batch: pa.RecordBatch, positions: Sequence[int]) -> int:
    """``''`` values in the batch's columns at ``positions``."""
    return sum(int(pc.sum(pc.equal(batch.column(i), "")).as_py() or 0) for i in positions)


def blanks_in_rows(rows: Iterable[Sequence[Any]], positions: Sequence[int]) -> int:
    """``''`` values in the rows' fields at ``positions``."""
    return sum(1 for row in rows for i in positions if row[i] == "")


@contextmanager
def writing_blanks(cursor: Any, blanks: int, columns: Sequence[str]) -> Iterator[None]:
    """Run the block's writes with the strict modes off when they carry ``blanks`` ENUM
    blanks (in ``columns``), then check they caused exactly those truncations and nothing
    else; with no blanks, the block runs as it is."""
    if not blanks:
        yield
        return
    cursor.execute("SELECT @@SESSION.sql_mode")
    mode = str(cursor.fetchone()[0])
    relaxed = ",".join(m for m in mode.split(",") if m and m not in STRICT_MODES)
    cursor.execute("SET SESSION sql_mode = %s", (relaxed,))
    try:
        yield
        _check_warnings(cursor, blanks, columns)
    finally:
        cursor.execute("SET SESSION sql_mode = %s", (mode,))


def _check_warnings(cursor: Any, blanks: int, columns: Sequence[str]) -> None:
    cursor.execute("SHOW COUNT(*) WARNINGS")
    count = int(cursor.fetchone()[0])
    cursor.execute("SHOW WARNINGS LIMIT 10")
    shown = cursor.fetchall()
    expected = [f"column '{name}'" for name in columns]
    stray = [w for w in shown if int(w[1]) != TRUNCATED or not any(e in w[2] for e in expected)]
    if count != blanks or stray:
        detail = "; ".join(f"{w[0]} {w[1]}: {w[2]}" for w in (stray or shown)[:3])
        raise BlankEnumWriteError(
            f"writing {blanks} ENUM error value(s) ('') raised {count} warning(s): {detail}"
        )


class BlankEnumWriteError(LoadDataError):
    """A write carrying ENUM blanks truncated something else too: nothing of it is kept."""
