"""A sync that committed is a Celery SUCCESS, even when Redis is down as the task ends.

A real ``celery -A workers.app worker`` process and a Redis server of the test's own (the
shared one is never stopped): the task's sync is held at its swap by a session holding the
target table, Redis is stopped, the holder lets go so the sync commits while Redis is away,
and Redis comes back half a minute after the task ended. (Before the result backend retried,
the store failed at once and the pool recorded FAILURE as soon as Redis was back.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from dbsync.sync.run import run_sync
from tests import helpers
from tests.integration.conftest import Scratch
from workers.config import celery_config, load_fleet_settings

REPO = Path(__file__).resolve().parents[2]
# well past the end of the task, and past the Redis client's own reconnect attempts
REDIS_DOWN_AFTER_COMMIT_S = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server on a free port, stopped and restarted by pid."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(_free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def worker_env(scratch: Scratch, own_redis: RedisServer, tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SOURCE_", "TARGET_"))},
        **scratch.env(),
        "REDIS_URL": own_redis.url,
        "CELERY_QUEUE": helpers.unique_name("dbsync_results_q"),
        "HEALTH_PORT": str(_free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "TARGET_LOCK_WAIT_TIMEOUT": "1",
    }


@pytest.fixture
def celery_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "-c",
                "1",
                "--loglevel",
                "INFO",
            ],
            cwd=REPO,
            env=worker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield log
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _client(worker_env: dict[str, str]) -> Celery:
    settings = load_fleet_settings(
        redis_url=worker_env["REDIS_URL"], celery_queue=worker_env["CELERY_QUEUE"]
    )
    client = Celery("dbsync-test-client")
    client.conf.update(celery_config(settings))
    return client


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout}s"
        time.sleep(0.1)


def _swap_waiting(database: str) -> bool:
    return bool(
        helpers.query(
            None,
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = %s "
            "AND STATE = 'Waiting for table metadata lock' AND INFO LIKE 'RENAME%%'",
            (database,),
        )
    )


def _synced_since(database: str, moment: float) -> bool:
    rows = helpers.query(
        database,
        "SELECT status, UNIX_TIMESTAMP(last_finished_at) FROM _dbsync_status "
        "WHERE table_name = 't'",
    )
    return bool(rows) and rows[0][0] == "synced" and float(rows[0][1]) >= moment


def _final_state(result: AsyncResult, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result.state in ("SUCCESS", "FAILURE"):
                return str(result.state)
        except redis.exceptions.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"task still {result.state} after {timeout}s"
        time.sleep(0.2)


def test_a_committed_sync_is_a_success_although_redis_was_down_when_it_ended(
    scratch: Scratch,
    runtime_factory,
    own_redis: RedisServer,
    worker_env: dict[str, str],
    celery_worker: Path,
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)",
        "INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_100",
    )
    scratch.write_tables([{"table": "t", "primary_key": "id", "strategy": "replace"}])
    assert run_sync(runtime_factory(), "t").status == "synced"
    client = _client(worker_env)
    holder = helpers.connect(scratch.target)
    try:
        with holder.cursor() as cur:
            cur.execute("START TRANSACTION")
            cur.execute("SELECT COUNT(*) FROM t")
        result = client.send_task("dbsync.sync_table", args=["t"])
        _wait_for(lambda: _swap_waiting(scratch.target), 120, "the swap waiting for the holder")
        own_redis.stop()
        released = time.time() - 1
        holder.commit()
        _wait_for(lambda: _synced_since(scratch.target, released), 60, "the commit")
        time.sleep(REDIS_DOWN_AFTER_COMMIT_S)
        own_redis.start()

        state = _final_state(result, timeout=240)
    finally:
        holder.close()

    assert state == "SUCCESS", celery_worker.read_text()[-3000:]
    assert result.result["status"] == "synced"
