"""Incremental sync (``modifier`` set): what moves, what is re-read, and what is not propagated.

The source table ``t`` has rows 1..100 whose cursor ``m`` is 2024-01-01 00:00:00 + id seconds,
so after the first sync the target's highest cursor value is MAX_M (row 100).
"""

from __future__ import annotations

from dbsync.backends.status import read_status
from dbsync.compare.verify import verify_table
from dbsync.sync.run import sync_table
from tests import helpers

MAX_M = "2024-01-01 00:01:40.000000"
LATER = "2024-06-01 12:00:00.000000"


def _make_table(scratch, **table_options) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, "
        "m DATETIME(6) NULL, KEY m (m))",
        "INSERT INTO t SELECT seq, CONCAT('v', seq), '2024-01-01' + INTERVAL seq SECOND "
        "FROM seq_1_to_100",
    )
    scratch.write_tables([{"table": "t", "primary_key": ["id"], "modifier": "m", **table_options}])


def _same(scratch, table: str = "t") -> bool:
    return helpers.exact_rows(scratch.source, table) == helpers.exact_rows(scratch.target, table)


def test_first_sync_copies_every_row(scratch, runtime_factory) -> None:
    _make_table(scratch)
    runtime = runtime_factory()

    result = sync_table(runtime, "t")

    assert result.status == "synced"
    assert result.rows_extracted == 100
    assert helpers.exact_rows(scratch.target, "t") == helpers.exact_rows(scratch.source, "t")
    assert verify_table(runtime, "t").ok


def test_only_changed_rows_and_the_boundary_row_are_read_again(scratch, runtime_factory) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    # a marker in the target that only a rewrite of (untouched) row 50 would erase
    helpers.execute(scratch.target, "UPDATE t SET v = 'marker' WHERE id = 50")
    helpers.execute(
        scratch.source, f"UPDATE t SET v = 'changed', m = '{LATER}' WHERE id IN (5, 17)"
    )

    result = sync_table(runtime, "t")

    # the two updated rows, plus row 100 whose cursor equals the target's maximum (re-read
    # on purpose so rows that share the last seen value are never lost)
    assert result.rows_extracted == 3
    assert result.rows_loaded == 3
    assert helpers.query(scratch.target, "SELECT id, v FROM t WHERE id IN (5, 17, 50)") == [
        (5, "changed"),
        (17, "changed"),
        (50, "marker"),
    ]


def test_rows_inserted_with_the_current_maximum_cursor_are_picked_up(
    scratch, runtime_factory
) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    # same timestamp as the last row already synced: a strict '>' cursor would lose these
    helpers.execute(
        scratch.source, f"INSERT INTO t VALUES (101, 'tie-1', '{MAX_M}'), (102, 'tie-2', '{MAX_M}')"
    )

    result = sync_table(runtime, "t")

    assert result.rows_extracted == 3  # rows 100, 101 and 102 share the boundary value
    assert helpers.query(scratch.target, "SELECT id, v FROM t WHERE id > 100 ORDER BY id") == [
        (101, "tie-1"),
        (102, "tie-2"),
    ]
    assert verify_table(runtime, "t").ok


def test_late_commit_within_lag_seconds_is_picked_up(scratch, runtime_factory) -> None:
    _make_table(scratch, lag_seconds=60)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    # committed after the sync, but stamped 30 s before the target's highest value
    helpers.execute(
        scratch.source, f"INSERT INTO t VALUES (200, 'late', '{MAX_M}' - INTERVAL 30 SECOND)"
    )

    sync_table(runtime, "t")

    assert helpers.query(scratch.target, "SELECT v FROM t WHERE id = 200") == [("late",)]
    assert verify_table(runtime, "t").ok


def test_late_commit_older_than_lag_seconds_is_missed(scratch, runtime_factory) -> None:
    """Documents the limit of the lag window: an older late row is not seen incrementally."""
    _make_table(scratch, lag_seconds=60)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(
        scratch.source, f"INSERT INTO t VALUES (201, 'too-late', '{MAX_M}' - INTERVAL 90 SECOND)"
    )

    sync_table(runtime, "t")

    assert helpers.query(scratch.target, "SELECT v FROM t WHERE id = 201") == []
    assert not verify_table(runtime, "t").ok
    sync_table(runtime, "t", full_refresh=True)
    assert helpers.query(scratch.target, "SELECT v FROM t WHERE id = 201") == [("too-late",)]


def test_rows_with_null_cursor_are_synced_and_reread_every_run(scratch, runtime_factory) -> None:
    _make_table(scratch)
    helpers.execute(scratch.source, "UPDATE t SET m = NULL WHERE id IN (3, 4, 7)")
    runtime = runtime_factory()

    first = sync_table(runtime, "t")
    helpers.execute(scratch.source, "UPDATE t SET v = 'null-cursor-edit' WHERE id = 4")
    second = sync_table(runtime, "t")

    assert first.rows_extracted == 100
    assert second.rows_extracted == 4  # three NULL-cursor rows and the boundary row
    assert helpers.query(scratch.target, "SELECT id FROM t WHERE m IS NULL ORDER BY id") == [
        (3,),
        (4,),
        (7,),
    ]
    assert helpers.query(scratch.target, "SELECT v FROM t WHERE id = 4") == [("null-cursor-edit",)]
    assert _same(scratch)


def test_composite_primary_key_rows_merge_by_the_whole_key(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE c (a INT NOT NULL, b VARCHAR(5) NOT NULL, v VARCHAR(20) NOT NULL, "
        "m DATETIME NOT NULL, PRIMARY KEY (a, b))",
        "INSERT INTO c VALUES (1, 'x', 'one-x', '2024-01-01 00:00:01'), "
        "(1, 'y', 'one-y', '2024-01-01 00:00:02'), (2, 'x', 'two-x', '2024-01-01 00:00:03')",
    )
    scratch.write_tables([{"table": "c", "primary_key": ["a", "b"], "modifier": "m"}])
    runtime = runtime_factory()
    sync_table(runtime, "c")
    helpers.execute(
        scratch.source,
        "UPDATE c SET v = 'one-y-upd', m = '2024-02-01' WHERE a = 1 AND b = 'y'",
        "INSERT INTO c VALUES (2, 'y', 'two-y', '2024-02-01'), (1, 'z', 'one-z', '2024-02-01')",
    )

    sync_table(runtime, "c")

    assert helpers.query(scratch.target, "SELECT a, b, v FROM c ORDER BY a, b") == [
        (1, "x", "one-x"),
        (1, "y", "one-y-upd"),
        (1, "z", "one-z"),
        (2, "x", "two-x"),
        (2, "y", "two-y"),
    ]
    assert helpers.primary_key(scratch.target, "c") == ["a", "b"]
    assert verify_table(runtime, "c").ok


def test_incremental_sync_with_deletes_ignored_keeps_deleted_rows(
    scratch, runtime_factory
) -> None:
    """``"deletes": "ignore"``: a deleted row leaves no cursor value to read, so it stays."""
    _make_table(scratch, deletes="ignore")
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(scratch.source, "DELETE FROM t WHERE id IN (10, 20)")

    sync_table(runtime, "t")

    assert helpers.count(scratch.target, "t") == 100
    assert helpers.query(scratch.target, "SELECT id FROM t WHERE id IN (10, 20)") == [(10,), (20,)]
    report = verify_table(runtime, "t")
    assert (report.source_rows, report.target_rows, report.ok) == (98, 100, False)


def test_full_refresh_of_an_incremental_table_propagates_deletes(scratch, runtime_factory) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(scratch.source, "DELETE FROM t WHERE id IN (10, 20)")

    result = sync_table(runtime, "t", full_refresh=True)

    assert result.mode == "full_refresh"
    assert helpers.count(scratch.target, "t") == 98
    assert _same(scratch)


def test_a_change_to_the_boundary_row_is_not_hidden_by_the_window_checksum(
    scratch, runtime_factory
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE h (id INT PRIMARY KEY, a VARCHAR(9) NOT NULL, b VARCHAR(9) NOT NULL, "
        "m DATETIME NOT NULL)",
        "INSERT INTO h VALUES (1, 'p', 'q', '2024-01-01 00:00:00'), "
        "(2, 'x#', 'y', '2024-01-01 00:00:05')",
    )
    scratch.write_tables([{"table": "h", "primary_key": "id", "modifier": "m"}])
    runtime = runtime_factory()
    sync_table(runtime, "h")
    # edited within the same second, so the cursor keeps the value the target already has;
    # text moves across the row hash's '#' separator
    helpers.execute(scratch.source, "UPDATE h SET a = 'x', b = '#y' WHERE id = 2")

    sync_table(runtime, "h")

    assert helpers.query(scratch.target, "SELECT a, b FROM h WHERE id = 2") == [("x", "#y")]


def test_the_first_sync_into_a_missing_target_is_labelled_a_full_refresh(
    scratch, runtime_factory
) -> None:
    _make_table(scratch)
    runtime = runtime_factory()

    with helpers.captured_logs() as logs:
        first = sync_table(runtime, "t")
    (recorded,) = read_status(runtime.engines.target, scratch.target)
    helpers.execute(scratch.source, f"UPDATE t SET m = '{LATER}' WHERE id = 5")
    second = sync_table(runtime, "t")

    assert (first.mode, recorded.mode) == ("full_refresh", "full_refresh")
    assert "table t: synced (full_refresh)" in logs.getvalue()
    assert "the target table does not exist: copying it whole" in logs.getvalue()
    assert second.mode == "incremental"


def test_a_sync_into_an_empty_target_table_is_labelled_a_full_refresh(
    scratch, runtime_factory
) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(scratch.target, "DELETE FROM t")

    result = sync_table(runtime, "t")

    assert (result.mode, result.rows_loaded) == ("full_refresh", 100)
    (status,) = read_status(runtime.engines.target, scratch.target)
    assert status.mode == "full_refresh"
