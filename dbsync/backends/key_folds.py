"""Where a table's keys are folded for the key comparison of :mod:`dbsync.compare.keydiff`.

:class:`ServerSide`: MySQL/MariaDB fold on the server (CRC32 and BIT_XOR), only buckets cross
the network. :class:`LocalSide`: databases without those functions (the SQLite demo) read the
keys once and fold them in Python, the same way. Both compute a key's identity alike
(:func:`identity_sql`, :func:`identity_text`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dbsync.backends.engines import fetch_all
from dbsync.backends.mysql.schema import qualified, quote
from dbsync.backends.mysql.types import INTEGER_RANK, text_expression
from dbsync.model import Buckets, Fold, KeySet, TableSchema

# CRC32 is linear over GF(2): keys like consecutive integers make different sets whose CRCs
# XOR alike. Folding CRC32 * MIX (Knuth's multiplicative constant; carries are not linear)
# breaks those relations; the product stays below 2**64, an unsigned BIGINT on the server.
MIX = 2_654_435_761
SPAN_LIMIT = 1 << 62  # key offsets stay far inside a signed BIGINT on the server
RANGES_PER_STATEMENT = 16  # key ranges one statement reads (each row is checked against all)


def identity_sql(schema: TableSchema, key: Sequence[str]) -> str:
    """SQL for a key's exact text identity (length-prefixed parts for a composite key)."""
    columns = [schema.column(k) for k in key]
    texts = [text_expression(c, quote(c.name)) for c in columns if c is not None]
    if len(texts) == 1:
        return texts[0]
    parts = [f"CONVERT({t} USING utf8mb4)" for t in texts]
    return "CONCAT(" + ", ".join(f"CHAR_LENGTH({p}), ':', {p}" for p in parts) + ")"


def identity_text(values: Iterable[Any]) -> str:
    """The identity of a key read as text values, as ``identity_sql`` forms it (SQLite)."""
    texts = ["" if v is None else str(v) for v in values]
    if len(texts) == 1:
        return texts[0]
    return "".join(f"{len(t)}:{t}" for t in texts)


def _mask(bits: int) -> int:
    return (1 << bits) - 1


Fetch = Callable[[str], Sequence[tuple[Any, ...]]]


def read_folds(fetch: Fetch, bucket: str, fold: str, rows: str) -> dict[int, Fold]:
    """Fold ``rows`` (what follows ``FROM``: a table, its conditions) into buckets of the
    ``bucket`` expression, each bucket ``(rows, BIT_XOR(fold))``, through ``fetch`` (one
    statement's result rows); the buckets come back packed (:func:`read_packed`)."""
    grouped = (
        f"SELECT {bucket} AS b, COUNT(*) AS n, BIT_XOR({fold}) AS x FROM {rows} "
        "GROUP BY 1 ORDER BY NULL"  # by position: a name could be one of the table's own
    )
    packed = read_packed(fetch, ("b", "n", "x"), f"({grouped}) AS f")
    found = fetch(grouped) if packed is None else packed
    return {int(b): (int(n), int(x)) for b, n, x in found}


def read_packed(fetch: Fetch, numbers: Sequence[str], rows: str) -> list[tuple[str, ...]] | None:
    """The ``numbers`` (SQL expressions of integers) of every row of ``rows``, as their texts,
    read packed into one text value; None when the server cut the text short
    (``group_concat_max_len``, ``max_allowed_packet``): the caller reads rows instead.

    PyMySQL parses result rows in Python, and both sides of a comparison share one Python
    process: a fold of 1,000,000 keys into 31,250 buckets cost 0.12-0.25 s more read as rows
    than as one text, the keys of 1,000 differing key ranges ~0.2 s more."""
    values = ", ' ', ".join(numbers)
    count, text = fetch(f"SELECT COUNT(*), GROUP_CONCAT({values} SEPARATOR ' ') FROM {rows}")[0]
    texts = text.split() if text else []
    if len(texts) != len(numbers) * int(count):
        return None
    return list(zip(*[iter(texts)] * len(numbers), strict=True))


class ServerSide:
    """MySQL/MariaDB: the server folds and filters; only buckets cross the network."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys
        self.table = qualified(keys.database, keys.schema.name)
        self.identity = identity_sql(keys.schema, keys.key)
        self.hash = f"CRC32({self.identity})"  # places a row in a bucket
        self.fold = f"{self.hash} * {MIX}"  # what a bucket XORs (subclasses: row content)

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of one statement, in the key set's snapshot if it has one."""
        snapshot = self.keys.snapshot
        if snapshot is None:
            return fetch_all(self.keys.engine, sql)
        cursor = snapshot.cursor()
        try:
            cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def total(self) -> Fold:
        sql = f"SELECT COUNT(*), COALESCE(BIT_XOR({self.fold}), 0) FROM {self.table}"
        rows, xor = self._fetch(sql)[0]
        return int(rows), int(xor)

    def where(self, buckets: Buckets) -> str:
        if buckets.within is None:
            return ""
        bits, numbers = buckets.within
        listed = ", ".join(str(n) for n in numbers)
        return f" WHERE ({self.hash} & {_mask(bits)}) IN ({listed})"

    def folds(self, buckets: Buckets) -> dict[int, Fold]:
        bucket = f"{self.hash} & {_mask(buckets.bits)}"
        return read_folds(self._fetch, bucket, self.fold, f"{self.table}{self.where(buckets)}")

    def identities(self, buckets: Buckets, with_keys: bool) -> list[tuple[Any, ...]]:
        columns = [self.identity, *(quote(k) for k in self.keys.key if with_keys)]
        sql = f"SELECT {', '.join(columns)} FROM {self.table}{self.where(buckets)}"
        return self._fetch(sql)

    def key_bounds(self) -> tuple[int, int] | None:
        """(lowest, highest) key of a table keyed by one integer column whose keys span less
        than ``SPAN_LIMIT`` (None otherwise, or when empty): read off the primary key."""
        key = self.keys.key
        column = self.keys.schema.column(key[0]) if len(key) == 1 else None
        if column is None or column.data_type not in INTEGER_RANK:
            return None
        name = quote(column.name)
        low, high = self._fetch(f"SELECT MIN({name}), MAX({name}) FROM {self.table}")[0]
        if low is None or int(high) - int(low) >= SPAN_LIMIT:
            return None
        return int(low), int(high)

    def sizing(self, rows: int) -> int:
        """The rows the first fold's buckets are sized for (hash buckets: the rows)."""
        return rows

    def ranged(self, low: int, high: int) -> ServerSide:
        """The same keys bucketed by ranges of ``[low, high]`` (both sides given the same)."""
        return RangeSide(self.keys, low, high)


class KeyRanges:
    """Key-range buckets over one integer key column, for a side whose table is keyed by it:
    bucket ``n`` at depth ``bits`` holds the keys whose offset from ``low`` has ``n`` in its
    highest ``bits`` bits (nested: a bucket splits into the ranges of its halves). Reading
    some buckets reads only their ranges of the primary key. Mixed into a side before its
    server class (``where`` and ``sizing`` replace the hash buckets' own)."""

    ranges_per_statement = RANGES_PER_STATEMENT
    low: int
    span_bits: int
    key: str

    def _place(self, keys: KeySet, low: int, high: int) -> None:
        self.low = low
        self.span_bits = max((high - low).bit_length(), 1)
        self.key = quote(keys.key[0])

    def sizing(self, rows: int) -> int:
        """Sized for the span of the keys: over sparse keys the buckets that hold keys
        hold as few as hash buckets would."""
        return max(rows, 1 << self.span_bits)

    def _shift(self, bits: int) -> int:
        return max(self.span_bits - bits, 0)

    def bucket_sql(self, bits: int) -> str:
        return f"(({self.key} - {self.low}) >> {self._shift(bits)})"

    def where(self, buckets: Buckets) -> str:
        """All of ``buckets.within``'s key ranges in one condition (see :meth:`_parts`)."""
        return "".join(self._parts(buckets, limit=0))

    def _parts(self, buckets: Buckets, limit: int | None = None) -> list[str]:
        """WHERE clauses covering ``buckets.within``'s key ranges, at most ``limit`` ranges
        each (None: ``ranges_per_statement``; 0: all in one): the server checks each row it
        reads against every range of its statement's OR."""
        if buckets.within is None:
            return [""]
        bits, numbers = buckets.within
        shift = self._shift(bits)
        ranges = [
            f"({self.key} >= {self.low + (first << shift)} "
            f"AND {self.key} < {self.low + ((last + 1) << shift)})"
            for first, last in runs(numbers)
        ]
        size = (self.ranges_per_statement if limit is None else limit) or len(ranges)
        return [
            " WHERE " + " OR ".join(ranges[start : start + size])
            for start in range(0, len(ranges), size)
        ]


class RangeSide(KeyRanges, ServerSide):
    """Keys of one integer column bucketed by key ranges (:class:`KeyRanges`): narrowing
    1,000 deletes in 1,000,000 rows reads 1,000 short ranges after one bucketed scan, not
    the table again."""

    def __init__(self, keys: KeySet, low: int, high: int) -> None:
        super().__init__(keys)
        self._place(keys, low, high)

    def folds(self, buckets: Buckets) -> dict[int, Fold]:
        bucket = self.bucket_sql(buckets.bits)
        found: dict[int, Fold] = {}
        for where in self._parts(buckets):
            found.update(read_folds(self._fetch, bucket, self.fold, f"{self.table}{where}"))
        return found

    def identities(self, buckets: Buckets, with_keys: bool) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for where in self._parts(buckets):
            found += self._keys_in(where, with_keys)
        return found

    def _keys_in(self, where: str, with_keys: bool) -> list[tuple[Any, ...]]:
        """The keys of one statement's ranges, packed (:func:`read_packed`): an integer key's
        identity is its decimal text."""
        packed = read_packed(self._fetch, (self.key,), f"{self.table}{where}")
        if packed is None:
            columns = ", ".join([self.identity, *([self.key] if with_keys else [])])
            return self._fetch(f"SELECT {columns} FROM {self.table}{where}")
        return [(k, int(k)) if with_keys else (k,) for (k,) in packed]


def runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted numbers as runs of consecutive ones: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    found: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if found and n == found[-1][1] + 1:
            found[-1] = (found[-1][0], n)
        else:
            found.append((n, n))
    return found


class LocalSide:
    """Databases without CRC32 and BIT_XOR (the SQLite demo): the same folds, in Python."""

    def __init__(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """``rows``: (identity, key values...), each hashed once here for every fold."""
        self._hashed = [(self._hash(row[0]), row) for row in rows]

    @classmethod
    def read(cls, keys: KeySet, expressions: Sequence[str]) -> LocalSide:
        """The keys of a table, read whole (``expressions``: each key column as text)."""
        columns = ", ".join([*expressions, *(quote(k) for k in keys.key)])
        sql = f"SELECT {columns} FROM {qualified(keys.database, keys.schema.name)}"
        width = len(keys.key)
        return cls(
            (identity_text(row[:width]), *row[width:]) for row in fetch_all(keys.engine, sql)
        )

    @staticmethod
    def _hash(identity: str) -> int:
        return zlib.crc32(identity.encode())

    def _selected(self, buckets: Buckets) -> Iterable[tuple[int, tuple[Any, ...]]]:
        bits, numbers = buckets.within or (0, (0,))
        chosen = set(numbers)
        return ((h, row) for h, row in self._hashed if h & _mask(bits) in chosen)

    def total(self) -> Fold:
        return fold_all(h for h, _ in self._selected(Buckets(0)))

    def folds(self, buckets: Buckets) -> dict[int, Fold]:
        folds: dict[int, Fold] = {}
        for h, _row in self._selected(buckets):
            bucket = h & _mask(buckets.bits)
            rows, xor = folds.get(bucket, (0, 0))
            folds[bucket] = (rows + 1, xor ^ (h * MIX))
        return folds

    def identities(self, buckets: Buckets, with_keys: bool) -> list[tuple[Any, ...]]:
        return [row if with_keys else row[:1] for _h, row in self._selected(buckets)]

    def key_bounds(self) -> tuple[int, int] | None:
        return None  # read whole already: hash buckets cost nothing more

    def sizing(self, rows: int) -> int:
        return rows

    def ranged(self, low: int, high: int) -> LocalSide:
        return self


def fold_all(hashes: Iterable[int]) -> Fold:
    rows = xor = 0
    for h in hashes:
        rows += 1
        xor ^= h * MIX
    return rows, xor
