"""Reconcile and diff syncs on the real MariaDB (dbsync.reconcile, dbsync.rowdiff).

The source table ``t`` has rows 1..N: ``v`` a text, ``d`` a DECIMAL(5,2), ``m`` a cursor
(2024-01-01 + id seconds).
"""

from __future__ import annotations

import threading
import time

import pytest

from dbsync.backends.status import read_status
from dbsync.compare import reconcile
from dbsync.config.errors import TooManyDeletes
from dbsync.sync.run import run_sync, sync_table
from tests import helpers


def _make_table(scratch, rows: int = 2000, incremental: bool = True, **options) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, "
        "d DECIMAL(5,2) NULL, m DATETIME(6) NULL, KEY m (m))",
        f"INSERT INTO t SELECT seq, CONCAT('v', seq), (seq % 900) + 0.37, "
        f"'2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}",
    )
    entry = {"table": "t", "primary_key": "id", **options}
    if incremental:
        entry["modifier"] = "m"
    scratch.write_tables([entry])


def _same(scratch, table: str = "t") -> bool:
    return helpers.exact_rows(scratch.source, table) == helpers.exact_rows(scratch.target, table)


def _synced(scratch, runtime_factory, rows: int = 2000, incremental: bool = True, **options):
    _make_table(scratch, rows, incremental, **options)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    return runtime


def _first_synced(scratch, runtime_factory, table: str, key, incremental: bool):
    """``table`` listed with ``key`` (and modifier ``m`` when ``incremental``), synced once."""
    entry = {"table": table, "primary_key": key}
    scratch.write_tables([{**entry, "modifier": "m"} if incremental else entry])
    runtime = runtime_factory()
    sync_table(runtime, table)
    return runtime


def _drift(scratch) -> None:
    """Rows deleted, changed and added in the target by hand."""
    helpers.execute(
        scratch.target,
        "DELETE FROM t WHERE id IN (5, 500, 1500)",
        "UPDATE t SET v = 'by hand' WHERE id IN (7, 8)",
        "INSERT INTO t VALUES (9001, 'extra', 1.00, '2024-01-01'), (9002, 'extra', NULL, NULL)",
    )


def _repaired(result) -> tuple[int, int, int, int]:
    return (
        result.rows_repaired,
        result.repaired_inserted,
        result.repaired_updated,
        result.repaired_deleted,
    )


# --- reconcile of an incremental table ---------------------------------------------------


def test_reconcile_repairs_rows_deleted_changed_and_added_in_the_target(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory)
    _drift(scratch)

    result = sync_table(runtime, "t", reconcile=True)

    assert (_repaired(result), result.rows_deleted, _same(scratch)) == ((7, 3, 2, 2), 2, True)


def test_a_plain_sync_leaves_drift_until_the_reconcile_interval_has_passed(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory)
    _drift(scratch)

    result = sync_table(runtime, "t")

    assert (result.rows_repaired, _same(scratch)) == (0, False)


def test_reconcile_interval_zero_repairs_drift_on_every_sync(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, reconcile_interval=0)
    _drift(scratch)

    result = sync_table(runtime, "t")

    assert (result.rows_repaired, _same(scratch)) == (7, True)


def test_a_reconcile_that_repaired_rows_logs_a_warning_with_the_counts(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory)
    _drift(scratch)

    with helpers.captured_logs() as logs:
        sync_table(runtime, "t", reconcile=True)

    assert "WARNING - RECONCILE - table t: 7 rows repaired (3 inserted, 2 updated, 2 deleted" in (
        logs.getvalue()
    )


def test_a_table_that_keeps_the_sources_deletes_keeps_its_extra_rows_through_a_reconcile(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, deletes="ignore")
    helpers.execute(scratch.source, "DELETE FROM t WHERE id <= 10")

    result = sync_table(runtime, "t", reconcile=True)

    assert (result.rows_deleted, helpers.count(scratch.target, "t")) == (0, 2000)


def test_updates_that_bypass_the_cursor_are_repaired_by_reconcile(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.source, "UPDATE t SET v = 'backfill', m = m WHERE id % 100 = 1")
    sync_table(runtime, "t")

    result = sync_table(runtime, "t", reconcile=True)

    assert (result.repaired_updated, _same(scratch)) == (20, True)


def test_values_rounded_by_a_hand_made_type_narrowing_are_repaired(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory)
    helpers.execute(scratch.target, "ALTER TABLE t MODIFY d DECIMAL(4,1) NULL")

    result = sync_table(runtime, "t", reconcile=True)

    # the merge re-reads the row at the highest cursor value; the reconcile the 1,999 others
    assert (result.repaired_updated, _same(scratch)) == (1999, True)


def test_the_status_table_records_the_repair_and_when_it_ran(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory)
    _drift(scratch)
    sync_table(runtime, "t", reconcile=True)

    (row,) = read_status(runtime.engines.target, scratch.target)

    assert (row.rows_repaired, row.repaired_inserted, row.last_reconcile_at is not None) == (
        7,
        3,
        True,
    )


@pytest.mark.parametrize("incremental", [True, False], ids=["reconcile", "diff"])
def test_concurrent_source_writes_during_a_reconcile_never_leave_a_wrong_row(
    scratch, runtime_factory, incremental
) -> None:
    runtime = _synced(scratch, runtime_factory, rows=20_000, incremental=incremental)
    helpers.execute(scratch.target, "UPDATE t SET v = 'drift' WHERE id % 50 = 0")
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            helpers.execute(
                scratch.source,
                f"UPDATE t SET v = 'w{n}', m = NOW(6) WHERE id % 97 = {n % 97}",
                f"DELETE FROM t WHERE id = {n * 13 % 20_000}",
                f"INSERT IGNORE INTO t VALUES ({30_000 + n}, 'new', 1.00, NOW(6))",
            )

    writer = threading.Thread(target=write)
    writer.start()
    try:
        sync_table(runtime, "t", reconcile=True)
    finally:
        stop.set()
        writer.join()
    sync_table(runtime, "t")

    assert _same(scratch)


# --- tables without modifier: synced by their differences ---------------------------------


def test_a_table_without_modifier_syncs_only_its_differences(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)
    helpers.execute(
        scratch.source,
        "UPDATE t SET v = 'changed' WHERE id % 400 = 1",
        "DELETE FROM t WHERE id % 400 = 2",
        "INSERT INTO t VALUES (5001, 'new', 2.00, NULL), (5002, 'new', NULL, NULL)",
    )

    result = sync_table(runtime, "t")

    assert (result.mode, _repaired(result), _same(scratch)) == ("diff", (12, 2, 5, 5), True)
    assert (result.rows_extracted, result.rows_loaded, result.rows_deleted) == (7, 7, 5)


def test_a_table_without_modifier_that_did_not_change_is_left_alone(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)

    result = sync_table(runtime, "t")

    assert (result.mode, result.rows_repaired, result.rows_loaded) == ("diff", 0, 0)


def _checksums_run() -> int:
    """CHECKSUM TABLE statements the server has run (both sides share it in these tests)."""
    return int(helpers.query(None, "SHOW GLOBAL STATUS LIKE 'Com_checksum'")[0][1])


def _sync_counting_checksums(runtime) -> tuple[int, int]:
    """One sync: (rows it repaired, CHECKSUM TABLE statements it ran)."""
    before = _checksums_run()
    result = sync_table(runtime, "t")
    return result.rows_repaired, _checksums_run() - before


def test_the_source_notes_a_tables_committed_changes_to_the_second(
    scratch, runtime_factory
) -> None:
    helpers.execute(scratch.source, "CREATE TABLE n (id INT PRIMARY KEY)")
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory()
    dialect = runtime.dialect

    def noted(seconds: float = 60) -> bool | None:
        return dialect.written_within(runtime.engines.source, dialect.source_schema(), "n", seconds)

    never = noted()
    writer = helpers.connect(scratch.source)
    try:
        writer.begin()
        writer.cursor().execute("INSERT INTO n VALUES (1)")
        uncommitted = noted()
        writer.commit()
    finally:
        writer.close()
    committed = noted()
    time.sleep(2.5)

    assert (never, uncommitted, committed, noted(0)) == (None, None, True, False)


def _quiet_synced(scratch, runtime_factory):
    """A table without modifier, copied, then compared once more after its source's last
    write fell out of the window the next sync asks the source about."""
    runtime = _synced(scratch, runtime_factory, incremental=False)
    time.sleep(reconcile.WRITE_NOTE_MARGIN + 2)
    sync_table(runtime, "t")
    return runtime


def test_a_diff_skips_the_whole_table_checksums_when_the_source_noted_a_change(
    scratch, runtime_factory
) -> None:
    runtime = _quiet_synced(scratch, runtime_factory)
    quiet = _sync_counting_checksums(runtime)
    helpers.execute(scratch.source, "UPDATE t SET v = 'changed' WHERE id % 400 = 1")

    changed = _sync_counting_checksums(runtime)

    assert (quiet, changed, _same(scratch)) == ((0, 2), (5, 0), True)


def test_a_diff_checks_the_whole_table_checksums_first_when_the_source_noted_no_change(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)
    helpers.execute(scratch.source, "UPDATE t SET v = 'changed' WHERE id % 400 = 1")
    time.sleep(reconcile.WRITE_NOTE_MARGIN + 2)
    repairing = sync_table(runtime, "t")  # compares, repairs; the change lies before it

    after_repair = _sync_counting_checksums(runtime)

    assert (repairing.rows_repaired, after_repair) == (5, (0, 2))


def test_drift_in_the_target_alone_is_found_through_the_checksums(
    scratch, runtime_factory
) -> None:
    runtime = _quiet_synced(scratch, runtime_factory)
    _drift(scratch)

    assert (_sync_counting_checksums(runtime), _same(scratch)) == ((7, 2), True)


def test_drift_in_a_table_without_modifier_is_repaired_by_a_plain_sync(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)
    _drift(scratch)

    result = sync_table(runtime, "t")

    assert (result.rows_repaired, _same(scratch)) == (7, True)


def test_many_differences_fall_back_to_the_whole_copy(
    scratch, runtime_factory, monkeypatch
) -> None:
    monkeypatch.setattr(reconcile, "DIFF_LIMIT_MIN", 100)
    runtime = _synced(scratch, runtime_factory, incremental=False)
    helpers.execute(scratch.source, "UPDATE t SET v = 'all' WHERE id % 2 = 0")

    result = sync_table(runtime, "t")

    assert (result.mode, result.rows_loaded, _same(scratch)) == ("full_refresh", 2000, True)


def test_strategy_replace_keeps_the_whole_copy(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False, strategy="replace")

    result = sync_table(runtime, "t")

    assert (result.mode, result.rows_loaded) == ("full_refresh", 2000)


def test_full_refresh_still_forces_the_whole_copy(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)

    result = sync_table(runtime, "t", full_refresh=True)

    assert (result.mode, result.rows_loaded) == ("full_refresh", 2000)


def test_a_schema_change_of_a_diff_table_the_target_cannot_follow_copies_it_whole(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)
    helpers.execute(scratch.source, "ALTER TABLE t MODIFY v VARCHAR(15) NOT NULL")  # narrowed

    result = sync_table(runtime, "t")

    assert (result.mode, _same(scratch)) == ("full_refresh", True)


def test_a_schema_change_of_a_diff_table_followed_in_place_keeps_the_diff(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)
    helpers.execute(
        scratch.source,
        "ALTER TABLE t MODIFY v VARCHAR(40) NOT NULL",  # widened: followed in place
        "UPDATE t SET v = REPEAT('w', 40) WHERE id = 3",
    )

    result = sync_table(runtime, "t")

    assert (result.mode, _same(scratch)) == ("diff", True)


def test_a_keyless_table_is_not_copied_when_its_checksum_did_not_change(
    scratch, runtime_factory
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE k (v VARCHAR(10) NULL)",
        "INSERT INTO k VALUES ('a'), ('a'), (NULL)",
    )
    scratch.write_tables([{"table": "k"}])
    runtime = runtime_factory()
    sync_table(runtime, "k")

    result = sync_table(runtime, "k")

    assert (result.mode, result.rows_loaded) == ("full_refresh", 0)


def test_a_keyless_table_that_changed_is_copied_whole(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE k (v VARCHAR(10) NULL)",
        "INSERT INTO k VALUES ('a'), ('a'), (NULL)",
    )
    scratch.write_tables([{"table": "k"}])
    runtime = runtime_factory()
    sync_table(runtime, "k")
    helpers.execute(scratch.source, "INSERT INTO k VALUES ('b')")

    result = sync_table(runtime, "k")

    assert (result.rows_loaded, _same(scratch, "k")) == (4, True)


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("incremental", [True, False], ids=["reconcile", "diff"])
def test_composite_keys_are_repaired(scratch, runtime_factory, incremental) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE c (a INT NOT NULL, b VARCHAR(8) NOT NULL, v INT NULL, m DATETIME NULL, "
        "PRIMARY KEY (a, b))",
        "INSERT INTO c SELECT seq % 10, CONCAT('k', seq), seq, '2024-01-01' + INTERVAL seq SECOND "
        "FROM seq_1_to_300",
    )
    runtime = _first_synced(scratch, runtime_factory, "c", ["a", "b"], incremental)
    helpers.execute(
        scratch.target,
        "DELETE FROM c WHERE v IN (3, 4)",
        "UPDATE c SET v = -1 WHERE v = 5",
        "INSERT INTO c VALUES (1, 'zz', 0, NULL)",
    )

    result = sync_table(runtime, "c", reconcile=True)

    assert (result.rows_repaired, _same(scratch, "c")) == (4, True)


@pytest.mark.parametrize("incremental", [True, False], ids=["reconcile", "diff"])
def test_case_insensitive_keys_take_the_sources_spelling_and_are_not_deleted(
    scratch, runtime_factory, incremental
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE ci (k VARCHAR(8) COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, "
        "v INT NULL, m DATETIME NULL)",
        "INSERT INTO ci VALUES ('a', 1, '2024-01-01'), ('b', 2, '2024-01-01'), "
        "('c', 3, '2024-01-01')",
    )
    runtime = _first_synced(scratch, runtime_factory, "ci", "k", incremental)
    helpers.execute(scratch.target, "UPDATE ci SET k = 'A' WHERE k = 'a'")
    helpers.execute(scratch.source, "UPDATE ci SET k = 'B', m = m WHERE k = 'b'")

    result = sync_table(runtime, "ci", reconcile=True)

    assert (result.repaired_deleted, _same(scratch, "ci")) == (0, True)


@pytest.mark.parametrize("incremental", [True, False], ids=["reconcile", "diff"])
def test_four_byte_keys_are_repaired(scratch, runtime_factory, incremental) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE e (k VARCHAR(8) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL "
        "PRIMARY KEY, v INT NULL, m DATETIME NULL)",
        "INSERT INTO e VALUES ('🚀', 1, '2024-01-01'), ('🚀🚀', 2, '2024-01-02'), "
        "('ß', 3, '2024-01-03')",
    )
    runtime = _first_synced(scratch, runtime_factory, "e", "k", incremental)
    helpers.execute(
        scratch.target,
        "DELETE FROM e WHERE k = '🚀'",
        "UPDATE e SET v = 9 WHERE k = '🚀🚀'",
        "INSERT INTO e VALUES ('😀', 4, NULL)",
    )

    result = sync_table(runtime, "e", reconcile=True)

    assert (_repaired(result), _same(scratch, "e")) == ((3, 1, 1, 1), True)


@pytest.mark.parametrize("incremental", [True, False], ids=["reconcile", "diff"])
def test_the_smallest_differences_in_values_are_found(
    scratch, runtime_factory, incremental
) -> None:
    """A DOUBLE and a FLOAT one step apart (the fingerprint prints them by SFORMAT), NULL
    against '', a case change under a case-insensitive collation, one 4-byte character for
    another. Row 6 holds the newest cursor value, so an incremental read takes only it."""
    helpers.execute(
        scratch.source,
        "CREATE TABLE x (id INT NOT NULL PRIMARY KEY, f DOUBLE NOT NULL, g FLOAT NULL, "
        "s VARCHAR(10) COLLATE utf8mb4_general_ci NULL, m DATETIME NULL)",
        "INSERT INTO x VALUES (1, 0.1, 0.1, 'a', '2024-01-01'), (2, 2, 0.1, 'a', '2024-01-01'), "
        "(3, 3, 0.1, '', '2024-01-01'), (4, 4, 0.1, 'abc', '2024-01-01'), "
        "(5, 5, 0.1, '🚀', '2024-01-01'), (6, 6, 0.1, 'b', '2024-01-02')",
    )
    runtime = _first_synced(scratch, runtime_factory, "x", "id", incremental)
    helpers.execute(
        scratch.target,
        "UPDATE x SET f = 0.10000000000000002 WHERE id = 1",
        "UPDATE x SET g = 0.10000001 WHERE id = 2",
        "UPDATE x SET s = NULL WHERE id = 3",
        "UPDATE x SET s = 'ABC' WHERE id = 4",
        "UPDATE x SET s = '😀' WHERE id = 5",
    )

    result = sync_table(runtime, "x", reconcile=True)

    assert (_repaired(result), _same(scratch, "x")) == ((5, 0, 5, 0), True)


@pytest.mark.parametrize("incremental", [False, True])
def test_smallest_differences_in_enums_timestamps_texts_and_bytes_are_found(
    scratch, runtime_factory, incremental
) -> None:
    """Values that enter the fingerprint as numbers (an ENUM's member, a TIMESTAMP's epoch
    seconds) or as their text's CRC32 (text, bytes): one member, one microsecond, one byte
    apart; a text moved between two columns; the ENUM's error value '' against NULL."""
    helpers.execute(
        scratch.source,
        "CREATE TABLE y (id INT NOT NULL PRIMARY KEY, e ENUM('a','b') NULL, "
        "t TIMESTAMP(6) NULL DEFAULT NULL, u VARCHAR(5) NULL, w VARCHAR(5) NULL, "
        "b VARBINARY(4) NULL, m DATETIME NULL)",
        "INSERT INTO y VALUES (1, 'a', '2024-01-01 00:00:00.000001', 'x', 'y', X'00', "
        "'2024-01-01'), (2, 'a', '2024-01-01', 'x#', 'y', X'00', '2024-01-01'), "
        "(3, 'a', '2024-01-01', 'x', 'y', X'00', '2024-01-01'), "
        "(4, 'a', '2024-01-01', 'x', 'y', X'0000', '2024-01-01'), "
        "(5, 'a', '2024-01-01', 'x', 'y', X'00', '2024-01-01'), "
        "(6, 'a', '2024-01-01', 'x', 'y', X'00', '2024-01-02'), "  # the newest cursor value
        "(7, 'a', '2024-01-01', 'x', 'y', X'00', '2024-01-01')",
    )
    lax = "SET SESSION sql_mode = ''"
    helpers.execute(scratch.source, lax, "UPDATE y SET e = 'c' WHERE id = 5")  # the error value ''
    runtime = _first_synced(scratch, runtime_factory, "y", "id", incremental)
    helpers.execute(
        scratch.target,
        "UPDATE y SET t = '2024-01-01 00:00:00.000002' WHERE id = 1",
        "UPDATE y SET e = 'b' WHERE id = 7",
        "UPDATE y SET u = 'x', w = '#y' WHERE id = 2",
        "UPDATE y SET t = NULL WHERE id = 3",
        "UPDATE y SET b = X'01' WHERE id = 4",
        "UPDATE y SET e = NULL WHERE id = 5",
    )

    result = sync_table(runtime, "y", reconcile=True)

    assert (_repaired(result), _same(scratch, "y")) == ((6, 0, 6, 0), True)


# --- the valve -----------------------------------------------------------------------------


def test_the_valve_refuses_a_diff_that_would_empty_the_target(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False)
    before = helpers.exact_rows(scratch.target, "t")
    helpers.execute(scratch.source, "DELETE FROM t WHERE id > 100")

    with pytest.raises(TooManyDeletes, match="max_delete_fraction 0.5"):
        sync_table(runtime, "t")
    assert helpers.exact_rows(scratch.target, "t") == before


def test_the_valve_refuses_a_reconcile_that_would_delete_most_of_the_target(
    scratch, runtime_factory
) -> None:
    runtime = _synced(scratch, runtime_factory, rows=100)
    helpers.execute(
        scratch.target, "INSERT INTO t SELECT seq, 'x', NULL, NULL FROM seq_1000_to_1200"
    )

    result = run_sync(runtime, "t", reconcile=True)

    assert (result.status, helpers.count(scratch.target, "t")) == ("failed", 301)
    assert "(66.8%)" in (result.error or "") and "max_delete_fraction" in (result.error or "")


def test_the_valve_refuses_a_whole_copy_of_an_emptied_source(scratch, runtime_factory) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=False, strategy="replace")
    helpers.execute(scratch.source, "TRUNCATE TABLE t")

    result = run_sync(runtime, "t")

    assert (result.status, helpers.count(scratch.target, "t")) == ("failed", 2000)
    assert "max_delete_fraction" in (result.error or "")


def test_the_valve_refuses_a_forced_full_refresh_of_an_emptied_source_other_tables_carry_on(
    scratch, runtime_factory
) -> None:
    _make_table(scratch, incremental=False)
    helpers.execute(
        scratch.source, "CREATE TABLE u (id INT PRIMARY KEY)", "INSERT INTO u VALUES (1)"
    )
    scratch.write_tables([{"table": "t", "primary_key": "id"}, {"table": "u"}])
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(scratch.source, "TRUNCATE TABLE t")

    results = [run_sync(runtime, name, full_refresh=True) for name in ("t", "u")]

    assert [r.status for r in results] == ["failed", "synced"]


@pytest.mark.parametrize("incremental", [True, False], ids=["reconcile", "diff"])
def test_max_delete_fraction_one_allows_emptying_the_target(
    scratch, runtime_factory, incremental
) -> None:
    runtime = _synced(scratch, runtime_factory, incremental=incremental, max_delete_fraction=1.0)
    helpers.execute(scratch.source, "DELETE FROM t")

    sync_table(runtime, "t", reconcile=True)

    assert helpers.count(scratch.target, "t") == 0


def test_max_delete_fraction_one_allows_a_whole_copy_of_an_emptied_source(
    scratch, runtime_factory
) -> None:
    runtime = _synced(
        scratch, runtime_factory, incremental=False, strategy="replace", max_delete_fraction=1.0
    )
    helpers.execute(scratch.source, "TRUNCATE TABLE t")

    sync_table(runtime, "t")

    assert helpers.count(scratch.target, "t") == 0


def test_sparse_and_negative_integer_keys_with_many_differing_ranges_are_repaired(
    scratch, runtime_factory
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE s (id BIGINT NOT NULL PRIMARY KEY, v INT NOT NULL)",
        "INSERT INTO s SELECT CAST(seq AS SIGNED) * 7919 - 50000000, seq FROM seq_1_to_20000",
    )
    scratch.write_tables([{"table": "s", "primary_key": "id"}])
    runtime = runtime_factory()
    sync_table(runtime, "s")
    helpers.execute(
        scratch.source,
        "UPDATE s SET v = -v WHERE v % 97 = 0",  # 206 rows, far apart: over 64 key ranges
        "DELETE FROM s WHERE v % 89 = 1",
        "INSERT INTO s VALUES (9000000000, 1), (-9000000000, 2)",
    )

    result = sync_table(runtime, "s")

    assert (result.mode, _same(scratch, "s")) == ("diff", True)
