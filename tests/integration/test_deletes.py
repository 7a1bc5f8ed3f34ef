"""Delete propagation in incremental syncs, on the real MariaDB (dbsync.compare.deletes,
dbsync.compare.keydiff).

The source table ``t`` has rows 1..N whose cursor ``m`` is 2024-01-01 + id seconds.
"""

from __future__ import annotations

import threading
import time

import pytest

from dbsync.backends.status import read_status
from dbsync.compare import keydiff
from dbsync.compare.verify import verify_table
from dbsync.config.errors import TooManyDeletes
from dbsync.sync.run import run_sync, sync_table
from tests import helpers

LATER = "2030-01-01 00:00:00.000000"


def _make_table(scratch, rows: int = 2000, **options) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, "
        "m DATETIME(6) NULL, KEY m (m))",
        f"INSERT INTO t SELECT seq, CONCAT('v', seq), '2024-01-01' + INTERVAL seq SECOND "
        f"FROM seq_1_to_{rows}",
    )
    scratch.write_tables([{"table": "t", "primary_key": "id", "modifier": "m", **options}])


def _same(scratch, table: str = "t") -> bool:
    return helpers.exact_rows(scratch.source, table) == helpers.exact_rows(scratch.target, table)


def _synced(scratch, runtime_factory, rows: int = 2000, **options):
    _make_table(scratch, rows, **options)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    return runtime


def test_spread_deletes_reach_the_target(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id % 7 = 3")

    result = sync_table(runtime, "t")

    assert (result.rows_deleted, _same(scratch)) == (286, True)


def test_a_contiguous_range_of_deletes_reaches_the_target(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id BETWEEN 500 AND 1299")

    result = sync_table(runtime, "t")

    assert (result.rows_deleted, _same(scratch)) == (800, True)


def test_deleting_the_rows_with_the_highest_cursor_value(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "UPDATE t SET m = '2025-01-01' WHERE id IN (7, 8)")
    sync_table(runtime, "t")
    helpers.execute(scratch.source, "DELETE FROM t WHERE id IN (7, 8)")

    result = sync_table(runtime, "t")
    helpers.execute(scratch.source, "UPDATE t SET v = 'after' WHERE id = 9")
    helpers.execute(scratch.source, f"UPDATE t SET m = '{LATER}' WHERE id = 9")
    sync_table(runtime, "t")

    assert (result.rows_deleted, _same(scratch)) == (2, True)


def test_a_deleted_and_reinserted_key_ends_present_with_its_new_values(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(
        scratch.source,
        "DELETE FROM t WHERE id IN (40, 41)",
        f"INSERT INTO t VALUES (40, 'reborn', '{LATER}')",
    )

    result = sync_table(runtime, "t")

    assert helpers.query(scratch.target, "SELECT id, v FROM t WHERE id IN (40, 41)") == [
        (40, "reborn")
    ]
    assert (result.rows_deleted, _same(scratch)) == (1, True)


def test_ignore_keeps_rows_deleted_in_the_source(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, deletes="ignore")
    helpers.execute(scratch.source, "DELETE FROM t WHERE id IN (10, 20)")

    result = sync_table(runtime, "t")

    assert (result.rows_deleted, helpers.count(scratch.target, "t")) == (0, 2000)


def test_nothing_deleted_when_the_keys_match(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, f"UPDATE t SET v = 'x', m = '{LATER}' WHERE id = 5")

    result = sync_table(runtime, "t")

    assert (result.rows_deleted, result.deletes_checked_at is not None) == (0, True)


def test_safety_valve_refuses_then_allows_with_one(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id > 600")

    refused = run_sync(runtime, "t")
    kept = helpers.count(scratch.target, "t")
    scratch.write_tables(
        [{"table": "t", "primary_key": "id", "modifier": "m", "max_delete_fraction": 1.0}]
    )
    allowed = sync_table(runtime_factory(), "t")

    assert refused.status == "failed"
    assert "70.0%" in refused.error and "max_delete_fraction 0.5" in refused.error
    assert (kept, allowed.rows_deleted, _same(scratch)) == (2000, 1400, True)


def test_safety_valve_counts_confirmed_deletes_not_the_row_count_gap(
    scratch, runtime_factory
) -> None:
    """Inserts in the source hide deletes from the row counts; the valve still sees them."""
    runtime = _synced(scratch, runtime_factory, max_delete_fraction=0.2)
    helpers.execute(
        scratch.source,
        "DELETE FROM t WHERE id <= 600",
        "INSERT INTO t SELECT seq, 'new', '2023-01-01' FROM seq_3001_to_3600",
    )

    with pytest.raises(TooManyDeletes, match="600 of the target's 2000 rows"):
        sync_table(runtime, "t")


def test_failed_valve_leaves_other_tables_syncing(scratch, runtime_factory) -> None:
    _make_table(scratch)
    helpers.execute(scratch.source, "CREATE TABLE u (id INT PRIMARY KEY, v INT)")
    helpers.execute(scratch.source, "INSERT INTO u VALUES (1, 1)")
    scratch.write_tables(
        [
            {"table": "t", "primary_key": "id", "modifier": "m"},
            {"table": "u", "primary_key": "id"},
        ]
    )
    helpers.run_dbsync(scratch.env(), "sync")
    helpers.execute(scratch.source, "DELETE FROM t", "INSERT INTO u VALUES (2, 2)")

    run = helpers.run_dbsync(scratch.env(), "sync")

    assert run.returncode == 1
    assert "max_delete_fraction" in run.stdout
    assert (helpers.count(scratch.target, "t"), helpers.count(scratch.target, "u")) == (2000, 2)


def test_delete_check_interval_skips_the_comparison_until_due(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, delete_check_interval=3600)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id = 3")

    result = sync_table(runtime, "t")

    assert (result.deletes_checked_at, helpers.count(scratch.target, "t")) == (None, 2000)


def test_delete_check_interval_is_due_after_it_elapsed(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, delete_check_interval=1)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id = 3")
    time.sleep(1.1)

    result = sync_table(runtime, "t")

    assert (result.rows_deleted, _same(scratch)) == (1, True)


def test_rows_deleted_reach_status_table(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id IN (1, 2, 3)")

    sync_table(runtime, "t")
    (status,) = read_status(runtime.engines.target, scratch.target)

    assert (status.rows_deleted, status.last_delete_check_at is not None) == (3, True)


def test_status_table_of_an_older_release_gains_the_delete_columns(
    scratch, runtime_factory
) -> None:
    helpers.execute(
        scratch.target,
        "CREATE TABLE _dbsync_status (table_name VARCHAR(64) NOT NULL PRIMARY KEY, "
        "status VARCHAR(16) NOT NULL, mode VARCHAR(16) NOT NULL, "
        "last_started_at DATETIME(6) NULL, last_finished_at DATETIME(6) NULL, "
        "last_success_at DATETIME(6) NULL, rows_extracted BIGINT NOT NULL DEFAULT 0, "
        "rows_loaded BIGINT NOT NULL DEFAULT 0, duration_s DOUBLE NOT NULL DEFAULT 0, "
        "last_error TEXT NULL, load_id VARCHAR(64) NULL, worker VARCHAR(255) NULL, "
        "consecutive_failures INT NOT NULL DEFAULT 0)",
    )
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id = 1")

    sync_table(runtime, "t")

    assert read_status(runtime.engines.target, scratch.target)[0].rows_deleted == 1


def test_verify_tells_rows_only_in_the_target_from_rows_that_differ(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, deletes="ignore")
    helpers.execute(
        scratch.source,
        "DELETE FROM t WHERE id IN (10, 11, 12)",
        "UPDATE t SET v = 'silent' WHERE id = 100",
    )

    report = verify_table(runtime, "t")

    assert (report.only_in_target, report.only_in_source, report.differing) == (3, 0, 1)


KEY_CASES = {
    "composite": (
        "a INT NOT NULL, b VARCHAR(10) NOT NULL",
        ["a", "b"],
        "seq % 50, CONCAT('b', seq)",
    ),
    "varchar_ci": (
        "k VARCHAR(40) COLLATE utf8mb4_general_ci NOT NULL",
        ["k"],
        "CONCAT('Key-', seq)",
    ),
    "four_byte": (
        "k VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
        ["k"],
        "CONCAT(_utf8mb4 0xF09F9880, seq, _utf8mb4 0xF0A0AE9F)",
    ),
    "datetime6": (
        "k DATETIME(6) NOT NULL",
        ["k"],
        "'2024-01-01' + INTERVAL seq * 1001 MICROSECOND",
    ),
    "decimal": ("k DECIMAL(30, 10) NOT NULL", ["k"], "0.1000000000 + seq * 0.0000000001"),
    # integer keys are narrowed by key ranges: negative, sparse, and beyond a signed BIGINT
    "int_negative": ("k INT NOT NULL", ["k"], "CAST(seq AS SIGNED) - 300"),
    "bigint_sparse": ("k BIGINT NOT NULL", ["k"], "seq * seq * 1000003"),
    "bigint_unsigned_top": (
        "k BIGINT UNSIGNED NOT NULL",
        ["k"],
        "18446744073709551615 - seq * 7",
    ),
    "smallint_unsigned_top": ("k SMALLINT UNSIGNED NOT NULL", ["k"], "seq + 64935"),
    "varbinary": ("k VARBINARY(16) NOT NULL", ["k"], "UNHEX(LPAD(HEX(seq), 8, '0'))"),
    "utf16_latin1": (
        "a VARCHAR(10) CHARACTER SET utf16 NOT NULL, b VARCHAR(10) CHARACTER SET latin1 NOT NULL",
        ["a", "b"],
        "CONCAT('a', seq % 7), CONCAT('b', seq)",
    ),
}


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_deletes_propagate_for_every_key_kind(scratch, runtime_factory, case: str) -> None:
    columns, key, values = KEY_CASES[case]
    names = ", ".join(key)
    helpers.execute(
        scratch.source,
        f"CREATE TABLE k ({columns}, v INT NOT NULL, m DATETIME(6) NOT NULL, "
        f"PRIMARY KEY ({names}), KEY m (m))",
        f"INSERT INTO k SELECT {values}, seq, '2024-01-01' FROM seq_1_to_600",
    )
    scratch.write_tables([{"table": "k", "primary_key": key, "modifier": "m"}])
    runtime = runtime_factory()
    sync_table(runtime, "k")
    helpers.execute(scratch.source, "DELETE FROM k WHERE v % 5 = 0")

    result = sync_table(runtime, "k")

    assert (result.rows_deleted, _same(scratch, "k")) == (120, True)


def _ci_table(scratch) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE c (k VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, "
        "v INT NOT NULL, m DATETIME(6) NOT NULL, KEY m (m))",
        "INSERT INTO c VALUES ('Key-1', 1, '2024-01-01'), ('Key-2', 2, '2024-01-01')",
    )
    scratch.write_tables([{"table": "c", "primary_key": "k", "modifier": "m"}])


def test_a_key_whose_letter_case_changes_by_update_arrives_exactly(
    scratch, runtime_factory
) -> None:
    _ci_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "c")
    helpers.execute(scratch.source, f"UPDATE c SET k = 'KEY-1', m = '{LATER}' WHERE k = 'Key-1'")

    result = sync_table(runtime, "c")

    assert helpers.query(scratch.target, "SELECT k FROM c ORDER BY BINARY k") == [
        ("KEY-1",),
        ("Key-2",),
    ]
    assert (result.rows_deleted, _same(scratch, "c")) == (0, True)


def test_a_key_whose_letter_case_changes_by_delete_and_insert_arrives_exactly(
    scratch, runtime_factory
) -> None:
    _ci_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "c")
    helpers.execute(
        scratch.source,
        "DELETE FROM c WHERE k = 'Key-2'",
        f"INSERT INTO c VALUES ('kEY-2', 20, '{LATER}')",
    )

    result = sync_table(runtime, "c")

    assert (result.rows_deleted, _same(scratch, "c")) == (0, True)


def test_a_differently_spelled_key_is_never_deleted(scratch, runtime_factory) -> None:
    """Keys equal under the collation are present, whatever their exact bytes."""
    _ci_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "c")
    helpers.execute(scratch.target, "UPDATE c SET k = 'KEY-2' WHERE k = 'Key-2'")

    result = sync_table(runtime, "c")

    assert (result.rows_deleted, helpers.count(scratch.target, "c")) == (0, 2)


def test_a_key_reinserted_after_the_comparison_is_not_deleted(
    scratch, runtime_factory, monkeypatch
) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "DELETE FROM t WHERE id IN (70, 71)")
    compare = keydiff.compare

    def compare_then_reinsert(*args, **kwargs):
        diff = compare(*args, **kwargs)
        helpers.execute(scratch.source, f"INSERT INTO t VALUES (70, 'back', '{LATER}')")
        return diff

    monkeypatch.setattr(keydiff, "compare", compare_then_reinsert)
    result = sync_table(runtime, "t")
    monkeypatch.undo()
    sync_table(runtime, "t")

    assert result.rows_deleted == 1
    assert helpers.query(scratch.target, "SELECT id, v FROM t WHERE id IN (70, 71)") == [
        (70, "back")
    ]
    assert _same(scratch)


def _writer(database: str, stop: threading.Event, counts: dict[str, int]) -> None:
    """Insert new rows and delete old ones until told to stop."""
    conn = helpers.connect(database)
    next_id = 100_000
    victim = 1
    with conn.cursor() as cur:
        while not stop.is_set():
            cur.execute("INSERT INTO t VALUES (%s, 'live', NOW(6))", (next_id,))
            cur.execute("DELETE FROM t WHERE id = %s", (victim,))
            next_id += 1
            victim += 3
            counts["writes"] += 2
    conn.close()


def test_concurrent_writers_cause_no_false_delete(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, rows=20_000)
    stop, counts = threading.Event(), {"writes": 0}
    writer = threading.Thread(target=_writer, args=(scratch.source, stop, counts))
    writer.start()
    try:
        for _ in range(3):
            sync_table(runtime, "t")
            # no false delete: every source row older than the writer is in the target
            old = helpers.query(scratch.source, "SELECT id FROM t WHERE id < 100000")
            kept = helpers.query(scratch.target, "SELECT id FROM t WHERE id < 100000")
            assert set(old) <= set(kept)
    finally:
        stop.set()
        writer.join()
    sync_table(runtime, "t")

    assert counts["writes"] > 0
    assert _same(scratch)
