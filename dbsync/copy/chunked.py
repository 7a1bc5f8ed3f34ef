"""Chunked full copies: one table split into primary-key ranges, copied by several
participants at once, resumable after any of them dies.

- The **coordinator** is the sync that holds the table's lock (one per table, fleet-wide).
  It finds the first range, then lets a planner thread find the others one split point at a
  time (``key_ranges.walk_split_points``) into the progress tables (``copy_progress``) while
  chunks are already being copied; it asks for helpers (threads of its own process, or, in
  the fleet, chunk tasks on other workers through ``Runtime.spread_chunks``), copies chunks
  itself, waits for the ones others hold, and then finishes as a one-piece full refresh
  does: secondary indexes, count check, one atomic RENAME.
- **Secondary indexes** small enough to stay in the target's index cache (half of InnoDB's
  buffer pool) are created with the staging table and kept up by every chunk's load, so
  their cost is shared by all participants; larger ones are built once after the load, by
  one sorted pass, since keeping up an index that does not fit in memory turns every insert
  into random reads (measured at 10,000,000 rows: 233 s against 73 s).
- A **helper** never takes the table lock: it claims pending chunks of a running copy until
  none is left and the plan is complete (or no new range appeared for a lease).
- **Each chunk** is read from the source in its own consistent snapshot (one SELECT of its
  range), written to a LOAD DATA file, and loaded into the one staging table in a
  READ COMMITTED transaction (no gap locks, so chunks load side by side) that first deletes
  its range and ends by marking the chunk done for its own lease only: a chunk is in staging
  once, whoever loaded it and however often it was retried.
- A participant that dies stops renewing its lease; its chunk is claimable again after
  ``CHUNK_LEASE_SECONDS``. A coordinator that dies leaves the copy to the helpers and to the
  table's next sync, which resumes it (re-copying only chunks not done) when it is younger
  than ``COPY_RESUME_SECONDS`` and planned for the same table definition, and discards it
  otherwise.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dbsync.config.errors import Outcome, RowCountMismatch, TransientError, classify, describe
from dbsync.config.result import SyncResult, utc_now, worker_id
from dbsync.config.retry import backoff_delay
from dbsync.config.tables import TableConfig
from dbsync.dialect import ChunkHolder, ChunkLoad, CopyProgressStore, Dialect
from dbsync.model import (
    DISCARDED,
    SWAPPED,
    Chunk,
    Copy,
    ExtractStats,
    Progress,
    Read,
    TableSchema,
    Window,
)
from dbsync.sync.runtime import Runtime

log = logging.getLogger("dbsync.sync_engine")

MAX_ATTEMPTS = 4  # a chunk failing this often fails the copy (it stays resumable)
RETRY_BASE_S, RETRY_MAX_S = 0.5, 8.0  # backoff before a participant goes on after a failure
WAIT_S = 0.1  # how often a participant with nothing to claim looks again (one tiny query)
INDEX_MEMORY_SHARE = 0.5  # indexes up to this share of the target's index cache load along
ENTRY_BYTES = 32  # an index entry's estimated size when the source has no such index


class LeaseLost(TransientError):
    """Another participant took this chunk over (its lease had expired): load rolled back."""


class ChunkFailed(TransientError):
    """A chunk failed MAX_ATTEMPTS times; the copy stays resumable."""


def progress_of(runtime: Runtime) -> CopyProgressStore:
    return runtime.dialect.copy_progress(runtime.engines.target, runtime.dialect.target_schema())


def participants(runtime: Runtime) -> int:
    """Processes or threads copying one table at once (coordinator included)."""
    return runtime.settings.chunk_workers or max(1, min(4, os.cpu_count() or 1))


def chunk_key(config: TableConfig, source: TableSchema) -> tuple[str, ...]:
    """The key a copy is split by: the merge key, else (a keyless full-refresh table) the
    source's own primary key, which staging then has too; empty: not chunked."""
    return config.primary_key or source.primary_key


def fingerprint(dialect: Dialect, source: TableSchema, key: tuple[str, ...]) -> str:
    """What a copy's staging table was created for: columns and key."""
    text = repr((key, [dialect.column_definition(c) for c in source.columns]))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Job:
    """What a participant needs to copy chunks of one copy."""

    runtime: Runtime
    source: TableSchema
    key: tuple[str, ...]
    copy: Copy
    worker: str = field(default_factory=worker_id)

    @property
    def table(self) -> str:
        return self.source.name


def resume(runtime: Runtime, source: TableSchema, key: tuple[str, ...]) -> Copy | None:
    """A recent unfinished copy of this table to carry on with; discards the others."""
    progress = progress_of(runtime)
    if not progress.exists():
        return None
    kept: Copy | None = None
    for copy, planned_for, age_s in progress.unfinished(source.name):
        current = fingerprint(runtime.dialect, source, key)
        reason = _unresumable(runtime, copy, planned_for, age_s, current)
        if kept is None and reason is None:
            kept = copy
            continue
        progress.set_state(copy.copy_id, DISCARDED)
        why = reason or "a newer copy is resumed"
        log.info("table %s: chunked copy %s discarded: %s", source.name, copy.copy_id, why)
    return kept


def _unresumable(
    runtime: Runtime, copy: Copy, planned_for: str, age_s: float, current: str
) -> str | None:
    if planned_for != current:
        return "the table definition changed"
    if age_s > runtime.settings.copy_resume_seconds:
        return f"unfinished for {age_s:.0f}s (COPY_RESUME_SECONDS)"
    dialect = runtime.dialect
    staged = dialect.staging_table(copy.table)
    if not dialect.table_exists(runtime.engines.target, dialect.staging_schema(), staged):
        return "its staging table is gone"
    return None


def start(
    runtime: Runtime,
    source: TableSchema,
    config: TableConfig,
    chunk_rows: int,
    reread_from: Callable[[], str | None],
) -> Copy | None:
    """Start a chunked copy into a new staging table with its first range recorded (the
    coordinator plans the rest while copying), or None when the table has at most
    ``chunk_rows`` rows."""
    dialect, engines, key = runtime.dialect, runtime.engines, chunk_key(config, source)
    database = dialect.source_schema()
    walk = dialect.walk_split_points(engines.source, database, source.name, key, chunk_rows)
    first = next(walk, None)
    walk.close()
    if first is None:
        return None
    bound = reread_from()  # before any chunk is read: every later change is at or after it
    rows, index_bytes = dialect.table_footprint(engines.source, database, source.name)
    indexed = indexes_while_loading(runtime, source, config.modifier, rows, index_bytes)
    dialect.create_staging(
        engines.target, source, config.primary_key, config.modifier, with_indexes=indexed
    )
    progress = progress_of(runtime)
    progress.ensure()
    expected = max(2, -(-rows // chunk_rows))
    copy = progress.start(source.name, fingerprint(dialect, source, key), bound, expected)
    progress.add_chunk(copy, 0, None, first)
    log.info(
        "table %s: chunked copy %s started: ranges of about %s rows (about %d), secondary "
        "indexes %s",
        source.name,
        copy.copy_id,
        f"{chunk_rows:,}",
        expected,
        "kept up while loading" if indexed else "built after the load",
    )
    return copy


def indexes_while_loading(
    runtime: Runtime, source: TableSchema, cursor: str | None, rows: int, index_bytes: int
) -> bool:
    """Whether staging gets its secondary indexes before the chunks load (see
    :func:`indexes_fit`)."""
    wanted = len(runtime.dialect.target_indexes(source, cursor))
    if not wanted:
        return False
    memory = runtime.dialect.index_memory(runtime.engines.target)
    return indexes_fit(wanted, len(source.indexes), rows, index_bytes, memory)


def indexes_fit(wanted: int, in_source: int, rows: int, index_bytes: int, memory: int) -> bool:
    """Whether ``wanted`` secondary indexes fit in ``INDEX_MEMORY_SHARE`` of the target's
    index cache (``memory`` bytes): the source's ``in_source`` indexes take ``index_bytes``
    as the source estimates them, each other one ``ENTRY_BYTES`` a row. Unknown sizes (the
    source keeps no estimate, or the cache size is unknown) say no: sorting once after the
    load is never far off, keeping up a too large index is."""
    if in_source and not index_bytes:
        return False
    estimate = index_bytes + (wanted - in_source) * rows * ENTRY_BYTES
    return 0 < estimate <= memory * INDEX_MEMORY_SHARE


def plan_rest(job: Job, chunk_rows: int, stopped: Callable[[], bool] = lambda: False) -> None:
    """Record the copy's remaining ranges, one split point at a time, after the last one
    recorded (a resumed copy carries on where its planner stopped)."""
    runtime, progress = job.runtime, progress_of(job.runtime)
    last = progress.last_range(job.copy.copy_id)
    number, lower = (last[0] + 1, last[1]) if last is not None else (0, None)
    if last is not None and lower is None:
        return  # the open-ended last range is recorded: planned
    dialect = runtime.dialect
    walk = dialect.walk_split_points(
        runtime.engines.source, dialect.source_schema(), job.table, job.key, chunk_rows, lower
    )
    try:
        for upper in walk:
            if stopped():
                return
            progress.add_chunk(job.copy, number, lower, upper)
            number, lower = number + 1, upper
        progress.add_chunk(job.copy, number, lower, None)
        log.info("table %s: chunked copy planned: %d chunks", job.table, number + 1)
    finally:
        walk.close()


class Planner:
    """``plan_rest`` on a thread of the coordinator; its failure fails the coordinator."""

    def __init__(self, job: Job, chunk_rows: int) -> None:
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(job, chunk_rows), name=f"plan:{job.table}", daemon=True
        )

    def _run(self, job: Job, chunk_rows: int) -> None:
        try:
            plan_rest(job, chunk_rows, self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - raised again by the coordinator
            self.error = exc

    def __enter__(self) -> Planner:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> None:
        if self.error is not None:
            raise self.error


def coordinate(
    job: Job, result: SyncResult, ensure_held: Callable[[], None], chunk_rows: int
) -> int:
    """Plan the rest of the copy and copy every chunk with helpers; returns the rows the
    chunks loaded (each counted against its own snapshot)."""
    runtime, progress = job.runtime, progress_of(job.runtime)
    before = progress.progress(job.copy.copy_id)
    result.chunks_reused = before.done
    result.load_id = job.copy.copy_id
    left = before.total - before.done if before.planned else max(before.expected, 2)
    helpers = min(participants(runtime), left) - 1
    stop = threading.Event()
    with Planner(job, chunk_rows) as planner:
        threads = _spread(job, helpers, stop)
        try:
            finished = _copy_until_done(job, ensure_held, planner)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    result.chunks = finished.total
    result.rows_extracted = finished.rows
    result.workers = list(finished.workers)
    return finished.rows


def _spread(job: Job, helpers: int, stop: threading.Event) -> list[threading.Thread]:
    """Ask for helpers: the fleet's chunk tasks, or threads of this process."""
    if helpers <= 0:
        return []
    spread = job.runtime.spread_chunks
    if spread is not None:
        spread(job.table, job.copy.copy_id, helpers)
        return []
    threads = [
        threading.Thread(
            target=_helper_thread,
            args=(Job(job.runtime, job.source, job.key, job.copy, f"{job.worker}/{n}"), stop),
            name=f"chunks:{job.table}:{n}",
            daemon=True,
        )
        for n in range(1, helpers + 1)
    ]
    for thread in threads:
        thread.start()
    return threads


def _helper_thread(job: Job, stop: threading.Event) -> None:
    try:
        participate(job, stop.is_set)
    except Exception as exc:  # noqa: BLE001 - the chunk went back; the coordinator decides
        log.warning("table %s: chunk helper %s stopped: %s", job.table, job.worker, exc)


def _copy_until_done(job: Job, ensure_held: Callable[[], None], planner: Planner) -> Progress:
    progress = progress_of(job.runtime)
    while True:
        participate(job, lambda: planner.error is not None, ensure_held)
        planner.check()
        state = progress.progress(job.copy.copy_id)
        if state.complete:
            return state
        if state.most_attempts >= MAX_ATTEMPTS and state.last_error:
            raise ChunkFailed(
                f"table {job.table!r}: a chunk failed {state.most_attempts} times, last: "
                f"{state.last_error}; the next sync resumes the copy"
            )
        time.sleep(WAIT_S)  # chunks held by others: wait for them, or for their leases


def participate(
    job: Job, stopped: Callable[[], bool], before_each: Callable[[], None] | None = None
) -> list[int]:
    """Claim and copy chunks of the job's copy until none is claimable and none will be
    (the plan is complete, or no range was added for a lease); the numbers copied.

    Each chunk is claimed under a token whose holder lock this participant's connection
    takes first, and loaded on that connection: if the process dies, the server frees the
    lock with the connection and the chunk is claimable at once (``reclaim_orphans``). A
    chunk failing transiently (a deadlock, a lost connection) is given back and the
    participant carries on after a backoff, until the chunk has failed ``MAX_ATTEMPTS``
    times; any other failure is raised.
    """
    progress = progress_of(job.runtime)
    lease_s = job.runtime.settings.chunk_lease_seconds
    copied: list[int] = []
    waiting = _PlanWatch(progress, job.copy.copy_id, lease_s)
    holder = job.runtime.dialect.chunk_holder(job.runtime.engines.target)
    try:
        while not stopped():
            if before_each is not None:
                before_each()
            chunk = progress.claim(job.copy.copy_id, job.worker, lease_s, holder.take())
            if chunk is None:
                holder.drop()
                if waiting.more_may_come():
                    time.sleep(WAIT_S)
                    continue
                break
            try:
                copy_chunk(job, chunk, holder.raw)
            except Exception as exc:
                _give_back(progress, chunk, exc)
                if classify(exc) is not Outcome.TRANSIENT or chunk.attempts >= MAX_ATTEMPTS:
                    raise
                holder = _after_failure(job, chunk, holder, exc)
                continue
            except BaseException as exc:
                _give_back(progress, chunk, exc)
                raise
            holder.drop()
            copied.append(chunk.number)
    finally:
        holder.close()
    return copied


def _after_failure(job: Job, chunk: Chunk, holder: ChunkHolder, exc: Exception) -> ChunkHolder:
    """Log a chunk's transient failure, wait a backoff, and return a fresh holder (the old
    connection may be what failed)."""
    delay = backoff_delay(chunk.attempts - 1, RETRY_BASE_S, RETRY_MAX_S)
    log.warning(
        "table %s: chunk %d failed (attempt %d of %d), given back, retrying in %.1fs: %s",
        job.table,
        chunk.number + 1,
        chunk.attempts,
        MAX_ATTEMPTS,
        delay,
        describe(exc),
    )
    holder.discard()
    time.sleep(delay)
    return job.runtime.dialect.chunk_holder(job.runtime.engines.target)


class _PlanWatch:
    """Whether a participant with nothing to claim should wait for ranges still being
    planned: while the plan is incomplete and grew within the last lease."""

    def __init__(self, progress: CopyProgressStore, copy_id: str, lease_s: float) -> None:
        self.progress, self.copy_id, self.lease_s = progress, copy_id, lease_s
        self.seen, self.since = -1, time.monotonic()

    def more_may_come(self) -> bool:
        recorded, planned = self.progress.plan_state(self.copy_id)
        if planned:
            return False
        if recorded != self.seen:
            self.seen, self.since = recorded, time.monotonic()
        return time.monotonic() - self.since < self.lease_s


def _give_back(progress: CopyProgressStore, chunk: Chunk, exc: BaseException) -> None:
    try:
        progress.release(chunk, describe(exc) if isinstance(exc, Exception) else repr(exc))
    except Exception as release_error:  # noqa: BLE001 - the lease expires by itself
        log.warning("chunk %s could not be given back: %s", chunk.number, release_error)


def copy_chunk(job: Job, chunk: Chunk, raw: Any = None) -> int:
    """Read one range in its own snapshot and load it into staging, marking it done (on the
    raw target connection ``raw``, the holder's, else a connection of its own)."""
    runtime, started = job.runtime, time.perf_counter()
    dialect, engines = runtime.dialect, runtime.engines
    key_range = dialect.range_sql(job.key, chunk.lower, chunk.upper)
    stats = ExtractStats(progress_every=10**12)
    rows = dialect.stream_rows(
        Read(
            dialect=dialect,
            engine=engines.source,
            database=dialect.source_schema(),
            schema=job.source,
            window=Window(key_range=key_range),
            fetch_limit=runtime.settings.fetch_limit,
            stats=stats,
            count_snapshot=True,
        )
    )
    staging = (dialect.staging_schema(), dialect.staging_table(job.table))
    with _renewing(job, chunk), dialect.load_file(engines.target, *staging, rows) as load:
        if stats.snapshot_rows is not None and stats.snapshot_rows != load.rows:
            raise RowCountMismatch(
                f"table {job.table!r} chunk {chunk.number}: read {load.rows} rows but its "
                f"snapshot has {stats.snapshot_rows}"
            )
        loaded = _load_and_mark(job, chunk, load, key_range, raw)
    recorded, planned = progress_of(runtime).plan_state(job.copy.copy_id)
    log.info(
        "table %s: chunk %d/%s copied: %s rows in %.2fs by %s",
        job.table,
        chunk.number + 1,
        f"{recorded}" if planned else f"{recorded}+",
        f"{loaded:,}",
        time.perf_counter() - started,
        job.worker,
    )
    runtime.notify_chunk(job.table, loaded)
    return loaded


def _load_and_mark(job: Job, chunk: Chunk, load: ChunkLoad, key_range: str, raw: Any) -> int:
    """Replace the chunk's range in staging and mark it done, in one transaction."""
    if raw is None:
        own = job.runtime.engines.target.raw_connection()
        try:
            return _load_and_mark(job, chunk, load, key_range, own)
        finally:
            own.close()
    dialect = job.runtime.dialect
    staging = dialect.qualified(dialect.staging_schema(), dialect.staging_table(job.table))
    try:
        cursor = raw.cursor()
        dialect.clear_range(cursor, staging, key_range)
        loaded = load.into(cursor) if load.rows else 0
        marked = progress_of(job.runtime).mark_done(cursor, chunk, loaded)
        if marked != 1:
            raise LeaseLost(
                f"table {job.table!r} chunk {chunk.number}: taken over by another worker "
                "or its copy was discarded"
            )
        raw.commit()
        return loaded
    except BaseException:
        raw.rollback()
        raise


@contextmanager
def _renewing(job: Job, chunk: Chunk) -> Iterator[None]:
    """Renew the chunk's lease in the background while it is copied."""
    progress = progress_of(job.runtime)
    lease_s = job.runtime.settings.chunk_lease_seconds
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / 3):
            try:
                if not progress.renew(chunk, lease_s):
                    log.warning("table %s: chunk %d lease lost", job.table, chunk.number)
                    return
            except Exception as exc:  # noqa: BLE001 - the load's own commit decides
                log.warning(
                    "table %s: chunk %d lease not renewed: %s", job.table, chunk.number, exc
                )

    thread = threading.Thread(target=beat, name=f"lease:{job.table}:{chunk.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def finish(runtime: Runtime, copy: Copy, rows: int, swap: Callable[[], None]) -> None:
    """Check the staged count, then swap the copy in; the next incremental read re-reads
    from the copy's start.

    Counted after the secondary indexes are in place: InnoDB counts through the smallest
    index, which is then a secondary one (a fraction of the rows' size) where the table has
    any.
    """
    dialect = runtime.dialect
    staging = (dialect.staging_schema(), dialect.staging_table(copy.table))
    staged = dialect.count_rows(runtime.engines.target, *staging)
    if staged != rows:
        raise RowCountMismatch(
            f"table {copy.table!r}: staged {staged} rows but its chunks loaded {rows}; "
            "the target was left unchanged"
        )
    progress = progress_of(runtime)
    progress.reread_pending(copy.copy_id)
    swap()
    progress.set_state(copy.copy_id, SWAPPED)


def help_copy(
    runtime: Runtime, source: TableSchema, key: tuple[str, ...], copy_id: str
) -> dict[str, Any]:
    """A helper's part (a chunk task): copy chunks of a running copy until none is left.

    Never takes the table lock. Returns what it did (chunks, rows, start and end times).
    """
    started = utc_now()
    progress = progress_of(runtime)
    planned_for = progress.fingerprint(copy_id) if progress.exists() else None
    summary: dict[str, Any] = {
        "table": source.name,
        "copy_id": copy_id,
        "worker": worker_id(),
        "chunks": [],
        "started_at": started.isoformat(),
    }
    if planned_for == fingerprint(runtime.dialect, source, key):
        copy = Copy(copy_id, source.name, started, None)
        summary["chunks"] = participate(Job(runtime, source, key, copy), lambda: False)
    else:
        log.info("table %s: copy %s is not this definition's; not helping", source.name, copy_id)
    summary["finished_at"] = utc_now().isoformat()
    return summary
