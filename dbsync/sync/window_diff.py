"""Which rows of an incremental read's window the target does not already hold as is.

A window (the rows at or after the read's start, and those with a NULL cursor) is read,
staged and merged whole unless it is known to be in the target already. Both servers count
it (an index range on the cursor); when the counts agree and the window is small
(``FETCH_LIMIT`` rows), one checksum of the window on each side decides all or nothing, as
before. A larger window is compared bucket by bucket, the way deletes compare keys
(:func:`dbsync.compare.keydiff.narrow`): each server folds the window's rows into buckets of
about 16 rows by their key (:meth:`dbsync.dialect.Dialect.window_sides`: row count and the
XOR of each row's MD5), finer where they differ, and only the rows of the differing buckets
are read. A window of 100,000 rows sharing one cursor value, 100 of them changed, reads
about 1,200 rows.

A bucket that folds alike on both sides while its rows differ (a 64-bit XOR collision) would
keep a change out of the target until the row changes again: the chance is 2**-64 a bucket.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dbsync.compare import keydiff
from dbsync.model import Buckets, TableSchema, Window
from dbsync.sync.runtime import Runtime

log = logging.getLogger("dbsync.sync_engine")

BUCKETED_FROM = 1_000  # smaller windows are read whole: a fold would not pay for itself
ROWS_PER_BUCKET = keydiff.MIN_ROWS_PER_BUCKET
MIN_ENOUGH = 5_000  # stop narrowing once the differing buckets hold this many rows (or 2%)


@dataclass(frozen=True)
class Verdict:
    """What the read must take: nothing, the whole window, or the rows ``only`` selects."""

    unchanged: bool = False
    only: str | None = None  # predicate on the source's rows (values inlined); None: all
    rows: int = 0  # rows the read will take (when ``only`` is set)
    counted: int | None = None  # rows of the window, as counted (None: not counted)


def compare(
    runtime: Runtime,
    source: TableSchema,
    target: TableSchema,
    window: Window,
    key: tuple[str, ...],
) -> Verdict:
    """The part of ``window`` the target does not already hold as is."""
    dialect = runtime.dialect
    engines = (runtime.engines.source, runtime.engines.target)
    rows = dialect.window_rows(engines, source, target, window)
    if rows is None:
        return Verdict()
    counts = rows.counts
    if counts[0] == counts[1] and counts[0] <= runtime.settings.fetch_limit:
        folds = [dialect.aggregate(e, r) for e, r in zip(engines, rows.sets, strict=True)]
        if folds[0] == folds[1]:
            return Verdict(unchanged=True)
    most = max(counts)
    if most < BUCKETED_FROM or abs(counts[0] - counts[1]) * 2 > most:
        return Verdict(counted=most)  # small, or most of it differs: reading it whole costs less
    sides = dialect.window_sides(engines, rows.sets, key) if key else None
    if sides is None:
        return Verdict(counted=most)
    narrowed = keydiff.narrow(
        sides, most, max(most // ROWS_PER_BUCKET, 1), enough=max(most // 50, MIN_ENOUGH)
    )
    if not narrowed.rows:
        return Verdict(unchanged=True)
    behind = sum(narrowed.rows.values())
    if behind * 2 > most:
        return Verdict(counted=most)  # most of the window differs: reading it whole costs less
    buckets = Buckets(narrowed.bits, (narrowed.bits, tuple(sorted(narrowed.rows))))
    log.info(
        "table %s: %s of the window's %s rows are in buckets that differ from the target's",
        source.name,
        behind,
        most,
    )
    return Verdict(only=dialect.bucket_predicate(source, key, buckets), rows=behind, counted=behind)
