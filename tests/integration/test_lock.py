"""One sync per table at a time: a held table lock makes a sync skip, a dead holder frees it."""

from __future__ import annotations

import threading
import time

import pytest

from dbsync.backends.mysql.lock import TableLock, lock_name
from dbsync.config.errors import LockLost
from dbsync.sync.run import run_sync, sync_table
from tests import helpers


def _table(scratch) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL)",
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    )
    scratch.write_tables([{"table": "t", "primary_key": "id"}])


def _holder(runtime) -> TableLock:
    """The lock as another process would hold it: its own engine and connection."""
    database = runtime.settings.target.database
    return TableLock(runtime.engines.target, database, "t", heartbeat_s=0.2, stale_s=60)


def _holder_connection_id(scratch) -> int | None:
    rows = helpers.query(None, "SELECT IS_USED_LOCK(%s)", (lock_name(scratch.target, "t"),))
    return rows[0][0]


def test_sync_is_skipped_at_once_while_another_holder_has_the_lock(
    scratch, runtime_factory
) -> None:
    _table(scratch)
    holder_runtime, runtime = runtime_factory(), runtime_factory()

    with _holder(holder_runtime):
        started = time.monotonic()
        result = sync_table(runtime, "t")
        elapsed = time.monotonic() - started

    assert result.status == "skipped"
    assert elapsed < 5
    assert "t" not in helpers.table_names(scratch.target)  # nothing was written
    again = sync_table(runtime, "t")  # released on exit
    assert again.status == "synced"
    assert helpers.count(scratch.target, "t") == 2


def test_killing_the_holders_connection_frees_the_lock(scratch, runtime_factory) -> None:
    _table(scratch)
    runtime = runtime_factory()
    # the holder: another process's lock connection (GET_LOCK on dbsync's lock name)
    holder = helpers.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (lock_name(scratch.target, "t"),))
            assert cur.fetchone() == (1,)
        assert run_sync(runtime, "t").status == "skipped"
        helpers.execute(None, f"KILL {holder.thread_id()}")
        _wait_until_free(scratch)

        result = sync_table(runtime, "t")
    finally:
        holder.close()

    assert result.status == "synced"
    assert helpers.count(scratch.target, "t") == 2


def _wait_until_free(scratch) -> None:
    deadline = time.monotonic() + 10
    while _holder_connection_id(scratch) is not None:
        assert time.monotonic() < deadline, "the lock was not freed"
        time.sleep(0.05)


def test_a_holder_whose_connection_died_leaves_its_lock_context_cleanly(
    scratch, runtime_factory
) -> None:
    _table(scratch)
    lock = _holder(runtime_factory())

    with lock:
        helpers.execute(None, f"KILL {int(_holder_connection_id(scratch))}")
        _wait_until_free(scratch)
        time.sleep(0.5)  # the heartbeat (every 0.2 s) notices the loss


def test_a_sync_whose_lock_connection_dies_fails_with_lock_lost(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(32) NOT NULL)",
        "INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_20000",
    )
    scratch.write_tables([{"table": "t", "primary_key": "id"}])
    runtime = runtime_factory()
    killed: list[int] = []

    def kill_the_lock_holder() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not killed:
            holder = _holder_connection_id(scratch)
            if holder is not None:
                helpers.execute(None, f"KILL {int(holder)}")
                killed.append(holder)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_lock_holder, daemon=True)
    killer.start()
    try:
        with pytest.raises(Exception) as caught:
            sync_table(runtime, "t")
    finally:
        killer.join()

    assert killed, "the sync finished before its lock connection could be killed"
    assert "t" not in helpers.table_names(scratch.target)  # nothing committed without the lock
    assert isinstance(caught.value, LockLost), repr(caught.value)
