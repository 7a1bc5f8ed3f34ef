"""Fair scheduling and truthful task states, with real Redis, beat and worker processes.

- beat never enqueues a table whose previous sync message is still queued or running;
- the order in which beat sends the tables due together changes from round to round;
- a table whose sync waits for a worker longer than its interval shows in health and in
  ``table_sync_queued_seconds``;
- a worker SIGKILLed mid-sync leaves its task STARTED; the next worker to start records it
  as failed (lost) and the table's next sync runs; dlt working directories the dead
  processes left are removed at that start.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from tests import helpers
from tests.integration.conftest import Scratch
from workers.config import celery_config, load_fleet_settings
from workers.pending import Marker, pending_for

REPO = Path(__file__).resolve().parents[2]
REDIS_DB = 11  # this module's own Redis database
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.1)


@dataclass
class Fleet:
    """Beat and worker processes of one queue, syncing one scratch pair."""

    scratch: Scratch
    tmp: Path
    queue: str = field(default_factory=lambda: helpers.unique_name("dbsync_fair_q"))
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis: redis.Redis = field(default_factory=lambda: redis.Redis.from_url(REDIS_URL))

    def env(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCE_", "TARGET_"))}
        return {
            **keep,
            **self.scratch.env(),
            "REDIS_URL": REDIS_URL,
            "CELERY_QUEUE": self.queue,
            "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / f"metrics-{len(self.processes)}"),
            **extra,
        }

    def start(self, name: str, command: list[str], **env: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", *command],
            cwd=REPO,
            env=self.env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def beat(self, interval: int) -> subprocess.Popen[bytes]:
        schedule = str(self.tmp / f"beat-{len(self.processes)}")
        command = ["-A", "beat.app", "beat", "--loglevel", "INFO", "--schedule", schedule]
        return self.start("beat", command, INTERVAL=str(interval))

    def worker(self, name: str, health_port: int, **env: str) -> subprocess.Popen[bytes]:
        command = ["-A", "workers.app", "worker", "-c", "1", "-n", f"{name}@%h",
                   "--loglevel", "INFO"]
        return self.start(name, command, HEALTH_PORT=str(health_port), **env)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> Celery:
        client = Celery("dbsync-test-client")
        settings = load_fleet_settings(redis_url=REDIS_URL, celery_queue=self.queue)
        client.conf.update(celery_config(settings))
        return client

    def queued(self) -> list[str]:
        """The table of every message waiting in the queue."""
        tables = []
        for raw in self.redis.lrange(self.queue, 0, -1):
            args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(raw)["body"]))
            tables.append(args[0])
        return tables

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if process.poll() is None:
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for process in reversed(self.processes):
            self.kill(process)
        for name in self.redis.scan_iter(match=f"*{self.queue}*"):
            self.redis.delete(name)
        self.redis.delete(self.queue)


@pytest.fixture
def fleet(scratch: Scratch, tmp_path: Path) -> Iterator[Fleet]:
    running = Fleet(scratch, tmp_path)
    yield running
    running.stop()


def create_tables(scratch: Scratch, names: list[str], interval: int | None = None) -> None:
    for name in names:
        helpers.execute(
            scratch.source,
            f"CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(20) NOT NULL, "
            "updated_at DATETIME(6) NOT NULL DEFAULT NOW(6) ON UPDATE NOW(6))",
            f"INSERT INTO {name} (id, v) SELECT seq, 'x' FROM seq_1_to_20",
        )
    entries: list[dict[str, Any]] = [
        {"table": name, "primary_key": "id", "modifier": "updated_at"} for name in names
    ]
    if interval is not None:
        for entry in entries:
            entry["interval"] = interval
    scratch.write_tables(entries)


def health(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            return json.loads(response.read())
    except OSError:
        return {}


def metric(port: int, name: str, table: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return None
    found = re.search(rf'^{name}{{table="{table}"}} (\S+)$', text, flags=re.M)
    return float(found.group(1)) if found else None


class SourceLock:
    """``LOCK TABLES ... WRITE`` on the source: every sync reading the table waits."""

    def __init__(self, database: str, table: str) -> None:
        self._conn = helpers.connect(database)
        with self._conn.cursor() as cursor:
            cursor.execute(f"LOCK TABLES {table} WRITE")

    def release(self) -> None:
        self._conn.close()


# --- fair scheduling -------------------------------------------------------------------------


def test_beat_never_enqueues_a_table_whose_message_is_still_queued(
    fleet: Fleet, scratch: Scratch
) -> None:
    create_tables(scratch, ["a", "b"])
    fleet.beat(interval=1)
    wait_for(lambda: sorted(fleet.queued()) == ["a", "b"], 60, "the first round")
    time.sleep(5)  # five more intervals, no worker
    assert sorted(fleet.queued()) == ["a", "b"]
    assert "table a not enqueued: its previous sync" in fleet.log("beat")


def test_beat_sends_the_next_sync_once_the_previous_one_ended(
    fleet: Fleet, scratch: Scratch
) -> None:
    create_tables(scratch, ["a", "b"])
    fleet.worker("w1", free_port())
    fleet.beat(interval=1)
    most_queued = 0

    def synced_three_times() -> bool:
        nonlocal most_queued
        queued = fleet.queued()
        most_queued = max(most_queued, *(queued.count(t) for t in ("a", "b")), 0)
        return fleet.log("w1").count("a synced") >= 3 and fleet.log("w1").count("b synced") >= 3

    wait_for(synced_three_times, 120, "three syncs of each table")
    assert most_queued <= 1


def send_orders(beat_log: str, tables: set[str]) -> list[tuple[str, ...]]:
    """The order of the tables in each round beat sent, from its log."""
    sent = re.findall(r"Sending due task sync:(\w+)", beat_log)
    rounds, current = [], []
    for table in sent:
        if table in current:
            rounds.append(tuple(current))
            current = []
        current.append(table)
    return [r for r in rounds if set(r) == tables]


def test_the_order_of_a_round_changes_from_round_to_round(
    fleet: Fleet, scratch: Scratch
) -> None:
    tables = ["a", "b", "c", "d", "e"]
    create_tables(scratch, tables)
    fleet.worker("w1", free_port())
    fleet.beat(interval=3)
    wait_for(lambda: len(send_orders(fleet.log("beat"), set(tables))) >= 4, 180, "four rounds")
    orders = send_orders(fleet.log("beat"), set(tables))
    assert len(set(orders)) > 1, orders


def test_a_table_waiting_for_a_worker_longer_than_its_interval_shows_in_health(
    fleet: Fleet, scratch: Scratch
) -> None:
    create_tables(scratch, ["slow", "other"], interval=2)
    port = free_port()
    lock = SourceLock(scratch.source, "slow")
    try:
        fleet.worker("w1", port)
        fleet.client().send_task("dbsync.sync_table", args=["slow"])
        wait_for(lambda: "Task dbsync.sync_table" in fleet.log("w1"), 60, "the slow sync")
        fleet.beat(interval=2)  # `other` waits behind `slow` on the only worker process
        document = wait_for(
            lambda: (h := health(port)).get("queued_tables") and h, 60, "a queued table"
        )
        waited = metric(port, "table_sync_queued_seconds", "other")
    finally:
        lock.release()
    assert [entry["table"] for entry in document["queued_tables"]] == ["other"]
    assert document["queued_tables"][0]["interval_seconds"] == 2
    assert document["queued_tables"][0]["queued_seconds"] >= 2  # rounded to 0.1 s
    assert document["status"] == "degraded"
    assert waited is not None and waited > 2


# --- truthful task states after a kill ----------------------------------------------------


def test_a_killed_workers_task_is_recorded_lost_and_the_next_sync_runs(
    fleet: Fleet, scratch: Scratch
) -> None:
    create_tables(scratch, ["t"])
    lock = SourceLock(scratch.source, "t")
    client = fleet.client()
    try:
        victim = fleet.worker("w1", free_port())
        task = client.send_task("dbsync.sync_table", args=["t"])
        wait_for(lambda: task.state == "STARTED", 60, "the sync to start")
        marker = pending_for(REDIS_URL, fleet.queue).get("t")
        assert marker is not None and marker.running  # marked before Celery says STARTED
        fleet.kill(victim, signal.SIGKILL)
        time.sleep(1)
        assert AsyncResult(task.id, app=client).state == "STARTED"
    finally:
        lock.release()
    fleet.worker("w2", free_port())
    wait_for(lambda: task.state == "FAILURE", 60, "the lost task to be recorded")
    assert "lost" in str(task.result)
    assert pending_for(REDIS_URL, fleet.queue).get("t") is None
    summary = client.send_task("dbsync.sync_table", args=["t"]).get(timeout=120)
    assert summary["status"] == "synced"


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def test_dlt_directories_of_dead_processes_are_removed_when_a_worker_starts(
    fleet: Fleet, scratch: Scratch, tmp_path: Path
) -> None:
    from dbsync.sync.pipeline import WORK_DIR_PREFIX, host_label

    create_tables(scratch, ["t"])
    work_dir = tmp_path / "work"
    dead = work_dir / f"{WORK_DIR_PREFIX}{host_label()}-{dead_pid()}-abc" / "pipeline"
    alive = work_dir / f"{WORK_DIR_PREFIX}{host_label()}-{os.getpid()}-def"
    elsewhere = work_dir / f"{WORK_DIR_PREFIX}otherhost-{dead_pid()}-ghi"
    for directory in (dead, alive, elsewhere):
        directory.mkdir(parents=True)
    fleet.worker("w1", free_port(), WORK_DIR=str(work_dir))
    wait_for(lambda: not dead.parent.exists(), 60, "the dead process's directory removed")
    assert alive.exists() and elsewhere.exists()


def test_beat_records_a_silent_workers_task_as_lost_and_sends_the_next_sync(
    fleet: Fleet, scratch: Scratch
) -> None:
    create_tables(scratch, ["t"])
    markers = pending_for(REDIS_URL, fleet.queue)
    lost_id = helpers.unique_name("lost")
    long_ago = time.time() - 3600
    dead = Marker(lost_id, "t", queued_at=long_ago, started_at=long_ago,
                  heartbeat_at=long_ago, host="a-host-that-is-gone", pid=4242, ppid=4241)
    assert markers.start(dead, 600)
    fleet.beat(interval=1)
    wait_for(lambda: fleet.queued() == ["t"], 60, "the table's next sync")
    lost = AsyncResult(lost_id, app=fleet.client())
    assert lost.state == "FAILURE"
    assert "a-host-that-is-gone:4242 died" in str(lost.result)


def test_a_long_sync_keeps_its_table_pending_through_its_heartbeat(
    fleet: Fleet, scratch: Scratch
) -> None:
    create_tables(scratch, ["t"])
    beat_env = {"LOCK_HEARTBEAT_SECONDS": "1", "LOCK_STALE_SECONDS": "10"}
    lock = SourceLock(scratch.source, "t")
    try:
        fleet.worker("w1", free_port(), **beat_env)
        task = fleet.client().send_task("dbsync.sync_table", args=["t"])
        wait_for(lambda: task.state == "STARTED", 60, "the sync to start")
        fleet.start("beat", ["-A", "beat.app", "beat", "--loglevel", "INFO", "--schedule",
                             str(fleet.tmp / "beat-long")], INTERVAL="1", **beat_env)
        time.sleep(15)  # longer than LOCK_STALE_SECONDS: only the heartbeat keeps it alive
        marker = pending_for(REDIS_URL, fleet.queue).get("t")
        queued, state = fleet.queued(), task.state
    finally:
        lock.release()
    assert state == "STARTED" and queued == []  # not reaped, no second message
    assert marker is not None and marker.task_id == task.id
    assert marker.heartbeat_at is not None and time.time() - marker.heartbeat_at < 5
    assert task.get(timeout=120)["status"] == "synced"
