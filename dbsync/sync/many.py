"""Many tables in one process (``dbsync sync``): groups of tables synced side by side.

A sync of a table whose window holds a few rows costs mostly dlt's per-run work (its
configuration, schema and load package), not the rows. One process syncing many tables
therefore syncs them in groups of ``SYNC_BATCH_TABLES``, one thread per table: each
table's sync is the usual one (:func:`dbsync.sync.run.run_sync`: its own lock, schema,
safe point, window, staging table, merge, deletes and status), except that the small
reads of a group are staged by one dlt run (:class:`dbsync.sync.pipeline.Batch`). A table
with nothing to stage, a large read or a failure leaves the group's run; a failed group
run makes each table stage its rows alone, so a failure stays the table's own.

The group is bounded by the pools: each member holds its table lock's connection (and the
source snapshot of its delete check) while it waits for the group's run.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from dbsync.config.result import SyncResult
from dbsync.config.settings import MIN_POOL_CONNECTIONS, Settings
from dbsync.sync.pipeline import Batch, member_of
from dbsync.sync.run import run_sync
from dbsync.sync.runtime import Runtime

# connections a waiting member may hold on one server: its lock, a snapshot, one spare
_PER_MEMBER = 3


def group_size(settings: Settings, side_by_side: bool) -> int:
    """Tables synced side by side: ``SYNC_BATCH_TABLES``, as many as the pools hold (1 where
    the dialect does not sync side by side)."""
    if not side_by_side:
        return 1
    room = (settings.pool_size + settings.max_overflow - MIN_POOL_CONNECTIONS) // _PER_MEMBER
    return max(1, min(settings.sync_batch_tables, room + 1))


def sync_tables(
    runtime: Runtime, tables: Sequence[str], *, full_refresh: bool = False, reconcile: bool = False
) -> list[SyncResult]:
    """Sync each table once (a name listed twice syncs once), as :func:`run_sync` does;
    returns their results in order."""
    names = list(dict.fromkeys(tables))
    sync = partial(run_sync, runtime, full_refresh=full_refresh, reconcile=reconcile)
    size = group_size(runtime.settings, runtime.dialect.syncs_side_by_side)
    if size <= 1 or len(names) <= 1:
        return [sync(name) for name in names]
    results: list[SyncResult] = []
    with ThreadPoolExecutor(size, thread_name_prefix="dbsync-sync") as pool:
        for start in range(0, len(names), size):
            group = names[start : start + size]
            batch = Batch(runtime.dialect.target_schema(), group)
            results += pool.map(partial(_member, batch, sync), group)
    return results


def _member(batch: Batch, sync: partial[SyncResult], table: str) -> SyncResult:
    with member_of(batch):
        return sync(table)
