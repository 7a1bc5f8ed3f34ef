"""The fleet-wide cap on concurrent source reads (SOURCE_MAX_CONCURRENT_READS), on the real
MariaDB, across real processes.

Read slots are named locks on the source server, so every process shares them; a reader
waiting for one is visible in ``dbsync status`` and in the log, gives up after
``SOURCE_READ_WAIT_SECONDS`` (a transient failure), and chunk readers count too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pymysql

from tests import helpers
from tests.integration.conftest import Scratch

DBSYNC = str(Path(sys.executable).with_name("dbsync"))
REPO = Path(__file__).resolve().parents[2]

# A process reading the source through one read slot: the dialect's slot around a query
# that takes a second and a half, so the readers overlap.
READER = """
import sys
import sqlalchemy as sa
from dbsync.config.settings import load_settings
from dbsync.sync.runtime import Runtime

runtime = Runtime.create(load_settings())
with runtime.dialect.read_slot(runtime.engines.source, sys.argv[1]):
    with runtime.engines.source.connect() as conn:
        conn.execute(sa.text("SELECT SLEEP(1.5) /* dbsync-cap-test */"))
runtime.dispose()
"""


def env(scratch: Scratch, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCE_", "TARGET_"))}
    return {**keep, **scratch.env(), **extra}


def reads_now() -> int:
    return len(
        helpers.query(
            None,
            "SELECT ID FROM information_schema.PROCESSLIST "
            "WHERE INFO LIKE 'SELECT SLEEP(1.5) /* dbsync-cap-test */%%'",
        )
    )


def hold_slots(count: int) -> pymysql.Connection:
    """Take read slots 0..count-1 on the source server, as a reader elsewhere would."""
    conn = helpers.connect()
    with conn.cursor() as cursor:
        for slot in range(count):
            cursor.execute("SELECT GET_LOCK(%s, 0)", (f"dbsync:read:{slot}",))
            assert cursor.fetchone()[0] == 1
    return conn


def create_table(scratch: Scratch, rows: int = 100) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        f"INSERT INTO t SELECT seq, 'x' FROM seq_1_to_{rows}",
    )


def test_never_more_concurrent_source_reads_than_the_cap_across_processes(
    scratch: Scratch,
) -> None:
    scratch.write_tables([{"table": "t", "primary_key": "id"}])
    create_table(scratch)
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", READER, "t"],
            cwd=REPO,
            env=env(scratch, SOURCE_MAX_CONCURRENT_READS="2"),
        )
        for _ in range(6)
    ]
    most = 0
    while any(reader.poll() is None for reader in readers):
        most = max(most, reads_now())
        time.sleep(0.05)
    assert [reader.returncode for reader in readers] == [0] * 6
    assert most == 2  # the cap is reached and never passed


def test_a_sync_waiting_for_a_slot_shows_in_status_and_is_retried_after_its_wait(
    scratch: Scratch,
) -> None:
    scratch.write_tables([{"table": "t", "primary_key": "id"}])
    create_table(scratch)
    settings = {"SOURCE_MAX_CONCURRENT_READS": "2", "SOURCE_READ_WAIT_SECONDS": "6"}
    holder = hold_slots(2)
    try:
        sync = subprocess.Popen(
            [DBSYNC, "sync", "t"],
            env=env(scratch, **settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        status = ""
        while "waiting for a slot: t" not in status and time.monotonic() < deadline:
            status = subprocess.run(
                [DBSYNC, "status"], env=env(scratch, **settings), capture_output=True, text=True
            ).stdout
            time.sleep(0.2)
        output, _ = sync.communicate(timeout=60)
    finally:
        holder.close()
    assert "source reads: 2 of 2 slots in use; waiting for a slot: t" in status
    assert "table t: waiting for a source read slot" in output
    assert "all 2 source read slots stayed in use for 6s" in output
    assert sync.returncode != 0
    done = subprocess.run(
        [DBSYNC, "sync", "t"], env=env(scratch, **settings), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_chunk_readers_of_a_chunked_copy_take_read_slots(scratch: Scratch) -> None:
    scratch.write_tables([{"table": "t", "primary_key": "id", "chunk_rows": 200}])
    create_table(scratch, rows=1000)
    settings = {"SOURCE_MAX_CONCURRENT_READS": "1", "SOURCE_READ_WAIT_SECONDS": "60"}
    holder = hold_slots(1)
    sync = subprocess.Popen(
        [DBSYNC, "sync", "t", "--parallel", "3"],
        env=env(scratch, **settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(3)
    holder.close()
    output, _ = sync.communicate(timeout=120)
    assert sync.returncode == 0, output
    assert "chunk" in output and "waiting for a source read slot" in output
    assert helpers.query(scratch.target, "SELECT COUNT(*) FROM t")[0][0] == 1000
