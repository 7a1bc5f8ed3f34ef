"""The fleet's tasks, thin wrappers around the library: ``dbsync.sync_table`` around
dbsync.sync.run.sync_table, and ``dbsync.copy_chunk`` around dbsync.sync.run.help_copy (a
helper of a chunked full copy, sent by the copy's coordinator through ``spread_chunks``).

The task builds nothing itself: it takes the process's Runtime (built after fork by
``workers.worker``), calls the same library function as ``dbsync sync`` and turns the outcome
into Celery's terms:

- synced, or skipped because another process holds the table's lock: return the summary;
- transient error (connection lost, deadlock, pool exhausted...): retry with exponential
  backoff and jitter, at most RETRY_MAX times, then fail;
- anything else (bad configuration, missing table, schema, data): fail at once, no retry.

While it runs, the table's pending marker (``workers.pending``) says so; it goes when the
task ends for good, so beat sends the table's next sync only then.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from celery import Task, signals
from celery.exceptions import SoftTimeLimitExceeded

from dbsync.config.errors import Outcome, classify, describe
from dbsync.config.result import Status, SyncResult, result_of, utc_now
from dbsync.config.retry import backoff_delay, should_retry
from dbsync.sync import run as sync
from dbsync.sync.runtime import Runtime
from workers import pending
from workers.app import app
from workers.config import CHUNK_TASK_NAME, TASK_NAME, load_fleet_settings
from workers.worker import get_runtime

logger = logging.getLogger("workers.worker")


class SyncFailed(Exception):
    """A sync that failed for good. ``args``: the message and the failed summary (a dict)."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message, summary)

    @property
    def message(self) -> str:
        return str(self.args[0])

    @property
    def summary(self) -> dict[str, Any] | None:
        return self.args[1] if len(self.args) > 1 else None

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"SyncFailed({self.message!r})"


class SyncRetrying(Exception):
    """Recorded as the reason of a RETRY state: the transient error being retried."""


def _mode(runtime: Runtime | None, table: str, full_refresh: bool) -> str:
    if full_refresh:
        return "full_refresh"
    config = runtime.tables.get(table) if runtime is not None else None
    return config.mode if config is not None else "unknown"


def _summary(
    table: str,
    mode: str,
    started: datetime,
    status: Status,
    error: str | None = None,
    cause: BaseException | None = None,
) -> dict[str, Any]:
    """The library's own summary of a failed sync when it has one, else a minimal one."""
    result = result_of(cause) if cause is not None else None
    if result is None:
        result = SyncResult(table=table, mode=mode, started_at=started).finish(status)
    result.status, result.error = status, error
    return result.to_dict()


# throws: a SyncFailed is an expected outcome, already logged with its reason by the task;
# Celery records it without printing a second traceback.
@app.task(name=TASK_NAME, bind=True, max_retries=None, throws=(SyncFailed,))
def sync_table(
    self: Task, table: str, full_refresh: bool = False, reconcile: bool = False
) -> dict[str, Any]:
    """Sync one table; returns the JSON summary (status ``synced`` or ``skipped``).
    ``reconcile``: also compare and repair an incremental table's rows after its merge."""
    with _pending_marker(self, table):
        return _sync(self, table, full_refresh, reconcile)


@signals.task_prerun.connect
def _mark_running(
    sender: Any = None,
    task_id: str | None = None,
    args: Any = (),
    kwargs: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Celery records a task STARTED after its prerun signal: marking the table's sync
    running here means a task seen STARTED always has a marker to be found lost by."""
    table = (kwargs or {}).get("table", args[0] if args else None)
    if getattr(sender, "name", None) != TASK_NAME or task_id is None or table is None:
        return
    try:
        stale_s = get_runtime().settings.lock_stale_seconds
    except Exception:  # noqa: BLE001 - the sync reports the same failure
        return
    pending.mark_running(sender.app, task_id, table, stale_s)


def _pending_marker(task: Task, table: str) -> AbstractContextManager[None]:
    """The table's pending marker while this task runs (none without settings)."""
    try:
        runtime = get_runtime()
    except Exception:  # noqa: BLE001 - the sync reports the same failure
        return nullcontext()
    config, settings = runtime.tables.get(table), runtime.settings
    interval = config.interval if config is not None and config.interval else settings.interval
    return pending.tracking(task.app, task.request.id, table, interval)


def _sync(task: Task, table: str, full_refresh: bool, reconcile: bool) -> dict[str, Any]:
    started = utc_now()
    runtime: Runtime | None = None
    try:
        runtime = get_runtime()
        result = sync.sync_table(runtime, table, full_refresh=full_refresh, reconcile=reconcile)
    except Exception as exc:  # every failure is classified below, none is swallowed
        return _on_error(task, runtime, table, full_refresh, started, exc)
    summary = result.to_dict()
    logger.info(
        "%s %s (%s): %d rows extracted, %d loaded, %d repaired in %.1fs",
        table,
        summary["status"],
        summary["mode"],
        summary["rows_extracted"],
        summary["rows_loaded"],
        summary["rows_repaired"],
        summary["duration_s"],
    )
    return summary


def _on_error(
    task: Task,
    runtime: Runtime | None,
    table: str,
    full_refresh: bool,
    started: datetime,
    exc: Exception,
) -> dict[str, Any]:
    mode = _mode(runtime, table, full_refresh)
    if isinstance(exc, SoftTimeLimitExceeded):
        limit = task.request.timelimit[1] if task.request.timelimit else None
        message = (
            f"sync exceeded the soft time limit ({limit or app.conf.task_soft_time_limit}s); "
            "raise SYNC_SOFT_TIME_LIMIT/SYNC_TIME_LIMIT or sync the table less often"
        )
        logger.error("%s failed: %s", table, message)
        raise SyncFailed(f"{table}: {message}", _summary(table, mode, started, "failed", message))
    outcome = classify(exc)
    message = describe(exc)
    if outcome is Outcome.SKIP:
        logger.info("%s skipped: %s", table, message)
        return _summary(table, mode, started, "skipped", None)
    retries = task.request.retries
    if outcome is Outcome.TRANSIENT:
        settings = runtime.settings if runtime is not None else load_fleet_settings()
        if should_retry(retries, settings.retry_max):
            countdown = backoff_delay(
                retries, settings.retry_backoff_base, settings.retry_backoff_max
            )
            logger.warning(
                "%s: transient error, retry %d/%d in %.1fs: %s",
                table,
                retries + 1,
                settings.retry_max,
                countdown,
                message,
            )
            raise task.retry(
                countdown=countdown,
                max_retries=settings.retry_max,
                exc=SyncRetrying(f"{table}: {message}"),
            )
        message = f"{message} (still failing after {retries} retries)"
    logger.error("%s failed: %s", table, message)
    summary = _summary(table, mode, started, "failed", message, exc)
    raise SyncFailed(f"{table}: {message}", summary)


@signals.task_revoked.connect
def _on_revoked(request: Any = None, **_: Any) -> None:
    """An expired or revoked sync message never runs: its table is no longer pending."""
    if request is None or request.task_name != TASK_NAME or not request.args:
        return
    try:
        pending.pending_of(app).release(str(request.args[0]), request.id)
    except Exception as exc:  # noqa: BLE001 - the marker's TTL frees the table anyway
        logger.warning("pending marker of revoked task %s not removed: %s", request.id, exc)


@app.task(name=CHUNK_TASK_NAME, bind=True, throws=(SyncFailed,))
def copy_chunk(self: Task, table: str, copy_id: str) -> dict[str, Any]:
    """Copy chunks of a running chunked copy until none is left; never takes the table lock.

    Not retried: a chunk that fails goes back to the copy (its lease is released, or
    expires if this process dies) and the coordinator, or another helper, copies it.
    """
    try:
        summary = sync.help_copy(get_runtime(), table, copy_id)
    except Exception as exc:  # the chunk is back in the copy; report and end
        message = describe(exc)
        logger.warning("%s: chunk helper for copy %s stopped: %s", table, copy_id, message)
        raise SyncFailed(f"{table}: {message}") from None
    logger.info("%s: helped copy %s with chunks %s", table, copy_id, summary["chunks"])
    return summary


def spread_chunks(table: str, copy_id: str, helpers: int) -> None:
    """``Runtime.spread_chunks`` in a worker: that many chunk tasks for idle workers."""
    expires = get_runtime().settings.copy_resume_seconds
    for _ in range(helpers):
        copy_chunk.apply_async(args=[table, copy_id], expires=expires)
