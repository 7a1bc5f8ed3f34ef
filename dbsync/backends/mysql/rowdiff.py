"""MySQL/MariaDB statements of the row-content comparison (:mod:`dbsync.compare.rowdiff`)
and of applying its repairs (:mod:`dbsync.compare.reconcile`).

A row's fingerprint is ``CRC32`` over its exact text form: every compared column's
:func:`dbsync.backends.mysql.types.comparable_text` (the text extraction reads, in utf8mb4), in the
order of the names given (the source's), joined with ``#``; textual and byte values enter as
the CRC32 of their text (digits, so no value can hold a ``#``), ENUMs and TIMESTAMPs of the
same type on both sides as numbers (:func:`_fingerprint_part`), and a map of the columns that
may be NULL (on either side) ends the text, so NULL and ``''`` differ. Both sides build their
fingerprint from one :class:`Fingerprint`, so their texts are formed alike. Buckets are
placed by the key's
hash exactly as :mod:`dbsync.compare.keydiff` places them, or by key ranges
(:class:`RangeRowSide`), so a row lands in the same bucket on both sides whatever its content;
a bucket XORs ``fingerprint * MIX`` (the multiplication breaks CRC32's linearity: a bulk
``SET x = x + 1`` flips the same bits in many rows, and plain CRC32s of such rows XOR alike).

Measured (1,000,000 rows of the bench's events table, 10 columns, this 2-core machine, one
side alone): a clustered scan ~0.45 s; the fingerprint fold 1.8 s with ``CAST(double AS
CHAR)`` (0.55 s of it the DOUBLE column's text, whose shortest round-trip digits the server
finds slowly) and a NULL flag for every column; 1.2 s with ``SFORMAT('{}', double)`` (the same
shortest round-trip digits, by the {fmt} library, nearly free) and flags only for the columns
that may be NULL; ``CHECKSUM TABLE`` 0.6-1.1 s. On a server whose buffer pool holds the
table (the scan ~0.1 s): 1.15 s with every text value in the row's text, 0.90-0.97 s with
text and bytes as their CRC32 and ENUM/TIMESTAMP as numbers; ``CHECKSUM TABLE`` ~0.35 s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from dbsync.backends.engines import fetch_all
from dbsync.backends.key_folds import MIX, KeyRanges, ServerSide, read_folds, read_packed
from dbsync.backends.mysql.enum_blanks import blank_rejecting, blanks_in_rows, writing_blanks
from dbsync.backends.mysql.schema import quote
from dbsync.backends.mysql.types import (
    BIT,
    DOUBLE,
    ENUM,
    FLOAT,
    TEXTUAL,
    TIMESTAMP,
    comparable_text,
    is_binary,
    load_expression,
    text_expression,
)
from dbsync.model import Buckets, Column, Fold, Key, KeySet, TableSchema

T = TypeVar("T")

# Doubles whose shortest round-trip text tests a server's SFORMAT (MariaDB 10.7+, the {fmt}
# library): both servers must print them alike for the fingerprints to use it.
FLOAT_PROBE = (
    "SELECT SFORMAT('{}|{}|{}|{}|{}|{}|{}', 0.1e0, 1e300, 5e-324, -0e0, 1.7976931348623157e308, "
    "123456789012345680000e0, CAST(CAST(0.1 AS FLOAT) AS DOUBLE))"
)


@dataclass(frozen=True)
class Fingerprint:
    """What a row's fingerprint covers, one for both sides so that their texts compare."""

    columns: tuple[str, ...]  # by name, in this order (the source's)
    nullable: frozenset[str]  # columns that may be NULL on either side: in the NULL map
    short_floats: bool = False  # both servers print FLOAT/DOUBLE with SFORMAT('{}') alike
    alike: frozenset[str] = frozenset()  # columns of the very same type on both sides


def plan_fingerprint(source: KeySet, target: KeySet, columns: Sequence[str]) -> Fingerprint:
    """The fingerprint both sides of a comparison use (asks both servers about SFORMAT only
    when a compared column is FLOAT or DOUBLE)."""
    chosen = [c for s in (source.schema, target.schema) for c in _by_name(s, columns)]
    nullable = frozenset(c.name for c in chosen if c.nullable)
    floats = any(c.data_type in (FLOAT, DOUBLE) for c in chosen)
    short = floats and _prints_floats_alike(source.engine, target.engine)
    return Fingerprint(tuple(columns), nullable, short, _alike(source, target, columns))


def _alike(source: KeySet, target: KeySet, columns: Sequence[str]) -> frozenset[str]:
    """The columns whose type is the very same on both sides."""
    pairs = ((source.schema.column(n), target.schema.column(n)) for n in columns)
    return frozenset(s.name for s, t in pairs if s and t and s.column_type == t.column_type)


def _prints_floats_alike(source: Engine, target: Engine) -> bool:
    texts = []
    for engine in (source, target):
        try:
            texts.append(fetch_all(engine, FLOAT_PROBE)[0][0])
        except Exception:  # noqa: BLE001 - no SFORMAT (MySQL, MariaDB before 10.7)
            return False
    return texts[0] is not None and texts[0] == texts[1]


def _by_name(schema: TableSchema, columns: Sequence[str]) -> list[Column]:
    return [c for c in (schema.column(n) for n in columns) if c is not None]


def fingerprint_sql(schema: TableSchema, plan: Fingerprint) -> str:
    """CRC32 of a row's text over ``plan``'s columns, taken by name in its order, each text
    and byte value entering as its own CRC32 (:func:`row_text_sql` with ``compact``)."""
    return f"CRC32({row_text_sql(schema, plan, compact=True)})"


def row_text_sql(schema: TableSchema, plan: Fingerprint, *, compact: bool = False) -> str:
    """A row's exact text over ``plan``'s columns (what a fingerprint hashes); ``compact``:
    text and byte values as the CRC32 of their exact text instead of the text itself."""
    chosen = _by_name(schema, plan.columns)
    parts = [_fingerprint_part(c, plan, compact) for c in chosen]
    flags = [f"ISNULL({quote(c.name)})" for c in chosen if c.name in plan.nullable]
    if flags:
        parts.append(f"CONCAT({', '.join(flags)})")
    return f"CONCAT_WS('#', {', '.join(parts)})"


# a value's number, exact and cheaper than its text, where both sides' types are the same:
# an ENUM member's index (0 for the error value ''), a TIMESTAMP's stored epoch seconds
# (MariaDB reads them without a time zone conversion)
SAME_TYPE_NUMBERS = {ENUM: "{} + 0", TIMESTAMP: "UNIX_TIMESTAMP({})"}


def _fingerprint_part(column: Column, plan: Fingerprint, compact: bool = False) -> str:
    """A column's exact value in a row's fingerprint text.

    Numbers, DECIMAL and temporal values enter as the column itself: CONCAT_WS turns them
    into the very text ``CAST(... AS CHAR)`` gives, without the cast. Bytes (and BIT) enter
    as they are, textual values in utf8mb4, both prefixed with their byte length (only they
    can hold a ``#``); ``compact``: bytes and textual values (not BIT) enter as the CRC32 of
    that same value, digits that hold no ``#`` (the row's CRC32 no longer reads their whole
    text twice: 15% of a fold of the bench's events table; a change hidden by a collision
    of a value's CRC32 is as unlikely as one of the row's), and where a column's type is the
    very same on both sides an ENUM enters as its member's number and a TIMESTAMP as its
    stored seconds since the epoch (no text made: 6% more). DOUBLE and FLOAT: their shortest
    round-trip text through SFORMAT when both servers print it alike (a FLOAT as the DOUBLE
    it widens to), else the column (DOUBLE) or its DOUBLE text (FLOAT,
    :func:`dbsync.backends.mysql.types.text_expression`).
    """
    operand, short_floats = quote(column.name), plan.short_floats
    binary = is_binary(column.data_type, column.charset)
    if compact and column.name in plan.alike and column.data_type in SAME_TYPE_NUMBERS:
        return SAME_TYPE_NUMBERS[column.data_type].format(operand)
    if compact and (binary or column.data_type in TEXTUAL):
        return f"CRC32({operand if binary else comparable_text(column, operand)})"
    if binary or column.data_type == BIT:
        return f"LENGTH({operand}), ':', {operand}"
    if column.data_type in TEXTUAL:
        text = comparable_text(column, operand)
        return f"LENGTH({text}), ':', {text}"
    if short_floats and column.data_type == DOUBLE:
        return f"SFORMAT('{{}}', {operand})"
    if short_floats and column.data_type == FLOAT:
        return f"SFORMAT('{{}}', CAST({operand} AS DOUBLE))"
    if column.data_type == FLOAT:
        return text_expression(column, operand)
    return operand


# Statements of one side's fold running at once, each on its own connection, and the key
# ranges the whole table is folded in (more than run at once: over sparse keys some ranges
# hold few rows, and a connection done with one takes the next). Measured on one 2-core server
# holding both sides of 1,000,000 rows: the first fold 2.2-2.5 s in one statement a side,
# 1.8 s in two, 1.6 s in four (a side that finishes first no longer leaves a core idle); on
# two servers each side's ranges run on as many cores.
FOLD_PARTS = 4
FOLD_PIECES = 16


class ServerRowSide(ServerSide):
    """One table's rows, bucketed by key and folded by content, on its own server."""

    def __init__(self, keys: KeySet, plan: Fingerprint) -> None:
        super().__init__(keys)
        self.plan = plan
        self.fingerprint = fingerprint_sql(keys.schema, plan)
        self.fold = f"{self.fingerprint} * {MIX}"

    def count(self) -> int:
        """The table's rows (an index-only scan)."""
        return int(fetch_all(self.keys.engine, f"SELECT COUNT(*) FROM {self.table}")[0][0])

    def highest(self, column: str) -> str | None:
        """The column's highest value as text (a cursor's, by its index), None if none."""
        sql = f"SELECT CAST(MAX({quote(column)}) AS CHAR) FROM {self.table}"
        value = fetch_all(self.keys.engine, sql)[0][0]
        return None if value is None else str(value)

    def rows(self, buckets: Buckets) -> list[tuple[Any, ...]]:
        """(identity, fingerprint, key values...) of every row in ``buckets``."""
        columns = [self.identity, self.fingerprint, *(quote(k) for k in self.keys.key)]
        sql = f"SELECT {', '.join(columns)} FROM {self.table}{self.where(buckets)}"
        return fetch_all(self.keys.engine, sql)

    def ranged(self, low: int, high: int) -> ServerRowSide:
        """The same rows bucketed by key ranges of ``[low, high]`` (both sides must be given
        the same bounds)."""
        return RangeRowSide(self.keys, self.plan, low, high)


class RangeRowSide(KeyRanges, ServerRowSide):
    """Rows of a table keyed by one integer column, bucketed by ranges of the key
    (:class:`dbsync.backends.key_folds.KeyRanges`). A fold of some buckets reads only their
    key ranges through the primary key, and listing a bucket's rows reads only its range:
    narrowing costs the differing ranges, not another scan of the table (1,000 differences
    in 1,000,000 rows: 1,000 short range reads instead of a scan).
    """

    ranges_per_statement = 64

    def __init__(self, keys: KeySet, plan: Fingerprint, low: int, high: int) -> None:
        super().__init__(keys, plan)
        self._place(keys, low, high)

    def folds(self, buckets: Buckets) -> dict[int, Fold]:
        """The buckets' folds, ``FOLD_PARTS`` statements at once (the whole table: in
        ``FOLD_PIECES`` key ranges, see :meth:`_pieces`)."""
        parts = self._pieces(buckets.bits) if buckets.within is None else self._parts(buckets)
        engine, bucket = self.keys.engine, self.bucket_sql(buckets.bits)

        def fold(where: str) -> dict[int, Fold]:
            fetch = partial(fetch_all, engine)
            return read_folds(fetch, bucket, self.fold, f"{self.table}{where}")

        found: dict[int, Fold] = {}
        for folds in _at_once(fold, parts):
            found.update(folds)
        return found

    def _pieces(self, bits: int) -> list[str]:
        """The whole table as ``FOLD_PIECES`` key ranges cut at bucket boundaries, the first
        and the last open-ended (rows written since the key bounds were read are folded
        too): one server folds them on as many cores, and a side that finishes early leaves
        its core to the other side's pieces (both sides on one server)."""
        count = 1 << bits
        cuts = sorted({count * i // FOLD_PIECES for i in range(1, FOLD_PIECES)} - {0})
        bounds = [None, *(self.low + (c << self._shift(bits)) for c in cuts), None]
        return [self._between(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]

    def _between(self, first: int | None, end: int | None) -> str:
        conditions = [f"{self.key} >= {first}"] if first is not None else []
        conditions += [f"{self.key} < {end}"] if end is not None else []
        return " WHERE " + " AND ".join(conditions) if conditions else ""

    def rows(self, buckets: Buckets) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for where in self._parts(buckets):
            found += self._rows_in(where)
        return found

    def _rows_in(self, where: str) -> list[tuple[Any, ...]]:
        """(identity, fingerprint, key) of one statement's ranges, packed
        (:func:`dbsync.backends.key_folds.read_packed`): the key is an integer, its identity
        its decimal text."""
        packed = read_packed(self._fetch, (self.key, self.fingerprint), f"{self.table}{where}")
        if packed is None:
            columns = ", ".join([self.identity, self.fingerprint, self.key])
            return self._fetch(f"SELECT {columns} FROM {self.table}{where}")
        return [(k, int(fp), int(k)) for k, fp in packed]


def _at_once(work: Callable[[str], T], parts: Sequence[str]) -> list[T]:
    """``work`` done for each part, up to ``FOLD_PARTS`` at once (each on its own
    connection)."""
    if len(parts) <= 1:
        return [work(part) for part in parts]
    workers = min(len(parts), FOLD_PARTS)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dbsync-fold") as pool:
        return list(pool.map(work, parts))


def table_checksum(engine: Engine, table: str) -> int | None:
    """``CHECKSUM TABLE`` (the storage engine's own row checksum, one scan without any
    expression); None when the server keeps none (the table is gone)."""
    rows = fetch_all(engine, f"CHECKSUM TABLE {table}")
    value = rows[0][1] if rows else None
    return None if value is None else int(value)


# UPDATE_TIME is the server's in-memory note of a table's last committed change (InnoDB: the
# start of the transaction that committed it, to the second; NULL after a restart or for a
# table not written since); both it and NOW() are in the session's time zone.
WRITTEN_WITHIN_SQL = (
    "SELECT UPDATE_TIME >= NOW() - INTERVAL %s SECOND FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
)


def written_within(engine: Engine, schema: str, table: str, seconds: float) -> bool | None:
    """Whether the server noted a committed change to the table in the last ``seconds`` (by
    its own clock); None when it keeps no note. A hint only: a transaction that began earlier
    and committed later is noted at its start."""
    rows = fetch_all(engine, WRITTEN_WITHIN_SQL, (int(seconds) + 1, schema, table))
    if not rows or rows[0][0] is None:
        return None
    return bool(rows[0][0])


def key_match(key: Sequence[str], count: int, placeholder: str) -> str:
    """A WHERE condition matching ``count`` keys (bound in order)."""
    if len(key) == 1:
        return f"{quote(key[0])} IN ({', '.join(placeholder for _ in range(count))})"
    match = "(" + " AND ".join(f"{quote(k)} = {placeholder}" for k in key) + ")"
    return "(" + " OR ".join(match for _ in range(count)) + ")"


def read_rows_sql(
    schema: TableSchema,
    table: str,
    key: Sequence[str],
    count: int,
    placeholder: str,
    cursor_cap: str | None = None,
) -> str:
    """The source's current rows for ``count`` keys, every column as exact text (as
    extraction reads them); with ``cursor_cap`` only rows whose cursor is at most it (bound
    after the keys) or NULL."""
    texts = ", ".join(text_expression(c, quote(c.name)) for c in schema.columns)
    where = key_match(key, count, placeholder)
    if cursor_cap is not None:
        where += f" AND ({quote(cursor_cap)} <= {placeholder} OR {quote(cursor_cap)} IS NULL)"
    return f"SELECT {texts} FROM {table} WHERE {where}"


def read_rows(
    engine: Engine,
    schema: TableSchema,
    table: str,
    key: Sequence[str],
    keys: Sequence[Key],
    cursor_cap: tuple[str, str] | None,
) -> list[tuple[Any, ...]]:
    """The rows of ``table`` (qualified) with these keys, as exact text; see
    :func:`read_rows_sql`."""
    if not keys:
        return []
    cap = cursor_cap[0] if cursor_cap else None
    sql = read_rows_sql(schema, table, key, len(keys), "%s", cap)
    params = [v for values in keys for v in values] + ([cursor_cap[1]] if cursor_cap else [])
    return fetch_all(engine, sql, params)


def upsert_sql(schema: TableSchema, table: str, rows: int, placeholder: str) -> str:
    """Insert ``rows`` rows given as exact text, or update the row with the same key (the
    key columns too: under a case-insensitive collation the target takes the source's
    spelling)."""
    names = [quote(c) for c in schema.column_names]
    values = []
    for column in schema.columns:
        expression = load_expression(column, placeholder)
        values.append(expression or placeholder)
    row = "(" + ", ".join(values) + ")"
    updates = ", ".join(f"{n} = VALUES({n})" for n in names)
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join(row for _ in range(rows))} "
        f"ON DUPLICATE KEY UPDATE {updates}"
    )


def delete_sql(table: str, key: Sequence[str], count: int, placeholder: str) -> str:
    return f"DELETE FROM {table} WHERE {key_match(key, count, placeholder)}"


WRITE_BATCH = 500  # rows upserted (keys deleted) per statement


def write_rows(
    engine: Engine,
    schema: TableSchema,
    table: str,
    key: Sequence[str],
    rows: Sequence[Sequence[Any]],
    gone: Sequence[Sequence[Any]],
) -> int:
    """Upsert ``rows`` (exact text of ``schema``'s columns) and delete the ``gone`` keys in
    one transaction; returns how many rows were deleted."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        positions = blank_rejecting(schema.columns)
        names = [schema.columns[i].name for i in positions]
        for start in range(0, len(rows), WRITE_BATCH):
            batch = rows[start : start + WRITE_BATCH]
            with writing_blanks(cursor, blanks_in_rows(batch, positions), names):
                cursor.execute(
                    upsert_sql(schema, table, len(batch), "%s"), [v for row in batch for v in row]
                )
        deleted = 0
        for start in range(0, len(gone), WRITE_BATCH):
            batch = gone[start : start + WRITE_BATCH]
            cursor.execute(delete_sql(table, key, len(batch), "%s"), [v for k in batch for v in k])
            deleted += int(cursor.rowcount)
        raw.commit()
        return deleted
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
