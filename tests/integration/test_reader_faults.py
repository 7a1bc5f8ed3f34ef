"""A killed extraction query fails its table cleanly, in the CLI and in a real worker process.

The extraction is made killable at a known moment without any timing: the test holds
``LOCK TABLES held WRITE`` on the source, so connectorx's SELECT waits for the metadata lock
in the processlist; the test kills that query (or its connection), then unlocks. connectorx
reports this as a Rust panic (``pyo3_runtime.PanicException``, a BaseException), the fault
that used to end the CLI without a summary and Celery tasks with an unpicklable error.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
import redis
from celery import Celery

from tests import helpers
from tests.integration.conftest import Scratch
from workers.config import celery_config, load_fleet_settings
from workers.tasks import SyncFailed

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"
HELD = {"table": "held", "primary_key": "id"}
OTHER = {"table": "other", "primary_key": "id"}


def create_tables(database: str) -> None:
    helpers.execute(
        database,
        "CREATE TABLE held (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        "INSERT INTO held SELECT seq, CONCAT('row ', seq) FROM seq_1_to_100",
        "CREATE TABLE other (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        "INSERT INTO other SELECT seq, CONCAT('row ', seq) FROM seq_1_to_40",
    )


def extraction_of(database: str, table: str, timeout: float = 120) -> int:
    """The processlist id of the extraction SELECT of ``table``, once it waits for its lock."""
    return helpers.waiting_for_metadata_lock(f"SELECT % FROM `{database}`.`{table}`%", timeout)


def kill_extraction(database: str, table: str, kill: str, lock: pymysql.Connection) -> None:
    helpers.execute(None, f"KILL {kill} {extraction_of(database, table)}")
    with lock.cursor() as cur:
        cur.execute("UNLOCK TABLES")


def lock_table(database: str, table: str) -> pymysql.Connection:
    conn = helpers.connect(database)
    with conn.cursor() as cur:
        cur.execute(f"LOCK TABLES `{table}` WRITE")
    return conn


def dbsync_env(scratch: Scratch, **extra: str) -> dict[str, str]:
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOURCE_DB_", "TARGET_DB_", "TABLES_CONFIG", "RETRY_", "DBSYNC_"))
    }
    return {**inherited, **scratch.env(), **extra}


@pytest.mark.parametrize("kill", ["QUERY", "CONNECTION"])
def test_cli_reports_a_killed_extraction_and_syncs_the_other_tables(
    scratch: Scratch, kill: str
) -> None:
    create_tables(scratch.source)
    scratch.write_tables([HELD, OTHER])
    lock = lock_table(scratch.source, "held")
    try:
        sync = subprocess.Popen(
            [str(Path(sys.executable).with_name("dbsync")), "sync"],
            cwd=scratch.tables_path.parent, env=dbsync_env(scratch),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        kill_extraction(scratch.source, "held", kill, lock)
        stdout, stderr = sync.communicate(timeout=300)
    finally:
        lock.close()

    assert sync.returncode == 1, stdout + stderr
    assert re.search(r"^held\s+\S+\s+failed\b.*reading table 'held' from the source", stdout, re.M)
    assert re.search(r"^other\s+\S+\s+synced\b", stdout, re.M), stdout
    assert helpers.count(scratch.target, "other") == 40
    assert "Traceback" not in stdout + stderr


@pytest.mark.parametrize("extractor", ["connectorx", "pymysql"])
def test_cli_names_the_cause_of_a_killed_extraction_query(scratch: Scratch, extractor: str) -> None:
    create_tables(scratch.source)
    scratch.write_tables([HELD])
    lock = lock_table(scratch.source, "held")
    try:
        sync = subprocess.Popen(
            [str(Path(sys.executable).with_name("dbsync")), "sync"],
            cwd=scratch.tables_path.parent, env=dbsync_env(scratch, DBSYNC_EXTRACTOR=extractor),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        kill_extraction(scratch.source, "held", "QUERY", lock)
        stdout, _ = sync.communicate(timeout=300)
    finally:
        lock.close()

    (line,) = [line for line in stdout.splitlines() if line.startswith("held ")]
    assert "MySQL error 1317: Query execution was interrupted" in line


@pytest.fixture
def worker_process(scratch: Scratch, tmp_path: Path) -> Iterator[Celery]:
    """A real ``celery -A workers.app worker`` process syncing the scratch databases' table
    ``held``, which fails a transient error at once (RETRY_MAX=0); and a client app on its
    queue."""
    create_tables(scratch.source)
    scratch.write_tables([HELD])  # read by the worker when it starts
    queue = helpers.unique_name("dbsync_faults_q")
    client = Celery("faults-test", set_as_current=False)
    client.conf.update(celery_config(load_fleet_settings(redis_url=REDIS_URL, celery_queue=queue)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        health_port = sock.getsockname()[1]
    env = dbsync_env(
        scratch, REDIS_URL=REDIS_URL, CELERY_QUEUE=queue, RETRY_MAX="0", POOL_SIZE="2",
        MAX_OVERFLOW="4", HEALTH_PORT=str(health_port),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-c", "1",
             "-n", f"{queue}@%h", "--loglevel", "INFO"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not client.control.ping(timeout=1.0):
            assert process.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not start"
        yield client
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        redis.Redis.from_url(REDIS_URL).delete(queue, f"_kombu.binding.{queue}")


def test_worker_stores_a_picklable_error_naming_table_and_cause(
    scratch: Scratch, worker_process: Celery
) -> None:
    lock = lock_table(scratch.source, "held")
    try:
        result = worker_process.send_task("dbsync.sync_table", args=["held"])
        kill_extraction(scratch.source, "held", "QUERY", lock)
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the stored error is checked
            result.get(timeout=300)
    finally:
        lock.close()

    stored = json.loads(redis.Redis.from_url(REDIS_URL).get(f"celery-task-meta-{result.id}"))
    error = stored["result"]
    assert (stored["status"], error["exc_module"], error["exc_type"]) == (
        "FAILURE", "workers.tasks", "SyncFailed",
    )
    message, summary = error["exc_message"]
    assert message.startswith("held: ")
    assert "MySQL error 1317: Query execution was interrupted" in message
    assert summary["table"] == "held" and summary["status"] == "failed"
    rebuilt = SyncFailed(message, summary)
    assert pickle.loads(pickle.dumps(rebuilt)).args == rebuilt.args
    assert str(caught.value) == message
