"""Prometheus metrics: values recorded per sync, derived rates, and sums across processes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from dbsync.backends.engines import Engines
from dbsync.config.result import SyncResult
from dbsync.ops import metrics


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    metrics.disable_multiprocess()
    yield
    metrics.disable_multiprocess()


def result(table: str = "orders", status: str = "synced", **fields: object) -> SyncResult:
    outcome = SyncResult(table=table, mode=str(fields.pop("mode", "incremental")), **fields)
    outcome.finish(status, "boom" if status == "failed" else None)  # type: ignore[arg-type]
    outcome.duration_s = float(fields.get("duration_s", 2.0))  # type: ignore[arg-type]
    return outcome


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


def engines(pool_size: int) -> Engines:
    def make() -> sa.Engine:
        return sa.create_engine("mysql+pymysql://u:p@127.0.0.1:1/x", pool_size=pool_size)

    return Engines(source=make(), target=make())


def test_successful_sync_counts_rows_and_duration() -> None:
    metrics.record_sync(result(rows_loaded=120, rows_extracted=125, duration_s=3.0))
    text = metrics.metrics_text()
    labels = {"table": "orders", "mode": "incremental"}
    assert value(text, "records_processed_total", **labels) == 120
    assert value(text, "records_extracted_total", **labels) == 125
    assert value(text, "sync_duration_seconds_count", **labels) == 1
    assert value(text, "sync_duration_seconds_sum", **labels) == 3.0
    assert value(text, "sync_duration_seconds_bucket", le="5.0", **labels) == 1


def test_deleted_rows_are_counted() -> None:
    metrics.record_sync(result(rows_deleted=7))
    text = metrics.metrics_text()
    assert value(text, "records_deleted_total", table="orders", mode="incremental") == 7


def test_failed_sync_counts_an_error_and_no_duration() -> None:
    metrics.record_sync(result(status="failed"))
    text = metrics.metrics_text()
    assert value(text, "sync_errors_total", table="orders", mode="incremental") == 1
    assert value(text, "sync_duration_seconds_count", table="orders", mode="incremental") is None


def test_skipped_sync_is_counted_only_as_an_outcome() -> None:
    metrics.record_sync(result(status="skipped"))
    text = metrics.metrics_text()
    assert value(text, "syncs_total", table="orders", mode="incremental", status="skipped") == 1
    assert value(text, "records_processed_total", table="orders", mode="incremental") is None


def test_success_rate_per_table() -> None:
    for status in ("synced", "synced", "synced", "failed", "skipped"):
        metrics.record_sync(result(status=status))
    metrics.record_sync(result(table="countries", mode="full_refresh"))
    text = metrics.metrics_text()
    assert value(text, "table_sync_success_rate", table="orders") == 0.75
    assert value(text, "table_sync_success_rate", table="countries") == 1.0


def test_pool_gauges_report_this_process() -> None:
    metrics.update_pool_gauges(engines(pool_size=7))
    text = metrics.metrics_text()
    assert value(text, "connection_pool_size", pool="source") == 7
    assert value(text, "connection_pool_checked_out", pool="target") == 0
    assert metrics.pool_totals() == {
        "source": {"pool_size": 7, "checked_out": 0},
        "target": {"pool_size": 7, "checked_out": 0},
    }


def test_pool_gauges_refresh_at_scrape_for_given_engines() -> None:
    text = metrics.metrics_text(pool_engines=engines(pool_size=3))
    assert value(text, "connection_pool_size", pool="target") == 3


def test_no_created_samples() -> None:
    metrics.record_sync(result())
    assert "_created" not in metrics.metrics_text()


def _child_sync(directory: str, table: str, rows: int, pool_size: int) -> None:
    metrics.setup_multiprocess(directory)
    metrics.record_sync(result(table=table, rows_loaded=rows))
    metrics.update_pool_gauges(engines(pool_size=pool_size))


def _run_children(directory: str, count: int) -> None:
    # spawn, not fork: forking a pytest process that runs other threads (coverage,
    # connectorx, lock heartbeats) can deadlock the child on a lock held at fork time
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_child_sync, args=(directory, "orders", 10 * (i + 1), 5))
        for i in range(count)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
        assert child.exitcode == 0


def test_multiprocess_values_are_summed_over_processes(tmp_path: Path) -> None:
    directory = metrics.setup_multiprocess(tmp_path / "prom", wipe=True)
    _run_children(directory, 3)
    text = metrics.metrics_text()
    labels = {"table": "orders", "mode": "incremental"}
    assert value(text, "records_processed_total", **labels) == 10 + 20 + 30
    assert value(text, "sync_duration_seconds_count", **labels) == 3
    assert value(text, "syncs_total", status="synced", **labels) == 3
    assert value(text, "table_sync_success_rate", table="orders") == 1.0


def test_multiprocess_pool_gauges_sum_live_processes_only(tmp_path: Path) -> None:
    directory = metrics.setup_multiprocess(tmp_path / "prom", wipe=True)
    _run_children(directory, 2)
    # The children have exited without saying so: livesum still counts their files until
    # mark_process_dead removes them (Celery's worker_process_shutdown does that).
    pids = sorted({p.stem.rsplit("_", 1)[-1] for p in Path(directory).glob("gauge_livesum_*.db")})
    assert metrics.pool_totals()["source"]["pool_size"] == 10
    metrics.mark_process_dead(int(pids[0]))
    assert metrics.pool_totals()["source"]["pool_size"] == 5


def test_setup_multiprocess_wipes_stale_files(tmp_path: Path) -> None:
    directory = metrics.setup_multiprocess(tmp_path / "prom", wipe=True)
    _run_children(directory, 1)
    metrics.setup_multiprocess(directory, wipe=True)
    assert (
        value(metrics.metrics_text(), "records_processed_total", table="orders", mode="incremental")
        is None
    )


def test_setup_multiprocess_exports_directory_for_children(tmp_path: Path) -> None:
    directory = metrics.setup_multiprocess(tmp_path / "prom")
    assert os.environ[metrics.MULTIPROC_ENV] == directory
    assert metrics.multiprocess_dir() == directory


def test_setup_multiprocess_without_directory_makes_a_private_one() -> None:
    directory = metrics.setup_multiprocess()
    try:
        assert Path(directory).is_dir()
        assert Path(directory).name.startswith("dbsync-metrics-")
    finally:
        metrics.disable_multiprocess()
        Path(directory).rmdir()


def test_instrument_adds_listener_and_reporters() -> None:
    from dbsync.config.settings import load_settings
    from dbsync.config.tables import TablesFile
    from dbsync.sync.runtime import Runtime

    runtime = Runtime(
        settings=load_settings(source_db_name="s", target_db_name="t"),
        engines=engines(pool_size=4),
        tables=TablesFile(tables=[], problems=[]),
    )
    handle = metrics.instrument(runtime, pool_log_every_s=3600, gauge_every_s=3600)
    try:
        runtime.notify(result(rows_loaded=9))
    finally:
        handle.stop()
    text = metrics.metrics_text()
    assert value(text, "records_processed_total", table="orders", mode="incremental") == 9
    assert value(text, "connection_pool_size", pool="source") == 4
    assert all(not thread.alive for thread in handle.threads)


def test_each_chunk_loaded_counts_once_with_its_rows() -> None:
    metrics.record_chunk("big", 250_000)
    metrics.record_chunk("big", 1_000)
    text = metrics.metrics_text()
    assert value(text, "chunks_copied_total", table="big") == 2
    assert value(text, "chunk_rows_copied_total", table="big") == 251_000


def test_queue_waits_are_exported_per_table() -> None:
    text = metrics.metrics_text(queue_waits=lambda: {"orders": 42.0, "items": 3.5})
    assert value(text, "table_sync_queued_seconds", table="orders") == 42.0
    assert value(text, "table_sync_queued_seconds", table="items") == 3.5


def test_an_unreadable_queue_exports_no_waits_and_the_scrape_answers() -> None:
    def broken() -> dict[str, float]:
        raise ConnectionError("redis down")

    text = metrics.metrics_text(queue_waits=broken)
    assert "table_sync_queued_seconds" in text
    assert not [key for key in samples(text) if key[0] == "table_sync_queued_seconds"]


def test_each_configured_table_exports_its_interval(tmp_path: Path) -> None:
    from dbsync.ops.health import Staleness

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'status.db'}")
    staleness = Staleness(300, {"orders": 60, "items": None})
    text = metrics.metrics_text(
        status_engine=engine, status_database="main", staleness=staleness
    )
    assert value(text, "table_interval_seconds", table="orders") == 60
    assert value(text, "table_interval_seconds", table="items") == 300


def test_repaired_rows_are_counted_by_change() -> None:
    metrics.record_sync(
        result(mode="diff", repaired_inserted=2, repaired_updated=5, repaired_deleted=1)
    )
    text = metrics.metrics_text()
    counted = {
        change: value(text, "rows_repaired_total", table="orders", mode="diff", change=change)
        for change in ("inserted", "updated", "deleted")
    }
    assert counted == {"inserted": 2, "updated": 5, "deleted": 1}


def test_last_rows_repaired_gauge_comes_from_the_status_table(tmp_path: Path) -> None:
    from dbsync.backends.status import record_result

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'status.db'}")
    record_result(engine, "main", result(rows_repaired=9))
    registry = metrics.collect_registry(status_engine=engine, status_database="main")
    text = metrics.render(registry).decode()
    engine.dispose()
    assert value(text, "table_last_rows_repaired", table="orders") == 9
