"""Prometheus metrics, correct across prefork worker processes.

Per-process metrics (written by whichever process ran the sync):

- ``sync_duration_seconds{table,mode}`` histogram of successful syncs.
- ``records_processed_total{table,mode}`` rows loaded into the target;
  ``records_extracted_total{table,mode}`` rows read from the source;
  ``records_deleted_total{table,mode}`` target rows removed because the source deleted them;
  ``rows_repaired_total{table,mode,change}`` rows a row-content comparison found different
  and wrote (``change`` = ``inserted`` | ``updated`` | ``deleted``; :mod:`dbsync.reconcile`).
- ``sync_errors_total{table,mode}`` failed syncs; ``syncs_total{table,mode,status}`` every
  sync outcome (``synced``, ``failed``, ``skipped``).
- ``chunks_copied_total{table}`` chunks of chunked full copies loaded by these processes
  (``chunk_rows_copied_total{table}`` their rows).
- ``connection_pool_size{pool}`` and ``connection_pool_checked_out{pool}`` gauges
  (``pool`` = ``source`` | ``target``), summed over the live processes.

Derived at scrape time:

- ``table_sync_success_rate{table}``: synced / (synced + failed) over the syncs counted by
  these processes since they started (fleet-wide: divide the sums of ``syncs_total`` rates
  in PromQL, see docs/operations.md, "Metrics reference").
- From the target's ``_dbsync_status`` table (the fleet-wide source of truth):
  ``table_freshness_seconds{table}`` (seconds since the last successful sync),
  ``table_last_success_timestamp_seconds{table}``, ``table_last_sync_success{table}``
  (1/0), ``table_consecutive_failures{table}``, ``table_last_rows_repaired{table}`` (rows
  the table's last sync repaired), ``table_stale{table}`` (1/0, the health
  policy's staleness rule, :class:`dbsync.ops.health.Staleness`),
  ``table_cursor_fallback{table}`` (1/0: reads start at a lag, no safe point,
  :mod:`dbsync.sync.cursor_guard`), ``table_future_cursor_rows{table}`` (rows stamped ahead
  of the source's clock), ``table_interval_seconds{table}`` (the table's schedule, for
  alert rules) and ``sync_status_readable`` (1/0).
- From the fleet's queue (given by the worker, which knows the broker):
  ``table_sync_queued_seconds{table}``, how long the table's scheduled sync has waited for
  a worker (only tables whose message is queued and not yet started).

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set (or :func:`setup_multiprocess`
was called before the worker forks), every process writes its values to files in that
directory and a scrape merges them, so a prefork worker reports the sum over its children,
not the numbers of whichever process answered. Without it, values live in this process.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dbsync.backends import pool_status
from dbsync.ops.logs import Periodic, start_pool_reporter

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dbsync.backends import Engines
    from dbsync.config.result import SyncResult
    from dbsync.ops.health import QueueWaits, Staleness
    from dbsync.sync.runtime import Runtime

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))
POOLS = ("source", "target")

log = logging.getLogger("dbsync.metrics")

# ``*_created`` samples exist only in single-process mode; drop them so both modes agree.
disable_created_metrics()


@dataclass
class _Metrics:
    registry: CollectorRegistry | None
    sync_duration: Histogram
    records_processed: Counter
    records_extracted: Counter
    records_deleted: Counter
    rows_repaired: Counter
    sync_errors: Counter
    syncs: Counter
    chunks_copied: Counter
    chunk_rows_copied: Counter
    pool_size: Gauge
    pool_checked_out: Gauge


_metrics: _Metrics | None = None
_lock = threading.Lock()


def multiprocess_dir() -> str | None:
    """The multiprocess directory in use (``PROMETHEUS_MULTIPROC_DIR``), or None."""
    return os.environ.get(MULTIPROC_ENV) or None


def _select_value_class() -> None:
    # prometheus_client picks its value class when first imported; follow the environment
    # instead, so that an entry point may enable multiprocess mode after importing us.
    multi = multiprocess_dir() is not None
    if multi and values.ValueClass is values.MutexValue:
        values.ValueClass = values.MultiProcessValue()
    elif not multi and values.ValueClass is not values.MutexValue:
        values.ValueClass = values.MutexValue


def _create() -> _Metrics:
    _select_value_class()
    registry = None if multiprocess_dir() else CollectorRegistry(auto_describe=True)
    by_table = ("table", "mode")
    return _Metrics(
        registry=registry,
        sync_duration=Histogram(
            "sync_duration_seconds",
            "Duration of successful table syncs",
            by_table,
            buckets=DURATION_BUCKETS,
            registry=registry,
        ),
        records_processed=Counter(
            "records_processed", "Rows loaded into the target", by_table, registry=registry
        ),
        records_extracted=Counter(
            "records_extracted", "Rows read from the source", by_table, registry=registry
        ),
        records_deleted=Counter(
            "records_deleted",
            "Target rows removed because the source deleted them",
            by_table,
            registry=registry,
        ),
        rows_repaired=Counter(
            "rows_repaired",
            "Rows a row-content comparison found different and wrote",
            (*by_table, "change"),
            registry=registry,
        ),
        sync_errors=Counter("sync_errors", "Failed table syncs", by_table, registry=registry),
        syncs=Counter("syncs", "Table sync outcomes", (*by_table, "status"), registry=registry),
        chunks_copied=Counter(
            "chunks_copied", "Chunks of chunked copies loaded", ("table",), registry=registry
        ),
        chunk_rows_copied=Counter(
            "chunk_rows_copied", "Rows of chunks loaded", ("table",), registry=registry
        ),
        pool_size=Gauge(
            "connection_pool_size",
            "Configured pool size, summed over live processes",
            ("pool",),
            multiprocess_mode="livesum",
            registry=registry,
        ),
        pool_checked_out=Gauge(
            "connection_pool_checked_out",
            "Connections in use, summed over live processes",
            ("pool",),
            multiprocess_mode="livesum",
            registry=registry,
        ),
    )


def _get() -> _Metrics:
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _create()
        return _metrics


def setup_multiprocess(path: str | os.PathLike[str] | None = None, *, wipe: bool = False) -> str:
    """Enable multiprocess mode for this process and the processes it forks afterwards.

    Call it in the worker's parent process before the pool forks (``wipe=True`` there, to
    drop the files of a previous run). A sidecar ``dbsync serve`` sharing the directory
    calls it with ``wipe=False``. The directory is ``path``, else ``PROMETHEUS_MULTIPROC_DIR``,
    else a new private temporary directory. Returns it (and exports it for children).
    """
    global _metrics
    chosen = path or multiprocess_dir()
    # No directory given: a private one, so two fleets on one host never mix their files.
    directory = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="dbsync-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    if wipe:
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    with _lock:
        _metrics = None
    _select_value_class()
    return str(directory)


def disable_multiprocess() -> None:
    """Back to in-process metrics, all values reset (tests, or a process leaving a fleet)."""
    global _metrics
    os.environ.pop(MULTIPROC_ENV, None)
    with _lock:
        _metrics = None
    _select_value_class()


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a finished process's live gauges (call from Celery's worker_process_shutdown)."""
    directory = multiprocess_dir()
    if directory:
        multiprocess.mark_process_dead(pid or os.getpid(), directory)


def record_sync(result: SyncResult) -> None:
    """Count one sync outcome: a :class:`dbsync.sync.runtime.Runtime` listener."""
    m = _get()
    labels = {"table": result.table, "mode": result.mode}
    m.syncs.labels(status=result.status, **labels).inc()
    if result.status == "skipped":
        return
    m.records_processed.labels(**labels).inc(max(result.rows_loaded, 0))
    m.records_extracted.labels(**labels).inc(max(result.rows_extracted, 0))
    m.records_deleted.labels(**labels).inc(max(result.rows_deleted, 0))
    repaired = {
        "inserted": result.repaired_inserted,
        "updated": result.repaired_updated,
        "deleted": result.repaired_deleted,
    }
    for change, rows in repaired.items():
        if rows > 0:
            m.rows_repaired.labels(change=change, **labels).inc(rows)
    if result.status == "synced":
        m.sync_duration.labels(**labels).observe(max(result.duration_s, 0.0))
    else:
        m.sync_errors.labels(**labels).inc()


def record_chunk(table: str, rows: int) -> None:
    """Count one chunk of a chunked copy loaded by this process: a Runtime chunk listener."""
    m = _get()
    m.chunks_copied.labels(table=table).inc()
    m.chunk_rows_copied.labels(table=table).inc(max(rows, 0))


def update_pool_gauges(engines: Engines) -> None:
    """Publish this process's pool size and checked-out connections."""
    m = _get()
    for name in POOLS:
        status = pool_status(getattr(engines, name))
        m.pool_size.labels(pool=name).set(status["pool_size"])
        m.pool_checked_out.labels(pool=name).set(status["checked_out"])


@dataclass
class Instrumentation:
    """What :func:`instrument` started in one process; :meth:`stop` on shutdown."""

    threads: list[Periodic] = field(default_factory=list)

    def stop(self) -> None:
        for thread in self.threads:
            thread.stop()


def instrument(
    runtime: Runtime, *, pool_log_every_s: float = 60.0, gauge_every_s: float = 15.0
) -> Instrumentation:
    """Wire metrics and pool logging into a worker process's runtime (after fork).

    Adds :func:`record_sync` (and a pool-gauge refresh) to ``runtime.listeners``, logs the
    pool status every ``pool_log_every_s`` and refreshes the pool gauges every
    ``gauge_every_s`` seconds.
    """
    engines = runtime.engines

    def listener(result: SyncResult) -> None:
        record_sync(result)
        update_pool_gauges(engines)

    runtime.listeners.append(listener)
    runtime.chunk_listeners.append(record_chunk)
    update_pool_gauges(engines)
    return Instrumentation(
        threads=[
            start_pool_reporter(engines, pool_log_every_s),
            Periodic(
                "dbsync-pool-gauges", gauge_every_s, lambda: update_pool_gauges(engines)
            ).start(),
        ]
    )


def process_metrics() -> list[Metric]:
    """This process group's metric families (merged over processes in multiprocess mode)."""
    directory = multiprocess_dir()
    if directory:
        return list(multiprocess.MultiProcessCollector(None, directory).collect())
    registry = _get().registry
    return list(registry.collect()) if registry is not None else []


def _samples(
    families: Iterable[Metric], sample_name: str
) -> Iterator[tuple[dict[str, str], float]]:
    for family in families:
        for sample in family.samples:
            if sample.name == sample_name:
                yield sample.labels, sample.value


def pool_totals(families: Iterable[Metric] | None = None) -> dict[str, dict[str, int]]:
    """Pool size and checked-out connections per pool, summed over the reporting processes.

    Pools that no process has reported are absent.
    """
    families = list(process_metrics() if families is None else families)
    totals: dict[str, dict[str, int]] = {}
    for key, metric in (
        ("pool_size", "connection_pool_size"),
        ("checked_out", "connection_pool_checked_out"),
    ):
        for labels, value in _samples(families, metric):
            pool = labels.get("pool", "")
            entry = totals.setdefault(pool, {"pool_size": 0, "checked_out": 0})
            entry[key] += int(value)
    return totals


def success_rates(families: Iterable[Metric]) -> dict[str, float]:
    """synced / (synced + failed) per table from ``syncs_total`` (tables with any outcome)."""
    counts: dict[str, list[float]] = {}
    for labels, value in _samples(families, "syncs_total"):
        status = labels.get("status")
        if status not in ("synced", "failed"):
            continue
        pair = counts.setdefault(labels.get("table", ""), [0.0, 0.0])
        pair[0 if status == "synced" else 1] += value
    return {table: ok / (ok + bad) for table, (ok, bad) in counts.items() if ok + bad > 0}


class _ProcessCollector(Collector):
    """Per-process metrics plus the success rate derived from them."""

    def __init__(self, engines: Engines | None = None) -> None:
        self._engines = engines

    def collect(self) -> Iterable[Metric]:
        if self._engines is not None:
            update_pool_gauges(self._engines)
        families = process_metrics()
        yield from families
        rate = GaugeMetricFamily(
            "table_sync_success_rate",
            "Successful / (successful + failed) syncs per table, since these processes started",
            labels=["table"],
        )
        for table, value in sorted(success_rates(families).items()):
            rate.add_metric([table], value)
        yield rate


class StatusCollector(Collector):
    """Per-table freshness and failures from the target's ``_dbsync_status`` (fleet-wide)."""

    def __init__(self, engine: Engine, database: str, staleness: Staleness | None = None) -> None:
        self._engine = engine
        self._database = database
        self._staleness = staleness

    def collect(self) -> Iterable[Metric]:
        from dbsync.backends import read_status

        readable = GaugeMetricFamily(
            "sync_status_readable", "1 if the sync status table could be read at this scrape"
        )
        try:
            rows = read_status(self._engine, self._database)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even when the DB is down
            from dbsync.config.errors import describe
            from dbsync.ops.logs import redact

            log.warning("cannot read sync status: %s", redact(describe(exc)))
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        now = datetime.now(UTC)
        families = {
            "freshness": GaugeMetricFamily(
                "table_freshness_seconds",
                "Seconds since the table's last successful sync",
                labels=["table"],
            ),
            "last_success": GaugeMetricFamily(
                "table_last_success_timestamp_seconds",
                "Unix time of the table's last successful sync",
                labels=["table"],
            ),
            "ok": GaugeMetricFamily(
                "table_last_sync_success",
                "1 if the table's last sync succeeded, else 0",
                labels=["table"],
            ),
            "failures": GaugeMetricFamily(
                "table_consecutive_failures",
                "Failed syncs since the table's last success",
                labels=["table"],
            ),
            "repaired": GaugeMetricFamily(
                "table_last_rows_repaired",
                "Rows the table's last sync repaired (a row-content comparison's writes)",
                labels=["table"],
            ),
            "cursor_fallback": GaugeMetricFamily(
                "table_cursor_fallback",
                "1 if the table's incremental reads run on the fallback lag (no safe point)",
                labels=["table"],
            ),
            "future_rows": GaugeMetricFamily(
                "table_future_cursor_rows",
                "Rows whose cursor value is ahead of the source's clock (last sync)",
                labels=["table"],
            ),
            "stale": GaugeMetricFamily(
                "table_stale",
                "1 if the table's last success is older than 3 times its interval",
                labels=["table"],
            ),
        }
        for row in rows:
            age = row.age_seconds(now)
            if age is not None and row.last_success_at is not None:
                families["freshness"].add_metric([row.table], max(age, 0.0))
                families["last_success"].add_metric(
                    [row.table], row.last_success_at.replace(tzinfo=UTC).timestamp()
                )
            families["ok"].add_metric([row.table], 1.0 if row.status == "synced" else 0.0)
            families["failures"].add_metric([row.table], float(row.consecutive_failures))
            families["repaired"].add_metric([row.table], float(row.rows_repaired))
            families["cursor_fallback"].add_metric([row.table], float(row.cursor_fallback))
            families["future_rows"].add_metric([row.table], float(row.future_cursor_rows))
            if self._staleness is not None:
                stale = self._staleness.is_stale(row.table, age)
                families["stale"].add_metric([row.table], 1.0 if stale else 0.0)
        if self._staleness is None:
            del families["stale"]
        yield from families.values()
        if self._staleness is not None:
            yield interval_family(self._staleness, [row.table for row in rows])


def interval_family(staleness: Staleness, tables: Iterable[str]) -> GaugeMetricFamily:
    """``table_interval_seconds``: each configured (or recorded) table's schedule."""
    family = GaugeMetricFamily(
        "table_interval_seconds", "Seconds between scheduled syncs of the table", labels=["table"]
    )
    for table in sorted({*staleness.intervals, *tables}):
        family.add_metric([table], float(staleness.interval_s(table)))
    return family


class QueueCollector(Collector):
    """``table_sync_queued_seconds`` from the fleet's queue (a callable the worker gives)."""

    def __init__(self, waits: QueueWaits) -> None:
        self._waits = waits

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "table_sync_queued_seconds",
            "Seconds the table's scheduled sync has waited for a worker (queued, not started)",
            labels=["table"],
        )
        try:
            waits = self._waits()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer when Redis is down
            log.warning("cannot read the fleet's queue: %s", exc)
            waits = {}
        for table, seconds in sorted(waits.items()):
            family.add_metric([table], max(seconds, 0.0))
        yield family


def collect_registry(
    status_engine: Engine | None = None,
    status_database: str | None = None,
    *,
    pool_engines: Engines | None = None,
    staleness: Staleness | None = None,
    queue_waits: QueueWaits | None = None,
) -> CollectorRegistry:
    """A registry holding everything ``/metrics`` shows.

    ``status_engine``/``status_database``: where ``_dbsync_status`` lives (the target), for
    the freshness metrics. ``pool_engines``: engines of this very process whose pools should
    be published at each scrape (a process that syncs itself, e.g. a solo worker).
    ``staleness``: the rule behind ``table_stale`` (omitted without it). ``queue_waits``:
    how long each table's queued sync has waited (a fleet's worker gives it).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessCollector(pool_engines))
    if status_engine is not None and status_database:
        registry.register(StatusCollector(status_engine, status_database, staleness))
    if queue_waits is not None:
        registry.register(QueueCollector(queue_waits))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


def metrics_text(**kwargs: Any) -> str:
    """Convenience: :func:`collect_registry` rendered as text."""
    return render(collect_registry(**kwargs)).decode()
