"""Full refresh (no ``modifier``): the target is replaced whole, atomically, nothing left behind."""

from __future__ import annotations

import threading
import time

import pymysql

from dbsync.compare.verify import verify_table
from dbsync.sync.run import sync_table
from tests import helpers


def _full_table(scratch, table: str = "f", rows: int = 50) -> None:
    helpers.execute(
        scratch.source,
        f"CREATE TABLE `{table}` (id INT NOT NULL PRIMARY KEY, v VARCHAR(32) NOT NULL, "
        "n INT NULL, KEY n (n))",
        f"INSERT INTO `{table}` SELECT seq, MD5(seq), seq % 97 FROM seq_1_to_{rows}",
    )


def test_full_refresh_replaces_the_whole_content(scratch, runtime_factory) -> None:
    _full_table(scratch)
    scratch.write_tables([{"table": "f", "primary_key": "id", "strategy": "replace"}])
    runtime = runtime_factory()
    sync_table(runtime, "f")
    helpers.execute(
        scratch.source,
        "DELETE FROM f WHERE id BETWEEN 10 AND 19",
        "UPDATE f SET v = 'updated', n = NULL WHERE id = 3",
        "INSERT INTO f VALUES (500, 'new', 1)",
    )

    result = sync_table(runtime, "f")

    assert result.mode == "full_refresh"
    assert result.rows_loaded == 41
    assert helpers.exact_rows(scratch.target, "f") == helpers.exact_rows(scratch.source, "f")
    assert helpers.query(scratch.target, "SELECT COUNT(*) FROM f WHERE id BETWEEN 10 AND 19") == [
        (0,)
    ]
    assert verify_table(runtime, "f").ok


def test_readers_never_see_an_empty_or_partial_table_during_a_refresh(
    scratch, runtime_factory
) -> None:
    _full_table(scratch, rows=1_000)
    scratch.write_tables([{"table": "f", "primary_key": "id"}])
    runtime = runtime_factory()
    sync_table(runtime, "f")
    helpers.execute(
        scratch.source, "INSERT INTO f SELECT seq, MD5(seq), seq % 97 FROM seq_1001_to_200000"
    )
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def poll() -> None:
        try:
            with helpers.connect(scratch.target) as conn, conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute("SELECT COUNT(*) FROM f")
                    seen.append(int(cur.fetchone()[0]))
        except pymysql.MySQLError as exc:  # e.g. the table missing for a moment
            errors.append(exc)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:
        time.sleep(0.2)
        sync_table(runtime, "f")
        time.sleep(0.2)
    finally:
        stop.set()
        reader.join(timeout=30)

    assert errors == []
    assert set(seen) == {1_000, 200_000}, sorted(set(seen))  # old or new count, nothing between
    assert len(seen) > 10  # the reader really polled throughout the refresh
    switch = seen.index(200_000)
    assert switch > 0 and seen[switch:].count(1_000) == 0  # once switched, never back


def test_syncs_leave_no_stray_tables(scratch, runtime_factory) -> None:
    _full_table(scratch, "full_t")
    _full_table(scratch, "incr_t")
    helpers.execute(
        scratch.source,
        "ALTER TABLE incr_t ADD COLUMN m DATETIME NOT NULL DEFAULT '2024-01-01'",
    )
    scratch.write_tables(
        [
            {"table": "full_t", "primary_key": "id"},
            {"table": "incr_t", "primary_key": "id", "modifier": "m"},
        ]
    )
    runtime = runtime_factory()
    for _ in range(2):  # first load (create), then refresh / merge
        for table in ("full_t", "incr_t"):
            assert sync_table(runtime, table).status == "synced"
    sync_table(runtime, "incr_t", full_refresh=True)

    assert helpers.table_names(scratch.target) == {"full_t", "incr_t", "_dbsync_status"}
    staging = helpers.table_names(scratch.staging)
    assert not staging & {"full_t", "incr_t"}, staging  # no staged copy kept
    assert not [t for t in staging if "dbsync_old" in t], staging  # no swapped-out table
