"""Delete detection on a busy table compares the keys the sync's read could see: rows written
while it runs do not make the key folds differ (and cost a narrowing) on every sync."""

from __future__ import annotations

import pytest

from dbsync.compare import keydiff
from dbsync.sync import run as sync
from dbsync.sync.run import sync_table
from tests import helpers


@pytest.fixture
def busy(scratch, monkeypatch):
    """Table ``t``; every load is followed by inserts into the source (a writer that does
    not stop while the sync runs); counts the narrowings of the key comparison."""
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, "
        "m TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) "
        "ON UPDATE CURRENT_TIMESTAMP(6), KEY (m))",
        "INSERT INTO t (id, v) SELECT seq, 'v' FROM seq_1_to_1000",
    )
    scratch.write_tables([{"table": "t", "primary_key": ["id"], "modifier": "m"}])
    narrowings: list[int] = []
    load, compare = sync._load, keydiff.compare
    written = iter(range(10_000, 20_000, 10))

    def load_then_write(*args, **kwargs):
        load(*args, **kwargs)
        start = next(written)
        helpers.execute(
            scratch.source,
            f"INSERT INTO t (id, v) SELECT seq, 'late' FROM seq_{start}_to_{start + 4}",
        )

    def counted(sides, folds=None):
        if folds is not None and folds[0] != folds[1]:
            narrowings.append(1)
        return compare(sides, folds)

    monkeypatch.setattr(sync, "_load", load_then_write)
    monkeypatch.setattr(keydiff, "compare", counted)
    return narrowings


def test_rows_inserted_while_a_sync_runs_cost_no_key_narrowing(
    scratch, runtime_factory, busy
) -> None:
    runtime = runtime_factory()
    sync_table(runtime, "t")  # the full copy: no key comparison
    helpers.execute(scratch.source, "UPDATE t SET v = 'u' WHERE id = 1")

    for _ in range(3):
        sync_table(runtime, "t")

    assert busy == []


def test_a_delete_on_a_busy_table_still_reaches_the_target(scratch, runtime_factory, busy) -> None:
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(scratch.source, "DELETE FROM t WHERE id IN (10, 20)")

    result = sync_table(runtime, "t")

    assert result.rows_deleted == 2
    assert helpers.query(scratch.target, "SELECT COUNT(*) FROM t WHERE id IN (10, 20)") == [(0,)]
