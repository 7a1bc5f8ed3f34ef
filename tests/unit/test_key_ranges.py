"""Chunk ranges with inlined literals: consecutive ranges partition the key space exactly.

The SQL is evaluated by SQLite (stdlib; it accepts MySQL's backtick quoting and the literals
used here) over a grid of keys, including keys equal to the boundaries.
"""

from __future__ import annotations

import itertools
import sqlite3
from datetime import datetime
from decimal import Decimal

from dbsync.backends.mysql.key_ranges import decode_key, encode_key, literal, range_sql
from dbsync.copy.chunked import indexes_fit
from dbsync.model import Progress
from dbsync.ops.status_view import copy_records, render_copies


def _selected(key: list[str], lower, upper, rows: list[tuple]) -> list[tuple]:
    db = sqlite3.connect(":memory:")
    columns = ", ".join(f"`{k}`" for k in key)
    db.execute(f"CREATE TABLE t ({columns})")
    db.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in key)})", rows)
    where = range_sql(key, lower, upper)
    return db.execute(f"SELECT {columns} FROM t WHERE {where} ORDER BY {columns}").fetchall()


def test_chunks_between_split_points_hold_every_row_once() -> None:
    rows = list(itertools.product(range(4), ["a", "b", "it's", "z\\"]))
    splits = [(1, "b"), (1, "it's"), (3, "a")]
    edges = [None, *splits, None]
    chunks = [_selected(["x", "y"], lo, hi, rows) for lo, hi in zip(edges, edges[1:], strict=False)]
    assert sorted(r for chunk in chunks for r in chunk) == sorted(rows)
    assert chunks[1] == [(1, "b")]  # a key equal to a split point starts the next chunk
    assert all(chunk for chunk in chunks)


def test_literals_quote_text_and_keep_numbers_exact() -> None:
    assert literal("it's \\ ok") == "'it''s \\\\ ok'"
    assert literal(12345678901234567890) == "12345678901234567890"
    assert literal(Decimal("1.50")) == "1.50"
    assert literal(b"\x00\xff") == "X'00ff'"
    assert literal(datetime(2026, 1, 2, 3, 4, 5, 6)) == "'2026-01-02 03:04:05.000006'"
    assert literal(None) == "NULL"


def test_keys_survive_the_progress_table_round_trip() -> None:
    key = (7, "x", b"\x01", Decimal("2.5"), datetime(2026, 1, 2, 3, 4, 5))
    decoded = decode_key(encode_key(key))
    assert decoded is not None
    assert [literal(v) for v in decoded] == [literal(v) for v in key]
    assert encode_key(None) is None and decode_key(None) is None


def test_a_running_copy_shows_chunks_rows_elapsed_and_an_estimate() -> None:
    progress = Progress(8, 2, 3, 500_000, ("h:1", "h:2"), 1, None)
    line = render_copies([("big", datetime(2026, 1, 1), 10.0, progress)])
    assert line == (
        "copying big: 2/8 chunks done (3 running), 500,000 rows, elapsed 10.0s, "
        "about 30.0s left, workers: h:1, h:2"
    )


def test_a_copy_still_being_planned_shows_its_estimated_chunk_count() -> None:
    progress = Progress(3, 1, 2, 250_000, ("h:1",), 1, None, planned=False, expected=8)
    line = render_copies([("big", datetime(2026, 1, 1), 5.0, progress)])
    assert line.startswith("copying big: 1/~8 chunks done (2 running), 250,000 rows")
    assert "about 35.0s left" in line
    assert not progress.complete  # every recorded chunk done is not the end while planning


def test_status_json_records_a_copy_with_its_counts_and_estimate() -> None:
    progress = Progress(8, 2, 3, 500_000, ("h:1",), 1, None)
    records = copy_records([("big", datetime(2026, 1, 1), 10.0, progress)])
    assert records["big"] == {
        "started_at": "2026-01-01T00:00:00",
        "chunks_done": 2,
        "chunks_running": 3,
        "chunks_total": 8,
        "chunks_total_exact": True,
        "rows": 500_000,
        "elapsed_s": 10.0,
        "seconds_left": 30.0,
        "workers": ["h:1"],
    }


def test_secondary_indexes_load_along_only_when_they_fit_half_the_index_cache() -> None:
    mb = 1 << 20
    assert indexes_fit(1, 1, 2_000_000, 40 * mb, 128 * mb)  # the benchmark's 2M rows
    assert not indexes_fit(3, 3, 10_000_000, 700 * mb, 128 * mb)  # 10M rows, three indexes
    assert not indexes_fit(1, 1, 2_000_000, 0, 128 * mb)  # the source keeps no estimate
    assert not indexes_fit(1, 1, 2_000_000, 40 * mb, 0)  # cache size unknown
    # an index only the target has (on the cursor column) is estimated from the rows
    assert indexes_fit(1, 0, 1_000_000, 0, 128 * mb)
    assert not indexes_fit(1, 0, 4_000_000, 0, 128 * mb)
