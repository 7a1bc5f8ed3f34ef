"""The ``dbsync.sync_table`` Celery task against real Redis and real MariaDB.

Each test starts an in-process worker of the real app (``workers.app``) with Celery's own
testing helper (``celery.contrib.testing.worker.start_worker``, solo pool), on a Redis
database and queue of its own, syncing scratch databases. Nothing stands in for MySQL or
Redis: the transient error is a real refused TCP connection (a port in front of MariaDB
that opens only when the test says so), the busy table is busy because the library's own
lock is held on the real server.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.result import AsyncResult

from dbsync.ops import metrics
from tests import helpers
from tests.integration.conftest import Scratch
from workers.config import celery_config, load_fleet_settings

REPO = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 13  # tests' own database: never the fleet's default (0)
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

ORDERS = {"table": "orders", "primary_key": "id", "modifier": "updated_at"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_orders(database: str, rows: int) -> None:
    helpers.execute(
        database,
        "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(40) NOT NULL, "
        "amount DECIMAL(10,2) NULL, updated_at DATETIME(6) NOT NULL)",
        f"INSERT INTO orders SELECT seq, CONCAT('order ', seq), seq / 4, "
        f"'2025-01-01' + INTERVAL seq MINUTE FROM seq_1_to_{rows}",
    )


def wait_for_state(result: AsyncResult, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while result.state != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"task {result.id} never reached {state} (is {result.state})")
        time.sleep(0.05)


FORWARDER = """
import socket, sys, threading

def pump(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
while True:
    client, _ = server.accept()
    backend = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    for a, b in ((client, backend), (backend, client)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
"""


class Gate:
    """A local TCP port in front of MariaDB: refuses connections until opened.

    The forwarder runs in a process of its own, so that it keeps relaying while the worker
    (in this process) sits in native code that holds the GIL, as connectorx does.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def open(self) -> None:
        host, port = self.upstream
        self._process = subprocess.Popen(
            [sys.executable, "-c", FORWARDER, str(self.port), host, str(port)]
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the gate did not open"
                time.sleep(0.02)

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT}; start it first")
    return client


@pytest.fixture(scope="session")
def queue(redis_client: redis.Redis) -> Iterator[str]:
    name = helpers.unique_name("dbsync_tasks_q")
    yield name
    redis_client.delete(name, f"_kombu.binding.{name}")


@pytest.fixture(scope="session")
def app(queue: str) -> Celery:
    """The workers' real app, pointed at the tests' Redis database and queue."""
    from workers.app import app as workers_app

    workers_app.conf.update(
        celery_config(
            load_fleet_settings(redis_url=REDIS_URL, celery_queue=queue, result_expires=3600)
        )
    )
    import workers.tasks  # noqa: F401 - registers dbsync.sync_table on the app

    return workers_app


@pytest.fixture
def worker(
    app: Celery, scratch: Scratch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., AbstractContextManager[Any]]]:
    """Start an in-process worker whose Runtime syncs the scratch databases."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the worker installs dbsync's format

    def start(**env: str) -> AbstractContextManager[Any]:
        settings = {
            **scratch.env(),
            "REDIS_URL": REDIS_URL,
            "HEALTH_PORT": str(free_port()),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            **env,
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        return start_worker(
            app, pool="solo", perform_ping_check=False, loglevel="INFO", shutdown_timeout=30
        )

    yield start
    from workers.worker import stop_runtime

    stop_runtime()
    metrics.disable_multiprocess()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_task_returns_the_summary_of_the_sync(
    app: Celery, scratch: Scratch, worker: Callable[..., AbstractContextManager[Any]]
) -> None:
    create_orders(scratch.source, 120)
    scratch.write_tables([ORDERS])
    with worker():
        summary = app.send_task("dbsync.sync_table", args=["orders"]).get(timeout=120)
    started = datetime.fromisoformat(summary.pop("started_at"))
    finished = datetime.fromisoformat(summary.pop("finished_at"))
    assert summary.pop("load_id")
    elapsed = (finished - started).total_seconds()
    assert summary.pop("duration_s") == pytest.approx(elapsed, abs=0.01)
    assert started.utcoffset() == finished.utcoffset() == timedelta(0)
    assert set(summary.pop("phases")) == {"schema", "stage", "commit"}
    assert datetime.fromisoformat(summary.pop("deletes_checked_at")) >= started  # a full copy
    assert datetime.fromisoformat(summary.pop("reconciled_at")) >= started  # so is this
    assert datetime.fromisoformat(summary.pop("safe_point")) <= finished.replace(tzinfo=None)
    assert summary == {
        "table": "orders",
        "status": "synced",
        "mode": "full_refresh",  # the first sync of an incremental table copies it whole
        "rows_extracted": 120,
        "rows_loaded": 120,
        "rows_deleted": 0,
        "rows_repaired": 0,
        "repaired_inserted": 0,
        "repaired_updated": 0,
        "repaired_deleted": 0,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "error": None,
        "schema_changes": ["created"],
        "chunks": 0,  # a small table: one piece, no chunked copy
        "chunks_reused": 0,
        "workers": [],
        "safe_point_cursor": "updated_at datetime(6)",  # the cursor it belongs to
        "cursor_fallback": False,  # root may read INNODB_TRX: a safe point, no fallback lag
        "future_cursor_rows": 0,
    }


def test_task_copies_the_table_to_the_target(
    app: Celery, scratch: Scratch, worker: Callable[..., AbstractContextManager[Any]]
) -> None:
    create_orders(scratch.source, 75)
    scratch.write_tables([ORDERS])
    with worker():
        app.send_task("dbsync.sync_table", args=["orders"]).get(timeout=120)
    assert helpers.table_rows(scratch.target, "orders", "id") == helpers.table_rows(
        scratch.source, "orders", "id"
    )


def test_full_refresh_flag_forces_a_full_refresh(
    app: Celery, scratch: Scratch, worker: Callable[..., AbstractContextManager[Any]]
) -> None:
    create_orders(scratch.source, 30)
    scratch.write_tables([ORDERS])
    with worker():
        app.send_task("dbsync.sync_table", args=["orders"]).get(timeout=120)
        summary = app.send_task(
            "dbsync.sync_table", args=["orders"], kwargs={"full_refresh": True}
        ).get(timeout=120)
    assert (summary["status"], summary["mode"], summary["rows_loaded"]) == (
        "synced",
        "full_refresh",
        30,
    )


def test_reconcile_keyword_repairs_the_targets_drift(
    app: Celery, scratch: Scratch, worker: Callable[..., AbstractContextManager[Any]]
) -> None:
    create_orders(scratch.source, 30)
    scratch.write_tables([ORDERS])
    with worker():
        app.send_task("dbsync.sync_table", args=["orders"]).get(timeout=120)
        helpers.execute(scratch.target, "UPDATE orders SET note = 'by hand' WHERE id < 4")
        summary = app.send_task(
            "dbsync.sync_table", args=["orders"], kwargs={"reconcile": True}
        ).get(timeout=120)
    assert (summary["mode"], summary["repaired_updated"]) == ("incremental", 3)


def test_table_already_being_synced_is_skipped_at_once(
    app: Celery,
    scratch: Scratch,
    worker: Callable[..., AbstractContextManager[Any]],
    runtime_factory: Callable[..., Any],
) -> None:
    create_orders(scratch.source, 10)
    scratch.write_tables([ORDERS])
    other = runtime_factory()  # another process's hold on the table: the library's lock
    with worker(), other.dialect.table_lock(other.engines.target, "orders"):
        begun = time.monotonic()
        summary = app.send_task("dbsync.sync_table", args=["orders"]).get(timeout=60)
        waited = time.monotonic() - begun
    assert (summary["status"], summary["rows_loaded"]) == ("skipped", 0)
    assert waited < 10


def test_transient_error_is_retried_and_then_succeeds(
    app: Celery, scratch: Scratch, worker: Callable[..., AbstractContextManager[Any]]
) -> None:
    create_orders(scratch.source, 40)
    scratch.write_tables([ORDERS])
    gate = Gate((helpers.MYSQL_HOST, helpers.MYSQL_PORT))  # refuses: MySQL error 2003
    retry = {"RETRY_MAX": "8", "RETRY_BACKOFF_BASE": "0.5", "RETRY_BACKOFF_MAX": "2"}
    try:
        with worker(SOURCE_DB_PORT=str(gate.port), **retry):
            result = app.send_task("dbsync.sync_table", args=["orders"])
            wait_for_state(result, "RETRY", timeout=60)
            gate.open()
            summary = result.get(timeout=120)
    finally:
        gate.close()
    assert (summary["status"], summary["rows_loaded"], result.retries >= 1) == (
        "synced",
        40,
        True,
    )


def test_transient_error_fails_once_retries_are_exhausted(
    app: Celery, scratch: Scratch, worker: Callable[..., AbstractContextManager[Any]]
) -> None:
    create_orders(scratch.source, 5)
    scratch.write_tables([ORDERS])
    closed = free_port()
    retry = {"RETRY_MAX": "2", "RETRY_BACKOFF_BASE": "0.1", "RETRY_BACKOFF_MAX": "0.2"}
    with worker(SOURCE_DB_PORT=str(closed), **retry):
        result = app.send_task("dbsync.sync_table", args=["orders"])
        with pytest.raises(Exception, match="still failing after 2 retries") as caught:
            result.get(timeout=120)
    assert (result.state, result.retries, type(caught.value).__name__) == (
        "FAILURE",
        2,
        "SyncFailed",
    )


PERMANENT = {
    "table missing from the source": (
        [{"table": "ghost", "primary_key": "id"}],
        "ghost",
        "does not exist",
    ),
    "cursor column missing from the source": (
        [{**ORDERS, "modifier": "changed_at"}],
        "orders",
        "changed_at",
    ),
    "table not listed in tables.json": ([ORDERS], "unlisted", "not listed"),
}


@pytest.mark.parametrize("case", list(PERMANENT))
def test_permanent_error_fails_at_once_without_retry(
    case: str,
    app: Celery,
    scratch: Scratch,
    worker: Callable[..., AbstractContextManager[Any]],
) -> None:
    tables, table, reason = PERMANENT[case]
    create_orders(scratch.source, 5)
    scratch.write_tables(tables)
    with worker(RETRY_MAX="5", RETRY_BACKOFF_BASE="0.1"):
        result = app.send_task("dbsync.sync_table", args=[table])
        with pytest.raises(Exception, match=reason) as caught:
            result.get(timeout=60)
    assert (result.state, result.retries, str(caught.value).startswith(f"{table}: ")) == (
        "FAILURE",
        0,
        True,
    )


# --- beat ---------------------------------------------------------------------------------


def queued_tables(client: redis.Redis, queue: str) -> list[tuple[str, str, str | None]]:
    """(task, table, expires) of every message waiting in ``queue``."""
    found = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        headers = message["headers"]
        found.append((headers["task"], args[0], headers.get("expires")))
    return found


def test_beat_enqueues_every_table_of_tables_json_with_an_expiry(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    queue = helpers.unique_name("dbsync_beat_q")
    tables = tmp_path / "tables.json"
    helpers.write_tables(
        tables,
        [
            ORDERS,
            {"table": "customers", "primary_key": "id", "interval": 1},
            {"table": "bad", "modifier": "m"},
        ],
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "REDIS_URL": REDIS_URL,
        "CELERY_QUEUE": queue,
        "TABLES_CONFIG": str(tables),
        "INTERVAL": "2",
    }
    command = [sys.executable, "-m", "celery", "-A", "beat.app", "beat", "--loglevel", "INFO",
               "--schedule", str(tmp_path / "beat-schedule")]
    beat = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = [t for _, t, _ in queued_tables(redis_client, queue)]
            if counts.count("orders") >= 2 and counts.count("customers") >= 2:
                break
            time.sleep(0.2)
    finally:
        beat.send_signal(signal.SIGTERM)
        output, _ = beat.communicate(timeout=30)
    messages = queued_tables(redis_client, queue)
    redis_client.delete(queue)
    assert {(task, table) for task, table, _ in messages} == {
        ("dbsync.sync_table", "orders"),
        ("dbsync.sync_table", "customers"),
    }, output
    assert all(expires is not None for _, _, expires in messages), messages
