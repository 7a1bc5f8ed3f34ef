"""One process syncing many tables (issue 20): groups of tables side by side, their small
reads staged by one dlt run, each table still with its own lock, result, status and
failure; the staging table a merge empties serves the table's next sync."""

from __future__ import annotations

import sqlalchemy as sa

from dbsync.backends import read_status
from dbsync.config.names import staging_table
from dbsync.sync.many import group_size, sync_tables
from dbsync.sync.pipeline import discard_pipelines
from tests import helpers

TABLES = [f"b{i}" for i in range(5)]


def _make_tables(scratch, names: list[str] = TABLES) -> None:
    for name in names:
        helpers.execute(
            scratch.source,
            f"CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, e ENUM('a', 'b') NOT NULL, "
            "m DATETIME(6) NOT NULL DEFAULT NOW(6) ON UPDATE NOW(6), KEY m (m))",
            f"INSERT INTO {name} (id, e) SELECT seq, 'a' FROM seq_1_to_50",
        )
    scratch.write_tables([{"table": n, "primary_key": ["id"], "modifier": "m"} for n in names])


def _change_each(scratch, value: str = "b") -> None:
    for name in TABLES:
        helpers.execute(scratch.source, f"UPDATE {name} SET e = '{value}' WHERE id = 7")


def _same(scratch, name: str) -> bool:
    return helpers.exact_rows(scratch.source, name) == helpers.exact_rows(scratch.target, name)


def test_a_group_of_small_changes_is_staged_by_one_dlt_run(scratch, runtime_factory) -> None:
    _make_tables(scratch)
    runtime = runtime_factory()
    assert [r.status for r in sync_tables(runtime, TABLES)] == ["synced"] * len(TABLES)
    _change_each(scratch)
    results = sync_tables(runtime, TABLES)
    assert [(r.table, r.status, r.mode) for r in results] == [
        (t, "synced", "incremental") for t in TABLES
    ]
    assert len({r.load_id for r in results}) == 1  # one dlt run for the group
    assert all(_same(scratch, t) for t in TABLES)
    recorded = {s.table: s.status for s in read_status(runtime.engines.target, scratch.target)}
    assert recorded == dict.fromkeys(TABLES, "synced")


def test_a_failing_table_fails_alone_and_the_group_is_synced(scratch, runtime_factory) -> None:
    _make_tables(scratch)
    runtime = runtime_factory()
    sync_tables(runtime, TABLES)  # whole copies
    _change_each(scratch)
    sync_tables(runtime, TABLES)  # staged: the staging tables are kept
    _change_each(scratch, "a")
    with helpers.load_refused_for(scratch.staging, staging_table("b2"), "id = 7"):
        results = {r.table: r for r in sync_tables(runtime, TABLES)}
    assert results["b2"].status == "failed"
    assert all(results[t].status == "synced" for t in TABLES if t != "b2")
    assert all(_same(scratch, t) for t in TABLES if t != "b2")
    discard_pipelines()
    assert sync_tables(runtime, ["b2"])[0].status == "synced"
    assert _same(scratch, "b2")


def test_a_table_another_process_syncs_is_skipped_alone(scratch, runtime_factory) -> None:
    _make_tables(scratch)
    runtime = runtime_factory()
    sync_tables(runtime, TABLES)
    _change_each(scratch)
    with runtime.dialect.table_lock(runtime.engines.target, "b1"):
        results = {r.table: r.status for r in sync_tables(runtime, TABLES)}
    assert results == {**dict.fromkeys(TABLES, "synced"), "b1": "skipped"}
    assert all(_same(scratch, t) for t in TABLES if t != "b1")


def test_the_staging_table_a_merge_emptied_serves_the_next_sync(scratch, runtime_factory) -> None:
    _make_tables(scratch, ["b0"])
    runtime = runtime_factory()
    sync_tables(runtime, ["b0"])
    for value in ("b", "a"):
        helpers.execute(scratch.source, f"UPDATE b0 SET e = '{value}' WHERE id = 3")
        assert sync_tables(runtime, ["b0"])[0].status == "synced"
        assert _same(scratch, "b0")
        kept = helpers.query(scratch.staging, f"SELECT COUNT(*) FROM `{staging_table('b0')}`")
        assert kept == [(0,)]
    # a staging table that no longer fits (rows left in it) is made anew
    helpers.execute(
        scratch.staging, f"INSERT INTO `{staging_table('b0')}` (id, e, m) VALUES (-1, 'a', NOW())"
    )
    helpers.execute(scratch.source, "UPDATE b0 SET e = 'b' WHERE id = 4")
    assert sync_tables(runtime, ["b0"])[0].status == "synced"
    assert _same(scratch, "b0")


def test_the_status_table_dropped_while_a_process_runs_is_made_again(
    scratch, runtime_factory
) -> None:
    _make_tables(scratch, ["b0"])
    runtime = runtime_factory()
    sync_tables(runtime, ["b0"])
    helpers.execute(scratch.target, "DROP TABLE _dbsync_status")
    helpers.execute(scratch.source, "UPDATE b0 SET e = 'b' WHERE id = 3")
    assert sync_tables(runtime, ["b0"])[0].status == "synced"
    assert [s.table for s in read_status(runtime.engines.target, scratch.target)] == ["b0"]


def test_groups_fit_the_pools(scratch, runtime_factory) -> None:
    runtime = runtime_factory()
    settings = runtime.settings
    assert runtime.dialect.syncs_side_by_side
    assert group_size(settings, True) == min(settings.sync_batch_tables, 16)
    small = settings.model_copy(update={"pool_size": 2, "max_overflow": 4})
    assert group_size(small, True) == 1
    assert group_size(settings, False) == 1
    assert isinstance(runtime.engines.target, sa.Engine)
