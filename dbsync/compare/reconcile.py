"""Reconcile: bring a keyed target table level with its source, row by row, by differences.

What runs (:func:`level`): the row-content comparison of :mod:`dbsync.compare.rowdiff` (both
servers fold every compared column's exact text, bucketed by key, narrowed to the buckets
that differ); then rows missing or different in the target are re-read from the source and
upserted, rows only in the target are re-checked against the source and deleted, all in one
target transaction (readers see the target before or after, never half of it). A diff
sync first compares ``CHECKSUM TABLE`` on both sides (one scan, no expressions, about 60% of
the first fold's time) and stops there when both tables are laid out alike and hold the same
rows: most syncs of a table without modifier find nothing changed. A reconcile (asked for
when drift is suspected) goes straight to the fold, which counts both tables' rows too.

When it runs:

- a table without ``modifier`` (and a key): every sync is such a comparison (mode ``diff``),
  unless ``"strategy": "replace"`` or ``--full-refresh`` ask for the whole copy;
- an incremental table: after its merge when ``dbsync sync --reconcile`` (or the task's
  ``reconcile=True``) asks, or ``reconcile_interval`` seconds have passed since the last one;
  it then stands in for that run's key comparison (:mod:`dbsync.compare.deletes`): the rows only
  in the target it deletes are counted in ``rows_deleted`` too (unless the table keeps the
  source's deletes, ``"deletes": "ignore"``: then they stay);
- when more rows differ than :func:`diff_limit` allows, or the schema changed in a way the
  target cannot follow in place (:mod:`dbsync.sync.migration`), the table is copied whole
  instead (staged and swapped in atomically).

Why concurrent source writes never leave a wrong row: nothing found by the comparison is
written as found. Every row to upsert is read again from the source at the moment of the
write and written as the source holds it then; a row that changes afterwards differs again
and is repaired by the next comparison (a diff table) or carries a newer cursor value (an
incremental table). For an incremental table, rows whose cursor is newer than the source's
highest cursor value taken before the comparison started are left to the next incremental
read, so a repair never moves the target's highest cursor value past a change that read
would still need. A row only in the target is deleted only if the source, asked by its own
comparison at that moment, has no row with that key (case-insensitive spellings included).

The safety valve applies to all of it: when the repair would delete more than
``max_delete_fraction`` of the target's rows, nothing changes and the table fails with
``TooManyDeletes``; :func:`check_whole_copy` does the same for a whole copy that would
leave the target with fewer rows than that allows (an emptied source).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dbsync.backends import last_diff_repaired, last_reconcile
from dbsync.compare import deletes, keydiff, rowdiff
from dbsync.config.result import SyncResult, utc_now
from dbsync.config.tables import TableConfig
from dbsync.model import Key, KeySet, RowSide, TableSchema
from dbsync.sync.runtime import Runtime

log = logging.getLogger("dbsync.reconcile")

DIFF = "diff"
# Differences applied in place, at most: past this a whole copy is cheaper. Measured at
# 1,000,000 rows on a shared 2-core machine: a whole copy ~10 s (~10 us a row), the
# comparison ~5 s (~5 us a row), a repaired row ~0.3 ms to re-check, re-read and upsert; the
# two meet near rows * 5 us / 0.3 ms, about 1.7% of the rows. Small tables: a whole copy
# costs its fixed ~2 s (dlt) whatever its size, so up to DIFF_LIMIT_MIN rows are repaired.
DIFF_LIMIT_FRACTION = 0.02
DIFF_LIMIT_MIN = 10_000
DIFF_LIMIT_MAX = 200_000
READ_BATCH = 500  # keys re-read from the source (and rows upserted) per statement
# seconds added to the time since the last comparison when asking the source whether it
# noted a change: its note is to the second, and the two clocks may differ by a little
WRITE_NOTE_MARGIN = 2.0


@dataclass(frozen=True)
class Request:
    """What the caller asked of one sync."""

    full_refresh: bool = False
    reconcile: bool = False


@dataclass(frozen=True)
class Pair:
    """The two tables compared, and the key they are compared by."""

    config: TableConfig
    source: TableSchema
    target: TableSchema
    key: tuple[str, ...]


def table_key(config: TableConfig, source: TableSchema) -> tuple[str, ...]:
    return config.primary_key or source.primary_key


def diffs(runtime: Runtime, config: TableConfig, request: Request) -> bool:
    """Whether a table without modifier syncs by its differences this run (its mode
    ``diff``): not forced whole, not ``strategy: replace``, and the dialect can compare."""
    return (
        not config.incremental
        and not request.full_refresh
        and config.strategy == "diff"
        and runtime.dialect.compares_rows
    )


def due(
    runtime: Runtime,
    config: TableConfig,
    request: Request,
    now: datetime | None = None,
    recorded: Callable[[], datetime | None] | None = None,
) -> bool:
    """Whether an incremental table is reconciled after its merge this run. ``recorded``:
    when it was last reconciled, if the caller read it already (else the status table)."""
    if not runtime.dialect.compares_rows or not config.incremental:
        return False
    if request.reconcile or config.reconcile_interval <= 0:
        return True
    engine, database = runtime.engines.target, runtime.dialect.target_schema()
    last = recorded() if recorded else last_reconcile(engine, database, config.table)
    if last is None:
        return True
    return ((now or utc_now()) - last).total_seconds() >= config.reconcile_interval


def diff_limit(rows: int) -> int:
    """Differing rows repaired in place at most; more: the whole copy."""
    return min(max(int(rows * DIFF_LIMIT_FRACTION), DIFF_LIMIT_MIN), DIFF_LIMIT_MAX)


def same_layout(source: TableSchema, target: TableSchema) -> bool:
    """Same column names and types in the same order: the storage engines' own row
    checksums are comparable (they checksum columns by position)."""
    return [(c.name, c.column_type) for c in source.columns] == [
        (c.name, c.column_type) for c in target.columns
    ]


def checksums_match(runtime: Runtime, source: TableSchema, target: TableSchema) -> bool:
    """True when both whole-table checksums exist and agree (tables laid out alike)."""
    if not same_layout(source, target):
        return False
    dialect, engines = runtime.dialect, runtime.engines
    work = (
        (engines.source, dialect.source_schema(), source.name),
        (engines.target, dialect.target_schema(), target.name),
    )
    first, second = keydiff._both(
        work,  # type: ignore[arg-type]
        lambda side: dialect.table_checksum(*side),  # type: ignore[misc]
    )
    return first is not None and first == second


def level(
    runtime: Runtime,
    pair: Pair,
    result: SyncResult,
    lock_check: Callable[[], None],
    *,
    drift: bool,
) -> bool:
    """Compare and repair; False when too many rows differ (the caller copies the table
    whole). ``drift``: a reconcile (differences mean something bypassed the sync, logged as a
    warning)."""
    started, at = time.perf_counter(), utc_now()
    if _checksum_first(runtime, pair, drift) and checksums_match(
        runtime, pair.source, pair.target
    ):
        log.info("table %s: checksums match, nothing to repair", pair.config.table)
        result.reconciled_at = at
        return True
    sides = _sides(runtime, pair)
    cap = _cursor_cap(sides[0], pair.config)
    found = _compare(sides)
    source_rows, target_rows = found.counts
    deletes.check_fraction(pair.config, target_rows - source_rows, target_rows, "at least ")
    if found.too_many:
        log.info("table %s: more than %s rows differ", pair.config.table, diff_limit(target_rows))
        return False
    compared = time.perf_counter() - started
    repaired = _repair(runtime, pair, found, cap, target_rows, lock_check)
    repaired.record(result, as_sync=not drift)
    result.reconciled_at = at
    _report(pair.config.table, repaired, found, compared, time.perf_counter() - started, drift)
    return True


def _checksum_first(runtime: Runtime, pair: Pair, drift: bool) -> bool:
    """Whether the whole-table checksums are compared before the fold: they only pay when
    nothing differs. Not for a reconcile (asked for when drift is suspected), nor when the
    source noted a change to the table since its last comparison; where the source keeps no
    such note, not for a table whose last diff repaired rows (its rows change between syncs).
    Either way the comparison is exact: this only picks the faster way to it."""
    if drift:
        return False
    engine, database = runtime.engines.target, runtime.dialect.target_schema()
    return checksums_pay(
        _written_since_compared(runtime, pair),
        lambda: last_diff_repaired(engine, database, pair.config.table),
    )


def checksums_pay(written: bool | None, last_repaired: Callable[[], bool]) -> bool:
    """Whether comparing whole-table checksums first is likely to end the comparison: not
    when the source noted a change since the last comparison; with no note (``None``), not
    when the last diff repaired rows."""
    return not written if written is not None else not last_repaired()


def _written_since_compared(runtime: Runtime, pair: Pair) -> bool | None:
    """Whether the source noted a change to the table since its last comparison began (None:
    never compared, or no note kept)."""
    dialect, engines = runtime.dialect, runtime.engines
    last = last_reconcile(engines.target, dialect.target_schema(), pair.config.table)
    if last is None:
        return None
    seconds = (utc_now() - last).total_seconds() + WRITE_NOTE_MARGIN
    source, schema = engines.source, dialect.source_schema()
    return dialect.written_within(source, schema, pair.source.name, seconds)


def _compare(sides: tuple[RowSide, RowSide]) -> rowdiff.RowDiff:
    """The comparison, its first fold sized for the rows: known from the key span when the
    sides are bucketed by key ranges (``sizing(0)`` is then the span), else counted."""
    sizing = sides[0].sizing(0)
    if sizing:
        hint = rowdiff.differences_hint(sizing, sizing)
    else:
        counts = keydiff._both(sides, lambda side: side.count())  # type: ignore[arg-type]
        sizing, hint = max(counts), rowdiff.differences_hint(*counts)
    return rowdiff.compare(sides, sizing, hint, diff_limit)


@dataclass
class Repaired:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.deleted

    def record(self, result: SyncResult, *, as_sync: bool) -> None:
        """Count the repair; ``as_sync``: it was the sync itself (a diff table), so its rows
        are also the rows read, loaded and deleted."""
        if as_sync:
            result.rows_extracted += self.inserted + self.updated
            result.rows_loaded += self.inserted + self.updated
        result.rows_deleted += self.deleted  # what a key comparison would have deleted
        result.rows_repaired += self.total
        result.repaired_inserted += self.inserted
        result.repaired_updated += self.updated
        result.repaired_deleted += self.deleted


def _report(
    table: str,
    repaired: Repaired,
    found: rowdiff.RowDiff,
    compared: float,
    took: float,
    drift: bool,
) -> None:
    level_ = logging.WARNING if drift and repaired.total else logging.INFO
    log.log(
        level_,
        "table %s: %s rows repaired (%s inserted, %s updated, %s deleted; %s differed, the "
        "rest changed back or were re-checked present in the source; compared in %.2fs, "
        "repaired in %.2fs)%s",
        table,
        repaired.total,
        repaired.inserted,
        repaired.updated,
        repaired.deleted,
        found.size,
        compared,
        took - compared,
        ": the target was written outside dbsync, or source updates bypassed the cursor"
        if drift and repaired.total
        else "",
    )


def _cursor_cap(source: RowSide, config: TableConfig) -> tuple[str, str] | None:
    """(cursor column, the source's highest cursor value now) of an incremental table: rows
    changed after this are left to the next incremental read."""
    if config.modifier is None:
        return None
    value = source.highest(config.modifier)
    return None if value is None else (config.modifier, value)


def _sides(runtime: Runtime, pair: Pair) -> tuple[RowSide, RowSide]:
    """Both tables' row sides; bucketed by key ranges when keyed by one integer column."""
    dialect, engines = runtime.dialect, runtime.engines
    sides = dialect.row_sides(
        KeySet(engines.source, dialect.source_schema(), pair.source, pair.key),
        KeySet(engines.target, dialect.target_schema(), pair.target, pair.key),
        pair.source.column_names,
    )
    found = [b for b in keydiff._both(sides, lambda side: side.key_bounds()) if b]  # type: ignore[arg-type]
    if not found:
        return sides
    low, high = min(b[0] for b in found), max(b[1] for b in found)
    return sides[0].ranged(low, high), sides[1].ranged(low, high)


def _repair(
    runtime: Runtime,
    pair: Pair,
    found: rowdiff.RowDiff,
    cap: tuple[str, str] | None,
    target_rows: int,
    lock_check: Callable[[], None],
) -> Repaired:
    """Re-check every candidate against the source, then write in one transaction."""
    extra = found.only_in_target if _deletes(pair.config) else []
    gone = list(deletes.confirmed_gone(runtime, pair.source.name, pair.key, extra))
    deletes.check_fraction(pair.config, len(gone), target_rows, "")
    inserts = _read(runtime, pair, found.missing, cap)
    updates = _read(runtime, pair, found.changed, cap)
    lock_check()
    rows = [*inserts, *updates]
    deleted = runtime.dialect.write_target_rows(
        runtime.engines.target, pair.source, pair.key, rows, gone
    )
    return Repaired(len(inserts), len(updates), deleted)


def _deletes(config: TableConfig) -> bool:
    """Whether rows only in the target go: not for an incremental table that keeps the rows
    the source deleted (``"deletes": "ignore"``)."""
    return not config.incremental or config.propagates_deletes


def _read(
    runtime: Runtime, pair: Pair, keys: Sequence[Key], cap: tuple[str, str] | None
) -> list[tuple]:
    """The source's rows for ``keys`` as they are now (exact text); keys it no longer has,
    and rows changed after ``cap``, are left out."""
    dialect, source = runtime.dialect, runtime.engines.source
    rows: list[tuple] = []
    for start in range(0, len(keys), READ_BATCH):
        batch = keys[start : start + READ_BATCH]
        rows += dialect.read_source_rows(source, pair.source, pair.key, batch, cap)
    return rows


def check_whole_copy(config: TableConfig, current: int, staged: int) -> None:
    """The valve for a whole copy: refuse to swap in a copy of ``staged`` rows that leaves
    the target (``current`` rows) with more than ``max_delete_fraction`` of them fewer (a
    source emptied by mistake)."""
    deletes.check_fraction(config, current - staged, current, "at least ")
