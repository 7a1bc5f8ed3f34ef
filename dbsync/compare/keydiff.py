"""Which primary keys one table has and another lacks, found by aggregates the servers compute.

Every key gets an identity: its exact text form (one column's text, or the columns' texts
length-prefixed, so no two keys share one). ``h = CRC32(identity)`` places it in a bucket:
the low ``bits`` bits of ``h``. Both servers fold each bucket to ``(rows, BIT_XOR(h * MIX))`` in one
index-only scan; only buckets whose folds differ are looked at again, with more bits (each
bucket splits into sub-buckets nested in it), until few enough rows remain (``fetch_limit``);
only then are the identities of those buckets fetched and compared exactly. When the
whole-table fold matches on both sides nothing else runs.

A table keyed by one integer column is bucketed by key ranges instead of hashes
(:func:`ranged`; the sides' ``key_bounds``): its deeper folds and the identities of the
buckets that differ are then read through short ranges of the primary key, not another scan
of the table.

Costs (1,000,000 integer keys, this machine): the whole-table fold ~0.15-0.25 s per side, a
fold into 32,768 buckets ~0.3 s; the two sides run at the same time. 1,000 deletes spread
over 1,000,000 rows: ~0.7 s in all measured alone, ~1.0 s inside a sync (whole-table fold,
one bucketed fold, 1,000 key ranges read), against ~1.3 s with hash buckets (a third scan to
fetch the identities). Buckets and key lists cross the network packed in one text value
(:func:`dbsync.backends.key_folds.read_folds`): read as rows, PyMySQL's parsing in Python
cost ~0.5 s more. A fold
never asks for more than ``MAX_GROUPS`` buckets at once (past that MariaDB's GROUP BY spills
to disk, ~10x slower).

A key can only be reported because its identity is missing on the other side, so a
difference is exact; a difference can be *missed* (two sets folding alike), which only
delays a delete to a later run. Identities are exact text: keys that are equal under a
case-insensitive collation but spelled differently are reported, so callers must re-check
candidates with the server's own comparison before acting on them (``dbsync.compare.deletes``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dbsync.model import Buckets, Fold, Key, Side

MAX_GROUPS = 65_536  # buckets one fold may return (in-memory GROUP BY on MariaDB)
MIN_ROWS_PER_BUCKET = 16  # the first fold's finest buckets
# fetch identities once the differing buckets hold at most this many rows, or an eighth of
# the table: shipping an identity costs about as much as scanning eight index entries, so
# that is cheaper than one more scan (measured: 1,000,000 and 10,000,000 integer keys)
FETCH_ROWS = 100_000
BATCH_ROWS = 1_000_000  # identities fetched per side and statement when many buckets differ
HASH_BITS = 32  # CRC32
MIN_SPLIT = 16  # a deeper fold must split each differing bucket at least this many ways


# --- narrowing: pure functions ---------------------------------------------------------


def first_bits(rows: int, differences: int = 1) -> int:
    """Bits of the first fold, sized for the differences expected (at least the gap between
    the row counts): a fold returns three numbers a bucket and fetching returns one or two a
    row, so ``r = sqrt(2 rows / differences)`` rows a bucket moves the fewest values in all
    (1,000 differences in 1,000,000 rows: ~45 a bucket, 32,768 buckets). At least
    ``MIN_ROWS_PER_BUCKET`` rows a bucket, at most ``MAX_GROUPS`` buckets."""
    per_bucket = max(math.isqrt(2 * rows // max(differences, 1)), MIN_ROWS_PER_BUCKET)
    wanted = max(rows // per_bucket, 1)
    return min(wanted.bit_length(), MAX_GROUPS.bit_length() - 1)


def differing(source: dict[int, Fold], target: dict[int, Fold]) -> tuple[int, ...]:
    """Buckets whose folds differ (a bucket missing on one side folds to (0, 0))."""
    return tuple(sorted(b for b in source.keys() | target.keys() if source.get(b) != target.get(b)))


def rows_behind(buckets: Sequence[int], *folds: dict[int, Fold]) -> int:
    """How many rows the given buckets hold on the larger side (what fetching them costs)."""
    return sum(max(f.get(b, (0, 0))[0] for f in folds) for b in buckets)


def deeper_bits(bits: int, buckets: int) -> int | None:
    """Bits of the next fold: each of ``buckets`` split as finely as MAX_GROUPS allows; None
    when that would split each bucket less than ``MIN_SPLIT`` ways (most buckets differ:
    fetching their identities is cheaper than another scan) or the hash has no bits left."""
    split = MAX_GROUPS // max(buckets, 1)
    if split < MIN_SPLIT or bits >= HASH_BITS:
        return None
    return min(bits + split.bit_length() - 1, HASH_BITS)


@dataclass(frozen=True)
class Narrowed:
    """Buckets at one depth that hold every key present on only one side, each with the
    rows it holds on the larger side (empty when the folds agree)."""

    bits: int
    rows: dict[int, int]
    counts: tuple[int, int] = (0, 0)  # rows of each side, from the first (whole-table) fold

    def batches(self, limit: int | None = None) -> Iterator[Buckets]:
        """The buckets in groups of about ``limit`` rows (default ``BATCH_ROWS``), so memory
        stays bounded even when most of a large table differs."""
        limit = limit or BATCH_ROWS
        group: list[int] = []
        held = 0
        for bucket, behind in sorted(self.rows.items()):
            if group and held + behind > limit:
                yield Buckets(self.bits, (self.bits, tuple(group)))
                group, held = [], 0
            group.append(bucket)
            held += behind
        if group:
            yield Buckets(self.bits, (self.bits, tuple(group)))


def fetch_limit(rows: int) -> int:
    """Rows of differing buckets worth fetching rather than folding the table once more."""
    return min(max(FETCH_ROWS, rows // 8), BATCH_ROWS)


def narrow(
    sides: tuple[Side, Side], rows: int, differences: int = 1, enough: int | None = None
) -> Narrowed:
    """Fold ever finer until the differing buckets hold at most ``enough`` rows (default
    ``fetch_limit``; or cannot usefully be split further)."""
    enough = fetch_limit(rows) if enough is None else enough
    buckets = Buckets(first_bits(rows, differences))
    counts: tuple[int, int] | None = None
    while True:
        source, target = _both(sides, lambda side, at=buckets: side.folds(at))
        counts = counts or (_rows(source), _rows(target))
        changed = differing(source, target)
        deeper = deeper_bits(buckets.bits, len(changed))
        behind = rows_behind(changed, source, target)
        if not changed or deeper is None or behind <= enough:
            held = {b: rows_behind((b,), source, target) for b in changed}
            return Narrowed(buckets.bits, held, counts)
        buckets = Buckets(deeper, (buckets.bits, changed))


def _rows(folds: dict[int, Fold]) -> int:
    return sum(rows for rows, _ in folds.values())


def _both(sides: tuple[Side, Side], work: Callable[[Side], Any]) -> tuple[Any, Any]:
    """Run the same step on source and target at once (two servers, two connections)."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dbsync-keydiff") as pool:
        source, target = pool.map(work, sides)
    return source, target


@dataclass
class KeyDiff:
    """The outcome of comparing the key sets of a source and a target table."""

    source_rows: int
    target_rows: int
    only_in_target: list[Key]  # the target's own key values (native driver types)
    only_in_source: int = 0

    @property
    def same(self) -> bool:
        return not self.only_in_target and not self.only_in_source


def ranged(sides: tuple[Side, Side]) -> tuple[Side, Side]:
    """Both sides bucketed by key ranges when both are keyed by one integer column (the same
    bounds on both), so narrowing reads the differing ranges instead of the whole table."""
    bounds = _both(sides, lambda side: side.key_bounds())
    if None in bounds:
        return sides
    low, high = min(b[0] for b in bounds), max(b[1] for b in bounds)
    return sides[0].ranged(low, high), sides[1].ranged(low, high)


def totals(sides: tuple[Side, Side]) -> tuple[Fold, Fold]:
    """The whole-table folds of both sides."""
    return _both(sides, lambda side: side.total())


def compare(sides: tuple[Side, Side], folds: tuple[Fold, Fold] | None = None) -> KeyDiff:
    """Keys only in the target (with their values) and how many are only in the source."""
    source_total, target_total = folds or totals(sides)
    diff = KeyDiff(source_total[0], target_total[0], [])
    if source_total == target_total:
        return diff
    rows = max(source_total[0], target_total[0])
    sides = ranged(sides)
    size = sides[0].sizing(rows)
    gap = abs(source_total[0] - target_total[0]) * size // max(rows, 1)
    narrowed = narrow(sides, size, gap)
    for buckets in narrowed.batches():
        source_rows, target_rows = _both(
            sides, lambda side, at=buckets: side.identities(at, with_keys=side is sides[1])
        )
        source_ids = {row[0] for row in source_rows}
        target_ids = {row[0] for row in target_rows}
        diff.only_in_target += [tuple(row[1:]) for row in target_rows if row[0] not in source_ids]
        diff.only_in_source += len(source_ids - target_ids)
    return diff
