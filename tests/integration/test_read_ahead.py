"""Read-ahead before an incremental merge: point lookups only, the window's keys, harmless."""

from __future__ import annotations

import pytest

from dbsync.backends.mysql.extract import Window
from dbsync.backends.mysql.read_ahead import cursor_index, read_ahead_sql
from dbsync.backends.mysql.schema import qualified
from dbsync.sync.read_ahead import reading_ahead
from dbsync.sync.run import sync_table
from tests import helpers

LOW = "2024-01-01 00:00:50.000000"


def _make_pair(scratch, key: str) -> None:
    ddl = (
        "CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, v VARCHAR(20) NOT NULL, "
        f"m DATETIME(6) NULL, PRIMARY KEY ({key}), KEY by_m (m))"
    )
    rows = (
        "INSERT INTO t SELECT seq, seq % 7, CONCAT('v', seq), "
        "'2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_2000"
    )
    for database in (scratch.source, scratch.target):
        helpers.execute(database, ddl, rows, "ANALYZE TABLE t")


def _target_schema(runtime, scratch):
    with runtime.engines.target.connect() as conn:
        return runtime.dialect.read_table(conn, scratch.target, "t")


@pytest.mark.parametrize("key", [("a",), ("a", "b")], ids=["single key", "composite key"])
def test_read_ahead_looks_up_each_row_and_its_cursor_entry_by_key(
    scratch, runtime_factory, key
) -> None:
    _make_pair(scratch, ", ".join(key))
    runtime = runtime_factory()
    index = cursor_index(_target_schema(runtime, scratch), "m")
    sql = read_ahead_sql(qualified(scratch.target, "t"), key, index, 3)
    params = [value for row in ((10, 3), (20, 6), (30, 2)) for value in row[: len(key)]]
    conn = helpers.connect(scratch.target)
    try:
        plan = helpers.query(scratch.target, "EXPLAIN " + conn.cursor().mogrify(sql, params))
    finally:
        conn.close()

    access = [(row[2], row[3], row[5]) for row in plan]  # table, access type, index used
    assert access == [("x", "range", "PRIMARY"), ("y", "eq_ref", "by_m")]


def test_read_ahead_reads_the_keys_of_the_window(scratch, runtime_factory) -> None:
    _make_pair(scratch, "a, b")
    helpers.execute(scratch.source, "UPDATE t SET m = NULL WHERE a = 7")
    runtime = runtime_factory()
    schema = _target_schema(runtime, scratch)  # the source's is the same
    databases = (scratch.source, scratch.target)
    engines = runtime.engines

    with reading_ahead(
        runtime.dialect,
        engines.source,
        engines.target,
        databases,
        (schema, schema),
        Window("m", LOW),
    ) as ahead:
        pass

    assert ahead is not None
    assert ahead.keys_read == len(range(50, 2001)) + 1  # rows at/after LOW, row 7 (NULL m)


def test_a_failing_read_ahead_leaves_the_sync_to_the_merge(scratch, runtime_factory) -> None:
    _make_pair(scratch, "a")
    runtime = runtime_factory()
    schema = _target_schema(runtime, scratch)  # the source's is the same
    helpers.execute(scratch.target, "DROP TABLE t")  # every read-ahead statement now fails
    engines = runtime.engines

    with reading_ahead(
        runtime.dialect,
        engines.source,
        engines.target,
        (scratch.source, scratch.target),
        (schema, schema),
        Window("m", LOW),
    ) as ahead:
        pass

    assert ahead is not None
    assert ahead.keys_read == 0


def test_incremental_sync_with_read_ahead_merges_every_change(scratch, runtime_factory) -> None:
    _make_pair(scratch, "a, b")
    helpers.execute(scratch.target, "DELETE FROM t")
    scratch.write_tables([{"table": "t", "primary_key": ["a", "b"], "modifier": "m"}])
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(
        scratch.source,
        "UPDATE t SET v = CONCAT('changed', a), m = '2024-06-01' WHERE a % 97 = 0",
        "INSERT INTO t VALUES (5000, 1, 'new', '2024-06-01')",
    )

    result = sync_table(runtime, "t")

    assert result.rows_extracted == 2000 // 97 + 2  # changed, new, and the boundary row
    assert helpers.exact_rows(scratch.target, "t") == helpers.exact_rows(scratch.source, "t")


@pytest.mark.parametrize("indexed", [True, False], ids=["cursor index", "no cursor index"])
def test_read_ahead_runs_only_when_the_source_can_find_the_keys_by_index(
    scratch, runtime_factory, indexed
) -> None:
    _make_pair(scratch, "a")
    if not indexed:
        helpers.execute(scratch.source, "ALTER TABLE t DROP INDEX by_m")
    helpers.execute(scratch.target, "DELETE FROM t")
    scratch.write_tables([{"table": "t", "primary_key": "a", "modifier": "m"}])
    runtime = runtime_factory()
    sync_table(runtime, "t")
    # 20 keys: the window is rows 100, 200, ... 2000 (2000 also held the previous maximum)
    helpers.execute(scratch.source, "UPDATE t SET m = '2024-06-01' WHERE a % 100 = 0")

    with helpers.captured_logs() as logs:
        sync_table(runtime, "t")

    assert ("READ_AHEAD - read ahead 20 keys" in logs.getvalue()) is indexed


def test_no_read_ahead_when_the_pools_have_no_room_for_it(scratch, runtime_factory) -> None:
    _make_pair(scratch, "a")
    helpers.execute(scratch.target, "DELETE FROM t")
    scratch.write_tables([{"table": "t", "primary_key": "a", "modifier": "m"}])
    runtime = runtime_factory(pool_size=4, max_overflow=0)
    sync_table(runtime, "t")
    helpers.execute(scratch.source, "UPDATE t SET m = '2024-06-01' WHERE a % 100 = 0")

    with helpers.captured_logs() as logs:
        result = sync_table(runtime, "t")

    assert result.rows_extracted == 20
    assert "read ahead" not in logs.getvalue()
