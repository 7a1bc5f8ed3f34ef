"""Delete propagation: rows deleted in the source leave the target of an incremental table.

An incremental read only sees rows that exist, so a source ``DELETE`` never reaches the
target through the merge. After the merge (under the same table lock), ``propagate``
compares the primary keys of both tables with server-side aggregates (``dbsync.compare.keydiff``),
re-checks every key found only in the target against the source with the source server's
own comparison, and deletes the confirmed ones from the target by key, in batches.

Why no row the source has can be deleted (concurrent writers included): a target row is
deleted only if, at its re-check, the source has no row with that key (compared by the
source server, so a case-insensitive key spelled differently still counts as present). A
row inserted into the source after its re-check carries a cursor value newer than anything
this run merged (it is written after this run read its window), so the next incremental
read takes it back in; a row inserted with an old cursor value is a late commit, covered by
``lag_seconds`` like any other. Rows inserted, updated or deleted in the source during the
comparison only make it see more or fewer differences; a missed delete is found next run.

The safety valve: when the deletes would remove more than ``max_delete_fraction`` of the
target's rows (a source table emptied by mistake, settings pointing at the wrong
database), nothing is deleted and the table fails with ``TooManyDeletes``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbsync.backends import last_delete_check
from dbsync.compare import keydiff
from dbsync.config.errors import TooManyDeletes
from dbsync.config.result import SyncResult, utc_now
from dbsync.config.tables import TableConfig
from dbsync.model import Key, KeySet, TableSchema
from dbsync.sync.runtime import Runtime

log = logging.getLogger("dbsync.deletes")

RECHECK_BATCH = 250  # keys re-checked against the source per statement
DELETE_BATCH = 1_000  # keys deleted from the target per statement (one short transaction)


@dataclass(frozen=True)
class Tables:
    """The two tables whose keys are compared."""

    source: TableSchema
    target: TableSchema


def due(runtime: Runtime, config: TableConfig, now: datetime | None = None) -> bool:
    """Whether this run compares keys: deletes propagate and the interval has passed."""
    if not config.propagates_deletes:
        return False
    if config.delete_check_interval <= 0:
        return True
    engine, database = runtime.engines.target, runtime.dialect.target_schema()
    last = last_delete_check(engine, database, config.table)
    if last is None:
        return True
    elapsed = ((now or utc_now()) - last).total_seconds()
    return elapsed >= config.delete_check_interval


@contextmanager
def keys_as_read(runtime: Runtime) -> Iterator[Any]:
    """A source connection inside a consistent read, opened before the sync reads its window:
    its keys are the ones the read could see, so rows inserted while the sync runs do not
    make the key folds differ (and cost a narrowing) on every sync of a busy table."""
    raw = runtime.engines.source.raw_connection()
    try:
        runtime.dialect.begin_snapshot(raw).close()
        yield raw
    finally:
        raw.close()  # ends the read-only transaction (rolled back on return to the pool)


def propagate(
    runtime: Runtime,
    config: TableConfig,
    tables: Tables,
    result: SyncResult,
    before_delete: Callable[[], None] = lambda: None,
    snapshot: Any = None,
) -> int:
    """Delete from the target the rows the source no longer has; returns how many.

    It runs after the merge, so the rows the run just copied are on both sides: a sync that
    only inserted and updated finds both whole-table folds equal and stops there.
    """
    started = time.perf_counter()
    sides = _sides(runtime, config, tables, snapshot)
    folds = keydiff.totals(sides)
    (source_rows, _), (target_rows, _) = folds
    # the row counts bound the deletes from below: refuse before looking for them
    check_fraction(config, target_rows - source_rows, target_rows, "at least ")
    diff = keydiff.compare(sides, folds)
    compared = time.perf_counter() - started
    gone = list(confirmed_gone(runtime, config.table, config.primary_key, diff.only_in_target))
    check_fraction(config, len(gone), target_rows, "")
    before_delete()
    dialect, target = runtime.dialect, runtime.engines.target
    deleted = sum(
        dialect.delete_target_keys(target, config.table, config.primary_key, batch)
        for batch in _batches(gone, DELETE_BATCH)
    )
    result.rows_deleted = deleted
    result.deletes_checked_at = utc_now()
    log.info(
        "table %s: %s rows deleted in the source removed from the target "
        "(%s keys only in the target, %s re-checked present; compared in %.2fs, "
        "re-checked and deleted in %.2fs)",
        config.table,
        deleted,
        len(diff.only_in_target),
        len(diff.only_in_target) - len(gone),
        compared,
        time.perf_counter() - started - compared,
    )
    return deleted


def _sides(
    runtime: Runtime, config: TableConfig, tables: Tables, snapshot: Any = None
) -> tuple[keydiff.Side, keydiff.Side]:
    dialect, engines = runtime.dialect, runtime.engines
    key = config.primary_key
    source = KeySet(engines.source, dialect.source_schema(), tables.source, key, snapshot)
    return (
        dialect.key_side(source),
        dialect.key_side(KeySet(engines.target, dialect.target_schema(), tables.target, key)),
    )


def check_fraction(config: TableConfig, deletes: int, target_rows: int, bound: str) -> None:
    """The safety valve: refuse to delete more than ``max_delete_fraction`` of the target."""
    if deletes <= 0 or target_rows <= 0:
        return
    fraction = deletes / target_rows
    if fraction <= config.max_delete_fraction:
        return
    raise TooManyDeletes(
        f"table {config.table!r}: {bound}{deletes} of the target's {target_rows} rows "
        f"({fraction:.1%}) are gone from the source, more than max_delete_fraction "
        f"{config.max_delete_fraction} allows; nothing was deleted. Check that the source "
        "table was not emptied by mistake and that the settings point at the right "
        "database; to let this run delete them, set max_delete_fraction to 1.0 for this "
        "table in tables.json"
    )


def confirmed_gone(
    runtime: Runtime, table: str, key: Sequence[str], keys: Sequence[Key]
) -> Iterator[Key]:
    """The keys the source has no row for right now, by the source server's own equality."""
    dialect, source = runtime.dialect, runtime.engines.source
    for batch in _batches(keys, RECHECK_BATCH):
        present = dialect.source_has_keys(source, table, key, batch)
        yield from (key for key, found in zip(batch, present, strict=True) if not found)


def _batches(items: Sequence[Key], size: int) -> Iterator[Sequence[Key]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
