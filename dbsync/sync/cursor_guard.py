"""The cursor's safe point: where an incremental read starts so that no late commit is lost.

A row a sync's read cannot see belongs to a transaction that had not committed when the
read's snapshot began. Before any read of the table, :func:`observe` asks the source for
its clock, the start of its oldest running statement and the start of its oldest open
transaction (other connections; :meth:`dbsync.dialect.Dialect.oldest_activity`). A cursor
the server stamps (``ON UPDATE CURRENT_TIMESTAMP``, ``NOW()`` in the statement) holds its
statement's start time, so every row the snapshot cannot see carries a cursor value at or
after the earliest of the three: the *safe point* (a second earlier, whole seconds, so
second-resolution transaction starts and rounding columns stay below it). It is recorded
with the sync's status when the sync succeeds, and the next read starts there (minus
``lag_seconds``): rows are re-read until every transaction that could still stamp an older
value has committed, however long it stays open.

The read starts at the earlier of the safe point and the target's highest cursor value:
the safe point bounds what the last read could not see, and is at most the source's clock
(values stamped in the future never move the read past later changes); the target's highest
value keeps the same-value boundary (a row inserted later with an explicit value equal to
it, or between it and the safe point, as backfills and copies of timestamps do). Where many
rows share that highest value, the window stays large while nothing newer is written; it is
compared by buckets (:mod:`dbsync.sync.window_diff`), so it costs a fold, not a re-read.

Time zones: the source session is UTC, so TIMESTAMP cursors compare as instants. A DATETIME
or DATE cursor holds the writer's local time: the safe point is converted to
``CURSOR_TIME_ZONE`` (default: the source server's global ``time_zone``, the zone sessions
start in).

Without a safe point (the user lacks PROCESS, another kind of server, a zone the server
cannot convert to) the table runs on the fallback: reads start at the target's highest
cursor value minus ``lag_seconds`` plus ``CURSOR_FALLBACK_LAG_SECONDS``; the status, the
log and ``table_cursor_fallback`` say so. Cursors that are not dates or times (a version
number) have no safe point either: only ``lag``-free re-reads of the newest value.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from dbsync.backends import table_status
from dbsync.config.errors import SafePointUnavailable
from dbsync.config.result import SyncResult
from dbsync.config.tables import TableConfig
from dbsync.model import Column, TableSchema, TableStatus
from dbsync.sync.pipeline import shared
from dbsync.sync.runtime import Runtime

log = logging.getLogger("dbsync.sync_engine")

MARGIN = timedelta(seconds=1)  # below second-resolution transaction starts and rounding


def cursor_id(cursor: Column) -> str:
    """Which cursor a recorded safe point belongs to (a changed modifier or type drops it)."""
    return f"{cursor.name} {cursor.column_type}"


def configured_lag(runtime: Runtime, config: TableConfig) -> float:
    if config.lag_seconds is not None:
        return config.lag_seconds
    return runtime.settings.default_lag_seconds


def cursor_text(moment: datetime, cursor: Column) -> str:
    """``moment`` as a value of the cursor's type, rounded down to whole seconds (days)."""
    if cursor.data_type == "date":
        return moment.date().isoformat()
    return moment.replace(microsecond=0).strftime("%Y-%m-%d %H:%M:%S")


def shifted(value: str, seconds: float, cursor: Column) -> str:
    """A cursor value ``seconds`` earlier."""
    return cursor_text(datetime.fromisoformat(value) - timedelta(seconds=seconds), cursor)


def observe(
    runtime: Runtime, config: TableConfig, source: TableSchema, result: SyncResult
) -> TableStatus | None:
    """Before this run reads any of the table's rows: its safe point (or the fallback) and
    the rows stamped ahead of the source's clock, into ``result``. Returns what the last
    run recorded (None: never synced)."""
    dialect = runtime.dialect
    previous = table_status(runtime.engines.target, dialect.target_schema(), config.table)
    cursor = source.column(config.modifier) if config.modifier else None
    if cursor is None:
        return previous
    if not cursor.is_temporal:
        _fallback(result, previous, f"cursor {cursor.name!r} is not a date or time", False)
        return previous
    try:
        value = _safe_point(runtime, cursor)
    except SafePointUnavailable as exc:
        _fallback(result, previous, str(exc))
        return previous
    result.safe_point, result.safe_point_cursor = value, cursor_id(cursor)
    zone = runtime.settings.cursor_time_zone
    result.future_cursor_rows = dialect.future_cursor_rows(
        runtime.engines.source, config.table, cursor, zone
    )
    _report_future(result, previous, cursor)
    return previous


def _safe_point(runtime: Runtime, cursor: Column) -> str:
    """Taken once for the tables a process syncs side by side (:func:`pipeline.shared`):
    before any of them reads, so before each one's read, as the safe point must be."""
    dialect, engine = runtime.dialect, runtime.engines.source
    moment = shared("oldest activity", lambda: dialect.oldest_activity(engine) - MARGIN)
    if cursor.data_type != "timestamp":
        zone = runtime.settings.cursor_time_zone
        moment = shared(
            ("in writer zone", moment, zone), lambda: dialect.in_writer_zone(engine, moment, zone)
        )
    return cursor_text(moment, cursor)


def _fallback(
    result: SyncResult, previous: TableStatus | None, reason: str, temporal: bool = True
) -> None:
    result.cursor_fallback = True
    first = previous is None or not previous.cursor_fallback
    lags = "lag_seconds and CURSOR_FALLBACK_LAG_SECONDS" if temporal else "nothing"
    log.log(
        logging.WARNING if first else logging.INFO,
        "table %s: no safe point for the cursor (%s): incremental reads start at the newest "
        "cursor value in the target minus %s; a transaction committing later than that is "
        "missed",
        result.table,
        reason,
        lags,
    )


def _report_future(result: SyncResult, previous: TableStatus | None, cursor: Column) -> None:
    if not result.future_cursor_rows:
        return
    first = previous is None or not previous.future_cursor_rows
    log.log(
        logging.WARNING if first else logging.DEBUG,
        "table %s: %s rows have %s values ahead of the source's clock (clock skew, or an "
        "application writing local time): they are re-read every sync until the clock passes "
        "them; later changes still arrive",
        result.table,
        result.future_cursor_rows,
        cursor.name,
    )


def lower_bound(
    runtime: Runtime, config: TableConfig, cursor: Column, previous: TableStatus | None
) -> str | None:
    """Where this incremental read starts, minus ``lag_seconds``: the earlier of the last
    run's safe point and the target's highest value (rows written with an explicit value at
    or after it, the same-value boundary, are read too); without a safe point, the target's
    highest value minus ``CURSOR_FALLBACK_LAG_SECONDS`` too."""
    lag = configured_lag(runtime, config)
    temporal = cursor.is_temporal
    recorded = previous.safe_point if previous is not None else None
    if not (temporal and recorded and previous.safe_point_cursor == cursor_id(cursor)):
        extra = runtime.settings.cursor_fallback_lag_seconds if temporal else 0.0
        return _target_bound(runtime, config, cursor, lag + extra)
    start = shifted(recorded, lag, cursor)
    highest = _target_bound(runtime, config, cursor, lag)
    return start if highest is None else min(start, _normal(highest, cursor))


def _target_bound(runtime: Runtime, config: TableConfig, cursor: Column, lag: float) -> str | None:
    dialect = runtime.dialect
    engine, schema = runtime.engines.target, dialect.target_schema()
    return dialect.highest_cursor(engine, schema, config.table, cursor, lag)


def _normal(value: str, cursor: Column) -> str:
    """A cursor value as :func:`cursor_text` writes them (comparable as text), rounded down."""
    try:
        return cursor_text(datetime.fromisoformat(value), cursor)
    except ValueError:  # a zero date and the like: the earliest value there is
        return "0000-00-00" if cursor.data_type == "date" else "0000-00-00 00:00:00"


def copy_start(
    runtime: Runtime, config: TableConfig, cursor: Column, result: SyncResult
) -> str | None:
    """Where the first incremental read after a chunked copy starts: this run's safe point
    (taken before any chunk was read) minus the lag; without one, the source's highest
    cursor value before the copy, minus the lags."""
    lag = configured_lag(runtime, config)
    if result.safe_point is not None:
        return shifted(result.safe_point, lag, cursor)
    extra = runtime.settings.cursor_fallback_lag_seconds if cursor.is_temporal else 0
    dialect = runtime.dialect
    engine, schema = runtime.engines.source, dialect.source_schema()
    return dialect.highest_cursor(engine, schema, config.table, cursor, lag + extra)
