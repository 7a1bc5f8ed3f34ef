"""A sync that fails on lost target connections says so: in the status table, and in one
console line instead of pages of tracebacks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pymysql

from dbsync.sync.run import run_sync
from tests import helpers


def _big_table(scratch) -> None:
    """Enough rows for several bulk-load files (dlt writes 100,000 rows per file)."""
    helpers.execute(
        scratch.source,
        "CREATE TABLE f (id INT NOT NULL PRIMARY KEY, v VARCHAR(64) NOT NULL)",
        "INSERT INTO f SELECT seq, MD5(seq) FROM seq_1_to_300000",
    )
    scratch.write_tables([{"table": "f", "primary_key": "id"}])


@contextmanager
def _target_connections_killed_during_loads(scratch) -> Iterator[None]:
    """Whenever a bulk load runs, kill every connection dbsync holds on the target (the load's
    and the idle pooled ones), as a target-side network cut or ``KILL`` would."""
    stop = threading.Event()

    def kill() -> None:
        with helpers.connect() as conn, conn.cursor() as cur:
            while not stop.wait(0.01):
                cur.execute(
                    "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOAD DATA%%' "
                    "AND INFO LIKE %s",
                    (f"%{scratch.staging}%",),
                )
                if not cur.fetchall():
                    continue
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB IN (%s, %s) "
                    "AND ID <> CONNECTION_ID()",
                    (scratch.target, scratch.staging),
                )
                for (thread_id,) in cur.fetchall():
                    with suppress(pymysql.MySQLError):  # gone already
                        cur.execute(f"KILL CONNECTION {int(thread_id)}")

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    try:
        yield
    finally:
        stop.set()
        killer.join(timeout=30)


def _status(scratch) -> tuple[str, str | None]:
    rows = helpers.query(
        scratch.target, "SELECT status, last_error FROM _dbsync_status WHERE table_name = 'f'"
    )
    return rows[0]


def test_a_load_failing_on_lost_target_connections_is_recorded_as_failed(
    scratch, runtime_factory
) -> None:
    _big_table(scratch)
    # without pre-ping the pool hands out the killed connections again: the status record
    # must still get through on fresh ones
    runtime = runtime_factory(pool_pre_ping=False)
    assert run_sync(runtime, "f").status == "synced"

    with _target_connections_killed_during_loads(scratch):
        result = run_sync(runtime, "f", full_refresh=True)

    assert result.status == "failed"
    status, error = _status(scratch)
    assert status == "failed"
    assert error == result.error


def test_a_failing_load_prints_one_error_line_and_no_traceback(scratch) -> None:
    _big_table(scratch)
    env = {**scratch.env(), "POOL_PRE_PING": "false"}
    assert helpers.run_dbsync(env, "sync").returncode == 0

    with _target_connections_killed_during_loads(scratch):
        done = helpers.run_dbsync(env, "sync", "--full-refresh")

    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " - ERROR - " in line]
    assert len(errors) == 1, done.stderr
    # every target connection dies, the lock's among them: whichever the sync notices first
    # (the load's or the lock's) is the one cause the line names
    assert "table f: sync failed: " in errors[0]
    assert any(cause in errors[0] for cause in ("MySQL error", "LockLost")), errors[0]
    assert "Traceback" not in done.stderr + done.stdout
