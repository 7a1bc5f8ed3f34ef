"""Flower's task list: a dbsync task's result column is one line with the row counts."""

from __future__ import annotations

from types import SimpleNamespace

from celery.utils.saferepr import saferepr

from dbsync.config.result import SyncResult
from workers.flower_tasks import format_task, summary_line


def _summary_repr() -> str:
    result = SyncResult(
        table="orders", mode="incremental", rows_extracted=125, rows_loaded=120, rows_deleted=3
    )
    result.phases = {"schema": 0.01, "stage": 0.2, "commit": 0.05}
    result.finish("synced")
    result.duration_s = 0.42
    # what a task-succeeded event carries: Celery's saferepr of the return value, 1 KiB max
    return saferepr(result.to_dict(), 1024)


def test_a_sync_summary_becomes_one_line_with_its_row_counts() -> None:
    assert summary_line(_summary_repr()) == (
        "synced incremental: 125 read, 120 loaded, 3 deleted in 0.42s"
    )


def test_format_task_rewrites_the_result_column() -> None:
    task = SimpleNamespace(result=_summary_repr(), exception=None, args="['orders']")
    assert format_task(task).result.startswith("synced incremental: 125 read")
    assert task.args == "['orders']"


def test_a_failed_task_shows_its_error_message() -> None:
    task = SimpleNamespace(result=None, exception="SyncFailed('orders: table missing')")
    assert format_task(task).result == "failed: orders: table missing"


def test_other_results_are_left_as_they_are() -> None:
    task = SimpleNamespace(result="{'chunks': [1, 2]}", exception=None)
    assert format_task(task).result == "{'chunks': [1, 2]}"
