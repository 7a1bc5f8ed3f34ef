"""``dbsync status`` rendering: one aligned row per table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dbsync.model import TableStatus
from dbsync.ops import logs
from dbsync.ops.health import Staleness
from dbsync.ops.status_view import cursor_guard_label, format_age, render_status, status_records

NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def row(
    table: str, status: str = "synced", age_s: float | None = 252, **fields: object
) -> TableStatus:
    success = (NOW - timedelta(seconds=age_s)).replace(tzinfo=None) if age_s is not None else None
    values: dict[str, object] = {
        "table": table,
        "status": status,
        "mode": "incremental",
        "last_started_at": success,
        "last_finished_at": success,
        "last_success_at": success,
        "rows_extracted": 1200,
        "rows_loaded": 1200,
        "duration_s": 3.25,
        "last_error": None,
        "load_id": None,
        "worker": "host:1",
        "consecutive_failures": 0,
    }
    values.update(fields)
    return TableStatus(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (5, "5s"), (252, "4m12s"), (7380, "2h03m"), (3 * 86400 + 4 * 3600, "3d04h")],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


def test_header_and_one_line_per_table() -> None:
    text = render_status([row("orders"), row("countries")], NOW)
    lines = text.splitlines()
    assert lines[0].split() == [
        "TABLE",
        "STATUS",
        "MODE",
        "LAST",
        "SYNC",
        "(UTC)",
        "AGE",
        "ROWS",
        "DELETED",
        "REPAIRED",
        "DURATION",
        "FAILS",
        "CURSOR",
        "LAST",
        "ERROR",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["countries", "orders"]


def test_row_shows_time_age_rows_duration() -> None:
    line = render_status([row("orders")], NOW).splitlines()[1]
    assert line.split() == [
        "orders",
        "synced",
        "incremental",
        "2026-11-27",
        "09:55:48",
        "4m12s",
        "1,200",
        "0",
        "0",
        "3.2s",
        "0",
        "-",
        "-",
    ]


def test_row_shows_rows_deleted() -> None:
    line = render_status([row("orders", rows_deleted=1234)], NOW).splitlines()[1]
    assert line.split()[7] == "1,234"


def test_columns_are_aligned() -> None:
    lines = render_status([row("orders"), row("a_much_longer_table_name")], NOW).splitlines()
    starts = {line.index("incremental") for line in lines[1:]}
    assert len(starts) == 1


def test_failed_table_shows_error_on_one_line_truncated() -> None:
    error = "MySQL error 2003: Can't connect\nto MySQL server " + "x" * 200
    line = render_status(
        [row("orders", "failed", consecutive_failures=3, last_error=error)], NOW, error_width=40
    ).splitlines()[1]
    assert " failed " in line
    assert line.endswith("MySQL error 2003: Can't connect to My...")


def test_error_is_redacted() -> None:
    logs.register_secret("status-secret")
    try:
        text = render_status([row("orders", "failed", last_error="bad status-secret")], NOW)
    finally:
        logs.clear_secrets()
    assert "status-secret" not in text


def test_configured_table_never_synced() -> None:
    lines = render_status([row("orders")], NOW, configured=["orders", "countries"]).splitlines()
    assert lines[1].split()[:2] == ["countries", "never"]


def test_stale_table() -> None:
    staleness = Staleness(default_interval=300)
    line = render_status([row("orders", age_s=4000)], NOW, staleness=staleness).splitlines()[1]
    assert line.split()[1] == "stale"


def test_naive_now_is_taken_as_utc() -> None:
    assert render_status([row("orders")], NOW.replace(tzinfo=None)) == render_status(
        [row("orders")], NOW
    )


def test_nothing_to_show() -> None:
    assert render_status([], NOW) == "no table has been synced yet (and none is configured)"


def test_records_for_json() -> None:
    records = status_records([row("orders")], NOW, configured=["countries"])
    assert [r["table"] for r in records] == ["countries", "orders"]
    assert records[1]["age_seconds"] == 252.0
    assert records[1]["last_success_at"] == "2026-11-27T09:55:48Z"
    assert records[0]["status"] == "never"


def test_row_shows_the_rows_the_last_sync_repaired() -> None:
    line = render_status([row("orders", rows_repaired=1234)], NOW).splitlines()[1]
    assert line.split()[8] == "1,234"


def test_json_record_splits_the_repaired_rows() -> None:
    fields = {"rows_repaired": 6, "repaired_inserted": 1, "repaired_updated": 2}
    (record,) = status_records([row("orders", repaired_deleted=3, **fields)], NOW)
    assert (record["rows_repaired"], record["repaired"]) == (
        6,
        {"inserted": 1, "updated": 2, "deleted": 3},
    )


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({}, "-"),
        ({"safe_point": "2026-11-27 09:55:40"}, "safe"),
        ({"cursor_fallback": True}, "fallback"),
        ({"safe_point": "2026-11-27 09:55:40", "future_cursor_rows": 2}, "safe, 2 ahead"),
    ],
)
def test_cursor_column_says_how_reads_are_guarded(fields: dict, label: str) -> None:
    assert cursor_guard_label(row("orders", **fields)) == label


def test_json_record_says_which_tables_run_on_the_fallback() -> None:
    (record,) = status_records([row("orders", cursor_fallback=True)], NOW)
    assert (record["cursor_fallback"], record["safe_point"]) == (True, None)
