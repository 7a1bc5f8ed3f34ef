"""Bounded metadata-lock waits: a session holding a transaction on a target table never makes
dbsync's swap or ALTER wait long, so readers of the table are never stuck behind it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pymysql
import pytest

from dbsync.config.result import SyncResult
from dbsync.sync.run import run_sync
from tests import helpers

LOCK_WAIT_S = 1
# a reader queued behind one waiting DDL attempt waits at most LOCK_WAIT_S; the slack covers
# connecting and a loaded machine
READER_BOUND_S = 2 * LOCK_WAIT_S + 1.5


def _prepare(scratch, runtime_factory, scenario: str):
    """A synced table ``t``, then a source change the next sync must apply with DDL on the
    target: a full refresh (RENAME swap) or a widened column (ALTER TABLE)."""
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, "
        "updated_at DATETIME(6) NOT NULL)",
        "INSERT INTO t SELECT seq, CONCAT('n', seq), '2026-01-01' FROM seq_1_to_100",
    )
    table = {"table": "t", "primary_key": "id", "strategy": "replace"}  # the swap, each sync
    if scenario == "alter":
        table["modifier"] = "updated_at"
    scratch.write_tables([table])
    runtime = runtime_factory(target_lock_wait_timeout=LOCK_WAIT_S)
    assert run_sync(runtime, "t").status == "synced"
    helpers.execute(scratch.source, "INSERT INTO t VALUES (101, 'new', '2026-02-01')")
    if scenario == "alter":
        helpers.execute(scratch.source, "ALTER TABLE t MODIFY name VARCHAR(50) NOT NULL")
    return runtime


@contextmanager
def _holder(database: str) -> Iterator[pymysql.Connection]:
    """A session with an open transaction that has read the target table (a BI tool, a
    forgotten ``mysql`` prompt): it holds the table's shared metadata lock until it ends."""
    conn = helpers.connect(database)
    with conn.cursor() as cur:
        cur.execute("START TRANSACTION")
        cur.execute("SELECT COUNT(*) FROM t")
        cur.fetchall()
    try:
        yield conn
    finally:
        conn.close()


def _ddl_waiting(database: str) -> bool:
    rows = helpers.query(
        None,
        "SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = %s "
        "AND STATE = 'Waiting for table metadata lock' "
        "AND (INFO LIKE 'RENAME%%' OR INFO LIKE 'ALTER%%')",
        (database,),
    )
    return bool(rows)


def _wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _reader_wait(database: str) -> float:
    """Seconds a plain reader (server-default lock_wait_timeout) waits for ``SELECT``."""
    with helpers.connect(database) as conn, conn.cursor() as cur:
        started = time.monotonic()
        cur.execute("SELECT COUNT(*) FROM t")
        cur.fetchall()
        return time.monotonic() - started


def _sync_with_reader(runtime, scratch, commit_holder: bool) -> tuple[SyncResult, float]:
    """Sync while a holder keeps its transaction; a reader arrives while the DDL waits.

    A waiting DDL queues new readers behind it, so the reader is answered only once that DDL
    attempt has timed out: with ``commit_holder`` the holder commits then, during the retries.
    """
    with _holder(scratch.target) as holder, ThreadPoolExecutor(2) as pool:
        sync = pool.submit(run_sync, runtime, "t")
        _wait_for(lambda: _ddl_waiting(scratch.target))
        waited = pool.submit(_reader_wait, scratch.target).result(timeout=60)
        if commit_holder:
            holder.commit()
        result = sync.result(timeout=120)
    return result, waited


@pytest.mark.parametrize("scenario", ["full_refresh", "alter"])
def test_readers_are_answered_and_the_sync_fails_naming_the_lock_when_the_holder_stays(
    scratch, runtime_factory, scenario: str
) -> None:
    runtime = _prepare(scratch, runtime_factory, scenario)

    result, waited = _sync_with_reader(runtime, scratch, commit_holder=False)

    assert waited < READER_BOUND_S
    assert result.status == "failed"
    assert "MetadataLockTimeout" in result.error
    assert f"metadata lock on `{scratch.target}`.`t`" in result.error
    assert helpers.count(scratch.target, "t") == 100  # unchanged


@pytest.mark.parametrize("scenario", ["full_refresh", "alter"])
def test_the_sync_succeeds_when_the_holder_commits_during_the_retries(
    scratch, runtime_factory, scenario: str
) -> None:
    runtime = _prepare(scratch, runtime_factory, scenario)

    result, waited = _sync_with_reader(runtime, scratch, commit_holder=True)

    assert waited < READER_BOUND_S
    assert result.status == "synced", result.error
    assert helpers.exact_rows(scratch.target, "t") == helpers.exact_rows(scratch.source, "t")
