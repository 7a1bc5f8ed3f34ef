"""Gathering what the health policy (:mod:`dbsync.ops.health`) judges: database probes, pool
numbers, the target's ``_dbsync_status`` rows and the configured tables.

The sync status comes from the target's ``_dbsync_status`` table, so every worker's
endpoint reports the state of the whole fleet; pool numbers are those of the processes that
sync (summed over a prefork worker's children, from the metrics), or of the given engines
when no such process reports.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dbsync.backends import Engines, ping, pool_status, read_status
from dbsync.config.errors import describe
from dbsync.config.tables import TablesFile, load_tables
from dbsync.model import TableStatus
from dbsync.ops import metrics
from dbsync.ops.health import (
    DATABASES,
    Facts,
    Probe,
    QueueWaits,
    Staleness,
    clean_error,
    health_document,
)

if TYPE_CHECKING:

    from dbsync.config.settings import Settings

PROBE_TIMEOUT_S = 5.0


def probe_databases(engines: Engines, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Probe]:
    """``SELECT 1`` on source and target concurrently, each bounded by ``timeout_s``."""
    results: dict[str, Probe] = {}
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dbsync-probe")
    try:
        started = time.monotonic()
        futures = {name: pool.submit(ping, getattr(engines, name)) for name in DATABASES}
        for name, future in futures.items():
            remaining = max(timeout_s - (time.monotonic() - started), 0.0)
            try:
                future.result(timeout=remaining)
            except FutureTimeout:
                results[name] = Probe(False, _ms(started), f"no answer within {timeout_s:g}s")
            except Exception as exc:  # noqa: BLE001 - any failure means unreachable
                results[name] = Probe(False, _ms(started), clean_error(describe(exc)))
            else:
                results[name] = Probe(True, _ms(started))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def pool_numbers(engines: Engines) -> dict[str, dict[str, int]]:
    """Pool numbers reported by the syncing processes, else those of ``engines``."""
    reported = metrics.pool_totals()
    return {name: reported.get(name) or pool_status(getattr(engines, name)) for name in DATABASES}


def configured_tables(settings: Settings, tables: TablesFile | None = None) -> TablesFile:
    """``tables`` when given, else tables.json read now (it may change while we run)."""
    return tables if tables is not None else load_tables(settings.tables_config)


def staleness_for(settings: Settings, tables: TablesFile | None = None) -> Staleness:
    """The staleness rule for the configured tables (the global interval alone when
    tables.json cannot be read)."""
    try:
        return Staleness.of(settings.interval, configured_tables(settings, tables))
    except Exception:  # noqa: BLE001 - reported by the health document, not here
        return Staleness(settings.interval)


def gather_facts(
    settings: Settings,
    engines: Engines,
    started_at: datetime,
    *,
    tables: TablesFile | None = None,
    now: datetime | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
    queue_waits: QueueWaits | None = None,
) -> Facts:
    """Probe both databases, read the status table and tables.json (and the fleet's queue,
    given ``queue_waits``); failures to read become ``problems``, never exceptions."""
    now = now or datetime.now(UTC)
    problems: list[str] = []
    probes = probe_databases(engines, timeout_s)
    rows: list[TableStatus] = []
    if probes["target"].ok:
        try:
            rows = read_status(engines.target, settings.target.database)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            problems.append(f"cannot read sync status: {clean_error(describe(exc))}")
    queued = read_queue(queue_waits, problems)
    configured: TablesFile | None = None
    try:
        configured = configured_tables(settings, tables)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        problems.append(f"cannot read tables config: {clean_error(describe(exc))}")
    return Facts(
        now=now,
        uptime_s=max((now - started_at).total_seconds(), 0.0),
        probes=probes,
        pools=pool_numbers(engines),
        rows=rows,
        configured=[t.table for t in configured.tables] if configured is not None else None,
        staleness=Staleness.of(settings.interval, configured),
        problems=problems,
        config_problems=len(configured.problems) if configured is not None else 0,
        queued=queued,
    )


def read_queue(queue_waits: QueueWaits | None, problems: list[str]) -> dict[str, float]:
    """The fleet's queue waits (none without a fleet); an unreadable queue is a problem."""
    if queue_waits is None:
        return {}
    try:
        return dict(queue_waits())
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        problems.append(f"cannot read the fleet's queue: {clean_error(describe(exc))}")
        return {}


def build_health(
    settings: Settings,
    engines: Engines,
    started_at: datetime,
    *,
    tables: TablesFile | None = None,
    now: datetime | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
    queue_waits: QueueWaits | None = None,
) -> tuple[dict[str, Any], int]:
    """The health document and its HTTP status (200 healthy/degraded, 503 unhealthy)."""
    facts = gather_facts(
        settings,
        engines,
        started_at,
        tables=tables,
        now=now,
        timeout_s=timeout_s,
        queue_waits=queue_waits,
    )
    return health_document(facts)
