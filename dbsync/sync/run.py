"""Sync one table: mirror its schema, extract with dlt into staging, commit atomically.

``sync_table`` is the one code path behind ``dbsync sync`` and the Celery task.

- Incremental (``modifier`` set): rows whose cursor is at or after the target's highest
  cursor value (minus ``lag_seconds``), plus rows whose cursor is NULL, are staged and
  upserted by primary key in a single statement.
- Full refresh (``--full-refresh``, ``"strategy": "replace"``, a keyless table without
  ``modifier`` whose checksum changed, a schema change the target cannot follow in place
  (:mod:`dbsync.sync.schema_follow`), or a missing or empty target table): the whole table
  is staged from one consistent snapshot, its row count checked against that snapshot, and
  swapped in with one atomic RENAME.
- Diff (a keyed table without ``modifier``): the rows that differ, found by a comparison
  both servers compute, repaired in one transaction (:mod:`dbsync.compare.reconcile`); too
  many differences or a schema change not followed in place: the full refresh. An
  incremental table is reconciled the same way after its merge when asked or due. The
  result's ``mode`` says which really ran.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbsync.backends import record_result
from dbsync.compare import deletes, reconcile
from dbsync.compare.reconcile import DIFF, Request
from dbsync.config.errors import ConfigError, ConfigProblem, RowCountMismatch, TableBusy, describe
from dbsync.config.result import CREATED, SyncResult, attach_result, utc_now
from dbsync.config.tables import TableConfig
from dbsync.copy import chunked as chunked_copy
from dbsync.model import Copy, ExtractStats, HeldLock, Read, TableSchema, TableStatus, Window
from dbsync.ops.logs import redact
from dbsync.sync import cursor_guard, schema_follow, window_diff
from dbsync.sync.pipeline import Staging, leave_batch, shared, stage, table_target
from dbsync.sync.read_ahead import ReadAhead, reading_ahead
from dbsync.sync.runtime import Runtime
from dbsync.sync.schema_follow import Followed

log = logging.getLogger("dbsync.sync_engine")
schema_log = logging.getLogger("dbsync.schema_sync")

INCREMENTAL = "incremental"
FULL_REFRESH = "full_refresh"


@dataclass
class Plan:
    """What this run will do, decided after the schema mirror."""

    mode: str
    target_exists: bool
    replace: bool  # stage everything and swap (full refresh, first load, backfill)
    window: Window
    unchanged: bool = False  # every row the window covers is already in the target as is
    build_indexes: bool = False  # staging may lack secondary indexes: add them after load
    target: TableSchema | None = None  # the target table an incremental run merges into
    copy: Copy | None = None  # a chunked full copy (tables over CHUNK_ROWS)
    rereads_copy: bool = False  # first incremental run after a chunked copy
    by_diff: bool = False  # a table without modifier brought level by its differences
    observed: bool = False  # ``previous`` was read from the status table this run
    previous: TableStatus | None = None  # what the last run recorded (None: never synced)


def table_config(runtime: Runtime, name: str) -> TableConfig:
    config = runtime.tables.get(name)
    if config is None:
        problem = ConfigProblem("tables.json", f"table {name!r} is not listed")
        raise ConfigError([problem])
    return config


def sync_table(
    runtime: Runtime, table: str, *, full_refresh: bool = False, reconcile: bool = False
) -> SyncResult:
    """Sync one table. Returns a 'synced' or 'skipped' result; raises if the sync failed.
    ``reconcile``: compare an incremental table's rows after the merge and repair them."""
    result, error = _attempt(runtime, table, Request(full_refresh, reconcile))
    if error is not None:
        raise attach_result(error, result)
    return result


def help_copy(runtime: Runtime, table: str, copy_id: str) -> dict[str, Any]:
    """Help a running chunked copy of ``table`` (a chunk task): copy chunks until none is
    left. Takes no lock: the copy's coordinator holds the table's."""
    config = table_config(runtime, table)
    with runtime.engines.source.connect() as conn:
        source = runtime.dialect.require_source_table(
            conn,
            runtime.dialect.source_schema(),
            table,
            config.primary_key,
            config.modifier,
        )
    return chunked_copy.help_copy(runtime, source, chunked_copy.chunk_key(config, source), copy_id)


def run_sync(
    runtime: Runtime, table: str, *, full_refresh: bool = False, reconcile: bool = False
) -> SyncResult:
    """Like sync_table, but a failure is returned as a 'failed' result instead of raised."""
    result, _error = _attempt(runtime, table, Request(full_refresh, reconcile))
    return result


def _attempt(runtime: Runtime, table: str, request: Request) -> tuple[SyncResult, Exception | None]:
    result = SyncResult(table=table, mode=FULL_REFRESH if request.full_refresh else INCREMENTAL)
    try:
        config = table_config(runtime, table)
        result.mode = (
            FULL_REFRESH if request.full_refresh or not config.incremental else INCREMENTAL
        )
        if reconcile.diffs(runtime, config, request):
            result.mode = DIFF
        log.info("table %s: %s sync started", table, result.mode)
        runtime.dialect.ensure_target()
        with runtime.dialect.table_lock(runtime.engines.target, table) as lock:
            result.held_from = utc_now()
            try:
                left = _sync_locked(runtime, config, result, lock, request)
                # what this run leaves the target as: a later difference from it is target drift
                schema_follow.remember(result, left or _target_schema(runtime, table))
            finally:
                result.held_until = utc_now()
    except TableBusy as busy:
        result.finish("skipped", str(busy))
        log.info("table %s: skipped, another process is syncing it", table)
        runtime.notify(result)
        return result, None
    except Exception as exc:
        result.finish("failed", describe(exc))
        log.error("table %s: sync failed: %s", table, result.error)
        log.debug("table %s: traceback of the failure", table, exc_info=exc)
        _record(runtime, result)
        return result, exc
    result.finish("synced")
    log.info(
        "table %s: synced (%s) %s rows extracted, %s loaded, %s deleted, %s repaired in %.2fs (%s)",
        table,
        result.mode,
        result.rows_extracted,
        result.rows_loaded,
        result.rows_deleted,
        result.rows_repaired,
        result.duration_s,
        ", ".join(f"{name} {seconds:.2f}s" for name, seconds in result.phases.items()),
    )
    _record(runtime, result)
    return result, None


def _record(runtime: Runtime, result: SyncResult) -> None:
    if result.error:
        result.error = redact(result.error)
    try:
        record_result(runtime.engines.target, runtime.settings.target.database, result)
    except Exception as exc:  # noqa: BLE001 - status is best effort; the sync result stands
        log.warning("table %s: could not record sync status: %s", result.table, describe(exc))
    runtime.notify(result)


@contextmanager
def _phase(result: SyncResult, name: str) -> Iterator[None]:
    """Time one step of the sync into ``result.phases`` (seconds)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        result.phases[name] = round(time.perf_counter() - started, 3)


def _sync_locked(
    runtime: Runtime, config: TableConfig, result: SyncResult, lock: HeldLock, request: Request
) -> TableSchema | None:
    """The run under the table's lock. Returns the target's definition when the run left it
    as the plan read it (rows merged or repaired only), else None."""
    with _phase(result, "schema"):
        source, plan = _mirror_schema(runtime, config, result, request)
    if plan.unchanged or plan.by_diff or plan.copy is not None:
        leave_batch()  # nothing small to stage: the tables synced beside it need not wait
    lock_check: Callable[[], None] = lock.ensure_held
    if plan.by_diff:
        with _phase(result, "diff"):
            levelled = _level(runtime, config, source, plan, result, lock_check, drift=False)
        if levelled:
            return plan.target
        plan = _copy_instead(runtime, config, source, result, "many rows differ")
    merged = plan.target is not None and not plan.replace
    reconciles = merged and reconcile.due(
        runtime, config, request, recorded=_last_reconcile(plan) if plan.observed else None
    )
    # a reconcile deletes what the source no longer has too: no key comparison before it
    compares = merged and not reconciles and deletes.due(runtime, config)
    # the keys to compare are the ones this run's read can see: taken before it reads
    with deletes.keys_as_read(runtime) if compares else nullcontext() as snapshot:
        if plan.unchanged:
            log.info("table %s: no changes since the last sync", config.table)
        else:
            _load(runtime, config, source, plan, result, lock_check)
        if compares:
            assert plan.target is not None
            with _phase(result, "deletes"):
                tables = deletes.Tables(source, plan.target)
                deletes.propagate(
                    runtime, config, tables, result, before_delete=lock_check, snapshot=snapshot
                )
    if reconciles:
        with _phase(result, "reconcile"):
            levelled = _level(runtime, config, source, plan, result, lock_check, drift=True)
        if not levelled:
            _load(
                runtime,
                config,
                source,
                _copy_instead(runtime, config, source, result, "many rows differ"),
                result,
                lock_check,
            )
            merged = False
    _reread_done(runtime, config, plan)
    return plan.target if merged else None


def _last_reconcile(plan: Plan) -> Callable[[], datetime | None]:
    """When the table was last reconciled, as the status this run read says."""
    moment = plan.previous.last_reconcile_at if plan.previous is not None else None
    return lambda: moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _level(
    runtime: Runtime,
    config: TableConfig,
    source: TableSchema,
    plan: Plan,
    result: SyncResult,
    lock_check: Callable[[], None],
    *,
    drift: bool,
) -> bool:
    """Compare the rows and repair them in place; False when the table must be copied."""
    assert plan.target is not None, "a comparison knows its target table"
    key = reconcile.table_key(config, source)
    pair = reconcile.Pair(config, source, plan.target, key)
    return reconcile.level(runtime, pair, result, lock_check, drift=drift)


def _copy_instead(
    runtime: Runtime, config: TableConfig, source: TableSchema, result: SyncResult, reason: str
) -> Plan:
    """A whole copy in place of a comparison (too many rows differ)."""
    _copy_whole(result, reason)
    plan = Plan(FULL_REFRESH, target_exists=True, replace=True, window=Window())
    _prepare_full_copy(runtime, config, source, plan, result)
    return plan


def _mirror_schema(
    runtime: Runtime, config: TableConfig, result: SyncResult, request: Request
) -> tuple[TableSchema, Plan]:
    """Read the source definition, mirror it in the target and plan the run."""
    dialect = runtime.dialect
    with runtime.engines.source.connect() as conn:
        source = dialect.require_source_table(
            conn,
            dialect.source_schema(),
            config.table,
            config.primary_key,
            config.modifier,
        )
    # once for the tables synced side by side: the staging database is there for all
    shared("staging database", lambda: dialect.ensure_staging(runtime.engines.target))
    return source, _plan(runtime, config, source, result, request)


def _load(
    runtime: Runtime,
    config: TableConfig,
    source: TableSchema,
    plan: Plan,
    result: SyncResult,
    lock_check: Callable[[], None],
) -> None:
    """Stage the rows with dlt, then commit them."""
    if plan.replace:  # a full copy mirrors deletes and content: it counts as a comparison
        result.deletes_checked_at = result.reconciled_at = utc_now()
    with _phase(result, "stage"), _read_ahead(runtime, source, plan):
        if plan.copy is not None:
            key = chunked_copy.chunk_key(config, source)
            job = chunked_copy.Job(runtime, source, key, plan.copy)
            staged = chunked_copy.coordinate(job, result, lock_check, _chunk_rows(runtime, config))
        else:
            staged = _stage(runtime, config, source, plan, result)
    lock_check()
    with _phase(result, "commit"):
        _commit(runtime, config, source, plan, staged)
    result.rows_loaded = staged


def _reread_done(runtime: Runtime, config: TableConfig, plan: Plan) -> None:
    if plan.rereads_copy:
        chunked_copy.progress_of(runtime).clear_reread(config.table)


def _read_ahead(
    runtime: Runtime, source: TableSchema, plan: Plan
) -> AbstractContextManager[ReadAhead | None]:
    """While staging, read the target pages the merge will write (incremental runs only)."""
    dialect, engines = runtime.dialect, runtime.engines
    if plan.target is None or plan.replace or not dialect.reads_ahead:
        return nullcontext()
    databases = (dialect.source_schema(), dialect.target_schema())
    return reading_ahead(
        dialect, engines.source, engines.target, databases, (source, plan.target), plan.window
    )


def _stage(
    runtime: Runtime, config: TableConfig, source: TableSchema, plan: Plan, result: SyncResult
) -> int:
    """Extract with dlt into the staging table; returns the staged row count (checked)."""
    dialect, engines = runtime.dialect, runtime.engines
    stats = ExtractStats()
    rows = dialect.stream_rows(
        Read(
            dialect=dialect,
            engine=engines.source,
            database=dialect.source_schema(),
            schema=source,
            window=plan.window,
            fetch_limit=runtime.settings.fetch_limit,
            stats=stats,
            count_snapshot=plan.replace,
        )
    )
    target = table_target(
        dialect.dlt_destination(engines.target),
        dialect.target_schema(),
        dialect.staging_schema(),
        config.table,
        runtime.settings.work_dir,
    )
    result.load_id = stage(
        Staging(
            target,
            config.table,
            rows,
            reset=lambda: _empty_staging(runtime, config, source, plan),
            guard=lambda: dialect.first_run_guard(engines.target),
        )
    )
    result.rows_extracted = stats.rows
    staged = dialect.count_rows(
        engines.target, dialect.staging_schema(), dialect.staging_table(config.table)
    )
    if plan.replace and staged != stats.snapshot_rows:
        raise RowCountMismatch(
            f"table {config.table!r}: staged {staged} rows but the source snapshot has "
            f"{stats.snapshot_rows}; the target was left unchanged"
        )
    return staged


def _empty_staging(runtime: Runtime, config: TableConfig, source: TableSchema, plan: Plan) -> None:
    """The staging table as the plan made it, before anything was loaded into it."""
    dialect, engine = runtime.dialect, runtime.engines.target
    if plan.replace or plan.target is None:
        dialect.create_staging(engine, source, config.primary_key, config.modifier)
    else:
        dialect.stage_like_target(engine, plan.target, config.primary_key)


def _commit(
    runtime: Runtime, config: TableConfig, source: TableSchema, plan: Plan, staged: int
) -> None:
    """Make the staged rows the target's: atomic swap, or one upsert by key."""
    dialect, target = runtime.dialect, runtime.engines.target
    if not plan.replace:
        assert plan.target is not None, "an incremental plan knows its target table"
        dialect.merge(target, plan.target, config.primary_key)
        return
    if plan.target_exists:
        current = dialect.count_rows(target, dialect.target_schema(), config.table)
        reconcile.check_whole_copy(config, current, staged)
    if plan.build_indexes:
        dialect.index_staging(target, source, config.modifier)
    if plan.copy is None:
        dialect.swap_into_place(target, source, plan.target_exists)
        return
    chunked_copy.finish(
        runtime,
        plan.copy,
        staged,
        lambda: dialect.swap_into_place(target, source, plan.target_exists),
    )


def _target_schema(runtime: Runtime, table: str) -> TableSchema:
    with runtime.engines.target.connect() as conn:
        schema = runtime.dialect.read_table(conn, runtime.dialect.target_schema(), table)
    assert schema is not None, f"target table {table} vanished during the sync"
    return schema


def _copy_whole(result: SyncResult, reason: str) -> None:
    """An incremental table takes the full-refresh path this run: say so, in log and result."""
    if result.mode != FULL_REFRESH:
        log.info("table %s: %s: copying it whole (full refresh)", result.table, reason)
        result.mode = FULL_REFRESH


def _plan(
    runtime: Runtime,
    config: TableConfig,
    source: TableSchema,
    result: SyncResult,
    request: Request,
) -> Plan:
    """Mirror the schema and decide between a staged swap and an incremental merge."""
    dialect = runtime.dialect
    engine = runtime.engines.target
    target_db = dialect.target_schema()
    with engine.connect() as conn:
        current = dialect.read_table(conn, target_db, config.table)
    # before any of the table's rows is read: the safe point of this run's reads
    previous = cursor_guard.observe(runtime, config, source, result) if config.modifier else None
    replace = Plan(FULL_REFRESH, target_exists=current is not None, replace=True, window=Window())
    if result.mode == DIFF and not reconcile.table_key(config, source):
        result.mode = FULL_REFRESH  # a keyless table: its rows have no identity to match
    if dialect.copies_in_chunks:
        replace.copy = chunked_copy.resume(runtime, source, chunked_copy.chunk_key(config, source))
        if replace.copy is not None:
            result.safe_point = None  # its chunks were read before: the copy's start holds
            _copy_whole(result, "an interrupted chunked copy is resumed")
            log.info("table %s: resuming chunked copy %s", config.table, replace.copy.copy_id)
            replace.build_indexes = True
            return replace
    if result.mode == FULL_REFRESH or current is None:
        if current is None:
            schema_log.info("table %s: creating target table", config.table)
            result.schema_changes.append(CREATED)
            _copy_whole(result, "the target table does not exist")
        elif not request.full_refresh:
            schema_follow.before_full_copy(runtime, config, source, current, result)
        if current is not None and _copy_unneeded(runtime, config, source, current, request):
            replace.unchanged = True
            return replace
        _prepare_full_copy(runtime, config, source, replace, result)
        return replace
    followed = schema_follow.follow(runtime, config, source, current, result)
    if followed is Followed.REBUILD:
        _copy_whole(result, "the schema changed in a way the target cannot follow in place")
        _prepare_full_copy(runtime, config, source, replace, result)
        return replace
    if followed is Followed.ALTERED:
        current = _target_schema(runtime, config.table)
        schema_follow.remember(result, current)  # kept even if this run fails later
    if dialect.is_empty(engine, target_db, config.table):
        _copy_whole(result, "the target table is empty")
        _prepare_full_copy(runtime, config, source, replace, result)
        return replace
    if result.mode == DIFF:
        return Plan(
            DIFF, target_exists=True, replace=False, window=Window(), target=current, by_diff=True
        )
    cursor = source.column(config.modifier or "")
    assert cursor is not None
    window = Window(cursor.name, cursor_guard.lower_bound(runtime, config, cursor, previous))
    plan = Plan(INCREMENTAL, target_exists=True, replace=False, window=window, target=current)
    plan.observed, plan.previous = True, previous
    if dialect.copies_in_chunks:
        # changes made while a chunked copy ran may be older than the target's newest row
        copy_start = chunked_copy.progress_of(runtime).pending_reread(config.table)
        if copy_start is not None:
            plan.window.lower_bound, plan.rereads_copy = copy_start, True
    if window.lower_bound is not None:
        verdict = window_diff.compare(runtime, source, current, window, config.primary_key)
        if verdict.unchanged:
            plan.unchanged = True
            return plan
        plan.window.key_range = verdict.only  # only the rows the target lacks as they are
        plan.window.counted = verdict.counted
    dialect.stage_like_target(engine, current, config.primary_key)
    return plan


def _copy_unneeded(
    runtime: Runtime,
    config: TableConfig,
    source: TableSchema,
    current: TableSchema,
    request: Request,
) -> bool:
    """A keyless table not forced whole whose whole-table checksums show nothing changed."""
    if request.full_refresh or config.strategy == "replace" or reconcile.table_key(config, source):
        return False
    if schema_follow.compare(runtime, config, source, current, facts=False).needed:
        return False
    if not reconcile.checksums_match(runtime, source, current):
        return False
    log.info("table %s: the checksums of source and target match", config.table)
    return True


def _prepare_full_copy(
    runtime: Runtime, config: TableConfig, source: TableSchema, plan: Plan, result: SyncResult
) -> None:
    """An empty staging table: for a chunked copy of a large table, or a one-piece one."""
    dialect = runtime.dialect
    plan.build_indexes = True
    if dialect.copies_in_chunks and chunked_copy.chunk_key(config, source):
        plan.copy = chunked_copy.start(
            runtime,
            source,
            config,
            _chunk_rows(runtime, config),
            lambda: _copy_start(runtime, config, source, result),
        )
    if plan.copy is None:
        dialect.create_staging(runtime.engines.target, source, config.primary_key, config.modifier)


def _chunk_rows(runtime: Runtime, config: TableConfig) -> int:
    return config.chunk_rows or runtime.settings.chunk_rows


def _copy_start(
    runtime: Runtime, config: TableConfig, source: TableSchema, result: SyncResult
) -> str | None:
    """Where the first incremental read after a chunked copy must start (see
    :func:`dbsync.sync.cursor_guard.copy_start`)."""
    cursor = source.column(config.modifier) if config.modifier else None
    if cursor is None:
        return None
    return cursor_guard.copy_start(runtime, config, cursor, result)
