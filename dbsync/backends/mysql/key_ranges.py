"""Primary-key ranges: the lexicographic predicate for a (composite) key, and the split of a
table into ranges of about N rows found from the key index in one server-side pass.

Ranges are half-open, ``lower <= key < upper``, with open ends at the first and last, so a
split covers the whole key space: a key equal to a boundary belongs to exactly one range,
and a row inserted anywhere later falls into some range.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from dbsync.backends.mysql.schema import qualified, quote
from dbsync.backends.mysql.types import literal
from dbsync.config.errors import reader_error

Key = tuple[Any, ...]
# never part of a MySQL identifier: marks where a literal goes when parameters are inlined
_INLINE = "\x00"


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


def range_sql(key: Sequence[str], lower: Key | None, upper: Key | None) -> str:
    """``range_predicate`` with its values written in as literals (for any driver)."""
    sql, params = range_predicate(key, lower, upper, _INLINE)
    pieces = sql.split(_INLINE)
    out = [pieces[0]]
    for value, piece in zip(params, pieces[1:], strict=True):
        out += [literal(value), piece]
    return "".join(out)


def walk_split_points(
    engine: Engine,
    database: str,
    table: str,
    key: Sequence[str],
    every: int,
    after: Key | None = None,
) -> Iterator[Key]:
    """Every ``every``-th key in key order after the split point ``after`` (None: from the
    first key), one at a time, so that a copy can start on its first range while the rest
    are found; nothing when at most ``every`` rows follow.

    Each step is one statement that walks ``every`` entries of the primary key index on the
    server from the previous split point (``LIMIT 1 OFFSET every``): one pass over the index
    in all, and only the split points cross the network.
    """
    try:
        yield from _walk(engine, qualified(database, table), key, every, after)
    except Exception as exc:  # a source read like the extraction's: named and classified
        raise reader_error(exc, table) from None


def _walk(
    engine: Engine, table: str, key: Sequence[str], every: int, after: Key | None
) -> Iterator[Key]:
    columns = ", ".join(quote(k) for k in key)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        while True:
            where = f" WHERE {range_sql(key, after, None)}" if after is not None else ""
            cursor.execute(
                f"SELECT {columns} FROM {table}{where} "
                f"ORDER BY {columns} LIMIT 1 OFFSET {int(every)}"
            )
            row = cursor.fetchone()
            raw.commit()  # each step reads the table as it is now: no long-lived snapshot
            if row is None:
                return
            after = tuple(row)
            yield after
    finally:
        raw.close()


def encode_key(values: Key | None) -> str | None:
    """A key as JSON text for the progress table (bytes and dates tagged)."""
    if values is None:
        return None
    return json.dumps([_encode(v) for v in values])


def decode_key(text: str | None) -> Key | None:
    if text is None:
        return None
    return tuple(_decode(v) for v in json.loads(text))


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray):
        return {"hex": bytes(value).hex()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, datetime | date | time | timedelta):
        return {"text": value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)}
    return {"text": str(value)}


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "hex" in value:
        return bytes.fromhex(value["hex"])
    if "decimal" in value:
        return Decimal(value["decimal"])
    return value["text"]
