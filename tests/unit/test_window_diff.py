"""When a window is compared bucket by bucket and when it is simply read whole."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from dbsync.model import TableSchema, Window, WindowRows
from dbsync.sync import window_diff

SCHEMA = TableSchema(name="t", columns=(), primary_key=("id",))


class CountingDialect:
    """Window counts as given; records whether a bucketed comparison was set up."""

    def __init__(self, counts: tuple[int, int]) -> None:
        self.counts = counts
        self.bucketed = False

    def window_rows(self, *_args: Any) -> WindowRows:
        return WindowRows(sets=(None, None), counts=self.counts)  # type: ignore[arg-type]

    def window_sides(self, *_args: Any) -> None:
        self.bucketed = True


def _compare(counts: tuple[int, int]) -> tuple[window_diff.Verdict, CountingDialect]:
    dialect = CountingDialect(counts)
    runtime = SimpleNamespace(
        dialect=dialect,
        engines=SimpleNamespace(source=None, target=None),
        settings=SimpleNamespace(fetch_limit=1_000),
    )
    window = Window("m", "2024-01-01 00:00:00")
    verdict = window_diff.compare(runtime, SCHEMA, SCHEMA, window, ("id",))  # type: ignore[arg-type]
    return verdict, dialect


def test_a_window_whose_counts_show_most_rows_differ_is_read_whole_without_folds() -> None:
    verdict, dialect = _compare((2_000, 900))
    whole = (verdict.unchanged, verdict.only, verdict.counted)
    assert whole == (False, None, 2_000) and not dialect.bucketed


def test_a_large_window_with_close_counts_is_compared_by_buckets() -> None:
    _verdict, dialect = _compare((100_000, 99_990))
    assert dialect.bucketed
