"""The safe point's arithmetic: cursor values as text, shifted by the lag, rounded down."""

from __future__ import annotations

from datetime import datetime

import pytest

from dbsync.model import Column
from dbsync.sync.cursor_guard import cursor_text, shifted


def cursor(data_type: str, column_type: str | None = None) -> Column:
    return Column("m", column_type or data_type, data_type, nullable=False)


@pytest.mark.parametrize(
    ("data_type", "text"),
    [
        ("timestamp", "2026-12-04 19:05:07"),
        ("datetime", "2026-12-04 19:05:07"),
        ("date", "2026-12-04"),
    ],
)
def test_a_moment_becomes_a_cursor_value_rounded_down(data_type: str, text: str) -> None:
    moment = datetime(2026, 12, 4, 19, 5, 7, 999_999)
    assert cursor_text(moment, cursor(data_type)) == text


def test_the_lag_moves_the_start_back() -> None:
    assert shifted("2026-12-04 19:05:07", 7.5, cursor("datetime")) == "2026-12-04 19:04:59"


def test_a_date_cursor_moves_back_a_day_when_the_lag_crosses_midnight() -> None:
    assert shifted("2026-12-04", 1, cursor("date")) == "2026-12-03"


def test_no_lag_keeps_the_safe_point() -> None:
    assert shifted("2026-12-04 19:05:07", 0, cursor("timestamp")) == "2026-12-04 19:05:07"
