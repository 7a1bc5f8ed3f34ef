"""Chunked full copies: one table split into primary-key ranges, copied by several
participants at once, resumable after any of them dies.

- The **coordinator** is the sync that holds the table's lock (one per table, fleet-wide).
  It plans the ranges (``key_ranges.split_points``) into the progress tables
  (``copy_progress``), asks for helpers (threads of its own process, or, in the fleet,
  chunk tasks on other workers through ``Runtime.spread_chunks``), copies chunks itself,
  waits for the ones others hold, and then finishes as a one-piece full refresh does: count
  check, secondary indexes, one atomic RENAME.
- A **helper** never takes the table lock: it claims pending chunks of a running copy until
  none is left.
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

from dbsync import target as tgt
from dbsync.copy_progress import DISCARDED, SWAPPED, Chunk, Copy, CopyProgress, Progress
from dbsync.errors import RowCountMismatch, TransientError, describe
from dbsync.extract import ExtractStats, Read, Window, stream_rows
from dbsync.key_ranges import range_sql, split_points
from dbsync.loader import LoadFile
from dbsync.result import SyncResult, utc_now, worker_id
from dbsync.runtime import Runtime
from dbsync.schema import TableSchema, qualified
from dbsync.tables import TableConfig

log = logging.getLogger("dbsync.sync_engine")

MAX_ATTEMPTS = 4  # a chunk failing this often fails the copy (it stays resumable)
WAIT_S = 0.5  # how often the coordinator looks at chunks others hold


class LeaseLost(TransientError):
    """Another participant took this chunk over (its lease had expired): load rolled back."""


class ChunkFailed(TransientError):
    """A chunk failed MAX_ATTEMPTS times; the copy stays resumable."""


def progress_of(runtime: Runtime) -> CopyProgress:
    return CopyProgress(runtime.engines.target, runtime.dialect.target_schema())


def participants(runtime: Runtime) -> int:
    """Processes or threads copying one table at once (coordinator included)."""
    return runtime.settings.chunk_workers or max(1, min(4, os.cpu_count() or 1))


def chunk_key(config: TableConfig, source: TableSchema) -> tuple[str, ...]:
    """The key a copy is split by: the merge key, else (a keyless full-refresh table) the
    source's own primary key, which staging then has too; empty: not chunked."""
    return config.primary_key or source.primary_key


def fingerprint(source: TableSchema, key: tuple[str, ...]) -> str:
    """What a copy's staging table was created for: columns and key."""
    text = repr((key, [c.definition() for c in source.columns]))
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
        reason = _unresumable(runtime, copy, planned_for, age_s, fingerprint(source, key))
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
    if not tgt.table_exists(runtime.engines.target, dialect.staging_schema(), staged):
        return "its staging table is gone"
    return None


def start(
    runtime: Runtime,
    source: TableSchema,
    config: TableConfig,
    chunk_rows: int,
    reread_from: Callable[[], str | None],
) -> Copy | None:
    """Plan a chunked copy into a new staging table, or None when the table has at most
    ``chunk_rows`` rows."""
    dialect, key = runtime.dialect, chunk_key(config, source)
    splits = split_points(
        runtime.engines.source, dialect.source_schema(), source.name, key, chunk_rows
    )
    if not splits:
        return None
    bound = reread_from()  # before any chunk is read: every later change is at or after it
    dialect.create_staging(runtime.engines.target, source, config.primary_key, config.modifier)
    progress = progress_of(runtime)
    progress.ensure()
    copy = progress.start(source.name, fingerprint(source, key), splits, bound)
    log.info(
        "table %s: chunked copy %s planned: %d chunks of about %s rows",
        source.name,
        copy.copy_id,
        copy.chunks,
        f"{chunk_rows:,}",
    )
    return copy


def coordinate(job: Job, result: SyncResult, ensure_held: Callable[[], None]) -> int:
    """Copy every chunk with helpers; returns the staged row count (checked)."""
    runtime, progress = job.runtime, progress_of(job.runtime)
    before = progress.progress(job.copy.copy_id)
    result.chunks, result.chunks_reused = before.total, before.done
    result.load_id = job.copy.copy_id
    helpers = min(participants(runtime), before.total - before.done) - 1
    stop = threading.Event()
    threads = _spread(job, helpers, stop)
    try:
        finished = _copy_until_done(job, ensure_held)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    result.rows_extracted = finished.rows
    result.workers = list(finished.workers)
    staging = (runtime.dialect.staging_schema(), runtime.dialect.staging_table(job.table))
    staged = tgt.count_rows(runtime.engines.target, *staging)
    if staged != finished.rows:
        raise RowCountMismatch(
            f"table {job.table!r}: staged {staged} rows but its chunks loaded {finished.rows}; "
            "the target was left unchanged"
        )
    return staged


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


def _copy_until_done(job: Job, ensure_held: Callable[[], None]) -> Progress:
    progress = progress_of(job.runtime)
    while True:
        participate(job, lambda: False, ensure_held)
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
    """Claim and copy chunks of the job's copy until none is claimable; the numbers copied."""
    progress = progress_of(job.runtime)
    lease_s = job.runtime.settings.chunk_lease_seconds
    copied: list[int] = []
    while not stopped():
        if before_each is not None:
            before_each()
        chunk = progress.claim(job.copy.copy_id, job.worker, lease_s)
        if chunk is None:
            break
        try:
            copy_chunk(job, chunk)
        except BaseException as exc:
            _give_back(progress, chunk, exc)
            raise
        copied.append(chunk.number)
    return copied


def _give_back(progress: CopyProgress, chunk: Chunk, exc: BaseException) -> None:
    try:
        progress.release(chunk, describe(exc) if isinstance(exc, Exception) else repr(exc))
    except Exception as release_error:  # noqa: BLE001 - the lease expires by itself
        log.warning("chunk %s could not be given back: %s", chunk.number, release_error)


def copy_chunk(job: Job, chunk: Chunk) -> int:
    """Read one range in its own snapshot and load it into staging, marking it done."""
    runtime, started = job.runtime, time.perf_counter()
    dialect, engines = runtime.dialect, runtime.engines
    key_range = range_sql(job.key, chunk.lower, chunk.upper)
    stats = ExtractStats(progress_every=10**12)
    rows = stream_rows(
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
    with _renewing(job, chunk), LoadFile(engines.target, *staging, rows) as load:
        if stats.snapshot_rows is not None and stats.snapshot_rows != load.rows:
            raise RowCountMismatch(
                f"table {job.table!r} chunk {chunk.number}: read {load.rows} rows but its "
                f"snapshot has {stats.snapshot_rows}"
            )
        loaded = _load_and_mark(job, chunk, load, key_range)
    log.info(
        "table %s: chunk %d/%d copied: %s rows in %.2fs by %s",
        job.table,
        chunk.number + 1,
        job.copy.chunks,
        f"{loaded:,}",
        time.perf_counter() - started,
        job.worker,
    )
    runtime.notify_chunk(job.table, loaded)
    return loaded


def _load_and_mark(job: Job, chunk: Chunk, load: LoadFile, key_range: str) -> int:
    """Replace the chunk's range in staging and mark it done, in one transaction."""
    dialect = job.runtime.dialect
    staging = qualified(dialect.staging_schema(), dialect.staging_table(job.table))
    raw = job.runtime.engines.target.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cursor.execute(f"DELETE FROM {staging} WHERE {key_range}")
        loaded = load.into(cursor) if load.rows else 0
        marked = cursor.execute(
            progress_of(job.runtime).done_sql(),
            (loaded, chunk.copy_id, chunk.number, chunk.token),
        )
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
    finally:
        raw.close()


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


def finish(runtime: Runtime, copy: Copy, swap: Callable[[], None]) -> None:
    """Swap the copy in; the next incremental read re-reads from the copy's start."""
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
    if planned_for == fingerprint(source, key):
        copy = Copy(copy_id, source.name, progress.progress(copy_id).total, started, None)
        summary["chunks"] = participate(Job(runtime, source, key, copy), lambda: False)
    else:
        log.info("table %s: copy %s is not this definition's; not helping", source.name, copy_id)
    summary["finished_at"] = utc_now().isoformat()
    return summary
