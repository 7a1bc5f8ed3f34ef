"""The health policy judges gathered facts: one staleness rule, one verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dbsync.model import TableStatus
from dbsync.ops.health import Facts, Probe, Staleness, health_document, verdict

NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
UP = Probe(ok=True, latency_ms=1.0)
POOLS = {"source": {"pool_size": 2, "checked_out": 0}, "target": {"pool_size": 2, "checked_out": 0}}


def synced(table: str, age_s: float) -> TableStatus:
    moment = (NOW - timedelta(seconds=age_s)).replace(tzinfo=None)
    return TableStatus(
        table=table,
        status="synced",
        mode="incremental",
        last_started_at=moment,
        last_finished_at=moment,
        last_success_at=moment,
        rows_extracted=1,
        rows_loaded=1,
        duration_s=0.1,
        last_error=None,
        load_id=None,
        worker="host:1",
        consecutive_failures=0,
    )


def facts(rows: list[TableStatus], staleness: Staleness, uptime_s: float = 0) -> Facts:
    return Facts(
        now=NOW,
        uptime_s=uptime_s,
        probes={"source": UP, "target": UP},
        pools=POOLS,
        rows=rows,
        configured=[row.table for row in rows],
        staleness=staleness,
    )


def test_a_table_with_its_own_interval_is_judged_by_it() -> None:
    rule = Staleness(default_interval=300, intervals={"fast": 60, "slow": 3600})
    assert (rule.max_age_s("fast"), rule.max_age_s("slow"), rule.max_age_s("other")) == (
        180,
        10800,
        900,
    )
    assert rule.is_stale("fast", 181) and not rule.is_stale("slow", 1000)


def test_no_success_yet_is_not_stale_but_late_after_the_allowed_wait() -> None:
    rule = Staleness(default_interval=300)
    assert not rule.is_stale("orders", None)
    assert rule.never_synced_is_late("orders", 901) and not rule.never_synced_is_late("orders", 60)


def test_document_lists_stale_tables_by_their_own_interval() -> None:
    rule = Staleness(default_interval=300, intervals={"fast": 60, "slow": 3600})
    body, code = health_document(facts([synced("fast", 400), synced("slow", 1000)], rule))
    assert (code, body["status"]) == (200, "degraded")
    assert body["stale_tables"] == [{"table": "fast", "age_seconds": 400.0, "max_age_seconds": 180}]


def test_unreachable_database_is_unhealthy_whatever_the_tables_say() -> None:
    down = Probe(ok=False, latency_ms=5.0, error="refused")
    assert verdict({"source": UP, "target": down}, []) == "unhealthy"
    assert verdict({"source": UP, "target": UP}, ["1 table(s) failed"]) == "degraded"
    assert verdict({"source": UP, "target": UP}, []) == "healthy"


def test_a_table_waiting_for_a_worker_longer_than_its_interval_degrades_health() -> None:
    rule = Staleness(default_interval=300, intervals={"fast": 60})
    waiting = facts([synced("fast", 10), synced("other", 10)], rule)
    waiting = Facts(**{**waiting.__dict__, "queued": {"fast": 61.0, "other": 200.0}})
    body, code = health_document(waiting)
    assert (code, body["status"]) == (200, "degraded")
    assert body["queued_tables"] == [
        {"table": "fast", "queued_seconds": 61.0, "interval_seconds": 60}
    ]
    assert "1 table(s) waited for a worker longer than their interval" in body["reasons"]


def test_a_short_wait_in_the_queue_is_healthy() -> None:
    rule = Staleness(default_interval=300)
    waiting = facts([synced("orders", 10)], rule)
    waiting = Facts(**{**waiting.__dict__, "queued": {"orders": 30.0}})
    body, _ = health_document(waiting)
    assert (body["status"], body["queued_tables"]) == ("healthy", [])
