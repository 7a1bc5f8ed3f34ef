"""A process keeps a table's dlt pipeline for its next syncs of the table (issue 20: a small
change must not pay for building a pipeline), and never lets a failed run's leftovers reach
a later one."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbsync.config.names import staging_table
from dbsync.sync.pipeline import discard_pipelines
from dbsync.sync.run import run_sync
from tests import helpers


@pytest.fixture(autouse=True)
def _no_pipelines_kept() -> None:
    discard_pipelines()


def _make_table(scratch) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, "
        "m DATETIME(6) NOT NULL DEFAULT NOW(6) ON UPDATE NOW(6), KEY m (m))",
        "INSERT INTO t SELECT seq, CONCAT('v', seq), '2024-01-01' + INTERVAL seq SECOND "
        "FROM seq_1_to_100",
    )
    scratch.write_tables([{"table": "t", "primary_key": ["id"], "modifier": "m"}])


def _same(scratch) -> bool:
    return helpers.exact_rows(scratch.source, "t") == helpers.exact_rows(scratch.target, "t")


def _work_dirs(work_dir: Path) -> list[Path]:
    return sorted(work_dir.glob("dbsync-dlt-*"))


def test_the_next_syncs_of_a_table_reuse_its_pipeline(scratch, runtime_factory, tmp_path) -> None:
    _make_table(scratch)
    runtime = runtime_factory(work_dir=str(tmp_path))
    assert run_sync(runtime, "t").status == "synced"
    first = _work_dirs(tmp_path)
    for round_no in range(3):
        helpers.execute(scratch.source, f"UPDATE t SET v = 'r{round_no}' WHERE id = 7")
        assert run_sync(runtime, "t").status == "synced"
        assert _same(scratch)
    assert _work_dirs(tmp_path) == first and len(first) == 1


def test_a_reused_pipeline_loads_after_the_staging_database_was_dropped(
    scratch, runtime_factory, tmp_path
) -> None:
    _make_table(scratch)
    runtime = runtime_factory(work_dir=str(tmp_path))
    assert run_sync(runtime, "t").status == "synced"
    helpers.execute(None, f"DROP DATABASE `{scratch.staging}`")
    helpers.execute(scratch.source, "UPDATE t SET v = 'after drop' WHERE id = 9")
    result = run_sync(runtime, "t")
    assert result.status == "synced", result.error
    assert _same(scratch)


def test_a_failed_run_throws_its_pipeline_away_and_the_next_sync_works(
    scratch, runtime_factory, tmp_path
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, e ENUM('a', 'b') NOT NULL, "
        "m DATETIME(6) NOT NULL, KEY m (m))",
        "INSERT INTO t SELECT seq, 'a', '2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_100",
    )
    scratch.write_tables([{"table": "t", "primary_key": ["id"], "modifier": "m"}])
    runtime = runtime_factory(work_dir=str(tmp_path))
    assert run_sync(runtime, "t").status == "synced"  # a whole copy
    helpers.execute(scratch.source, "UPDATE t SET e = 'b', m = '2025-01-01' WHERE id = 2")
    assert run_sync(runtime, "t").status == "synced"  # staged: the staging table is kept
    before = _work_dirs(tmp_path)
    helpers.execute(scratch.source, "UPDATE t SET e = 'b', m = '2025-01-02' WHERE id = 3")
    with helpers.load_refused_for(scratch.staging, staging_table("t"), "id = 3"):
        failed = run_sync(runtime, "t")
    assert failed.status == "failed"
    assert "refused by a test trigger" in (failed.error or "")  # the cause, not a retry's
    assert "Duplicate entry" not in (failed.error or "")
    assert before and not set(before) & set(_work_dirs(tmp_path))  # thrown away
    result = run_sync(runtime, "t")
    assert result.status == "synced", result.error
    assert _same(scratch)


def test_a_work_dir_that_does_not_exist_yet_is_created(scratch, runtime_factory, tmp_path) -> None:
    _make_table(scratch)
    work_dir = tmp_path / "not" / "there"
    runtime = runtime_factory(work_dir=str(work_dir))
    assert run_sync(runtime, "t").status == "synced"
    assert len(_work_dirs(work_dir)) == 1
