"""A chunked full copy on the fleet: real Redis, MariaDB and ``celery worker`` processes.

One scenario per module (sized for a 2-core machine), three copies of one 200,000-row
incremental table in 10 chunks, each check a test:

1. the copy runs on several workers at once while writers change the source; the next
   incremental sync makes the target identical;
2. a helper worker is SIGKILLed while it copies a chunk: the copy completes identical, and
   only the chunk it held is copied twice;
3. the coordinating worker is SIGKILLed mid-copy: the helpers go on, the next task for the
   table (as beat would send it) resumes the copy and swaps it in, re-copying only the
   chunk the coordinator held.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from tests import helpers
from tests.integration.conftest import Scratch
from tests.integration.test_fleet import free_port, scratch_env
from workers.config import celery_config, load_fleet_settings

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/11"
WORKERS = 4
ROWS = 200_000
CHUNK_ROWS = 20_000
CHUNKS = ROWS // CHUNK_ROWS
LEASE_S = 4
HOST = socket.gethostname()


@dataclass
class Kill:
    """A worker killed mid-copy: which chunks it held then, and how the copy ended."""

    in_flight: set[int]
    summary: dict[str, Any]
    attempts: dict[int, int]
    identical: bool


@dataclass
class Run:
    parallel: dict[str, Any]
    chunk_spans: list[tuple[datetime, datetime, str]]
    writes: int
    incremental: dict[str, Any]
    identical_after_incremental: bool
    helper_kill: Kill
    coordinator_kill: Kill
    figures: dict[str, Any] = field(default_factory=dict)


def _chunks(scratch: Scratch) -> list[tuple]:
    return helpers.query(
        scratch.target,
        "SELECT c.chunk_no, c.state, c.worker, c.attempts, c.started_at, c.finished_at "
        "FROM _dbsync_copy_chunks c JOIN _dbsync_copies p USING (copy_id) "
        "WHERE p.table_name = 'big' AND p.state = 'copying' ORDER BY c.chunk_no",
    )


def _last_copy_attempts(scratch: Scratch) -> dict[int, int]:
    rows = helpers.query(
        scratch.target,
        "SELECT chunk_no, attempts FROM _dbsync_copy_chunks WHERE copy_id = "
        "(SELECT copy_id FROM _dbsync_copies WHERE table_name = 'big' "
        "ORDER BY started_at DESC LIMIT 1)",
    )
    return {int(n): int(a) for n, a in rows}


def _identical(scratch: Scratch) -> bool:
    return helpers.exact_rows(scratch.target, "big") == helpers.exact_rows(scratch.source, "big")


class Fleet:
    def __init__(self, client: Celery, env: dict[str, str], logs: Path) -> None:
        self.client, self.env, self.logs = client, env, logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, count: int, run: str) -> None:
        for i in range(count):
            name = f"c{i}-{run}"
            env = {**self.env, "HEALTH_PORT": str(free_port())}
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.logs / f"metrics-{i}")
            with (self.logs / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-c", "1",
                     "-n", f"{name}@%h", "--loglevel", "INFO"],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + 180
        ready: set[str] = set()
        while ready != set(self.processes):
            assert time.monotonic() < deadline, "workers not ready"
            for reply in self.client.control.ping(timeout=1.0):
                ready |= {name.split("@")[0] for name in reply} & set(self.processes)

    def sync(self, **kwargs: Any) -> AsyncResult:
        return self.client.send_task("dbsync.sync_table", args=["big"], kwargs=kwargs)

    def freeze_process_of(self, pid: int) -> None:
        """SIGSTOP the worker whose pool child is ``pid``: its connections stay open, so
        what it holds stays as it is until it is killed."""
        os.killpg(self._group_of(pid), signal.SIGSTOP)

    def thaw_process_of(self, pid: int) -> None:
        os.killpg(self._group_of(pid), signal.SIGCONT)

    def kill_process_of(self, pid: int) -> None:
        """SIGKILL the worker (parent and pool child) whose pool child is ``pid``."""
        group = self._group_of(pid)
        os.killpg(group, signal.SIGKILL)
        self.processes_by_pid()[group].wait(timeout=10)

    def _group_of(self, pid: int) -> int:
        for proc in self.processes.values():
            if proc.poll() is None and os.getpgid(pid) == proc.pid:
                return proc.pid
        raise AssertionError(f"no worker runs pid {pid}")

    def processes_by_pid(self) -> dict[int, subprocess.Popen[bytes]]:
        return {proc.pid: proc for proc in self.processes.values()}

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _coordinator_pid(result: AsyncResult) -> int:
    deadline = time.monotonic() + 120
    while result.state != "STARTED":
        assert time.monotonic() < deadline, f"the copy never started: {result.state}"
        time.sleep(0.02)
    return int(result.info["pid"])


def _wait_for_chunk(scratch: Scratch, held_by: Any, done_at_least: int = 0) -> list[tuple]:
    """Poll until a chunk is running on a worker ``held_by`` accepts; the chunk rows then."""
    deadline = time.monotonic() + 120
    while True:
        rows = _chunks(scratch)
        done = sum(1 for r in rows if r[1] == "done")
        if done >= done_at_least and any(r[1] == "running" and held_by(r[2]) for r in rows):
            return rows
        assert time.monotonic() < deadline, f"no chunk held as expected: {rows}"
        time.sleep(0.02)


def _kill_mid_copy(fleet: Fleet, scratch: Scratch, victim: str) -> Kill:
    copy = fleet.sync(full_refresh=True)
    coordinator = f"{HOST}:{_coordinator_pid(copy)}"
    if victim == "helper":
        rows = _wait_for_chunk(scratch, lambda w: w != coordinator, done_at_least=2)
        target = next(r[2] for r in rows if r[1] == "running" and r[2] != coordinator)
    else:
        rows = _wait_for_chunk(scratch, lambda w: w == coordinator, done_at_least=2)
        target = coordinator
    pid = int(target.rsplit(":", 1)[1])
    in_flight = _freeze_holding_a_chunk(fleet, scratch, pid, target)
    fleet.kill_process_of(pid)
    # a killed helper: the copy's own task ends it; a killed coordinator: the next task for
    # the table, as beat would send it
    summary = (copy if victim == "helper" else fleet.sync()).get(timeout=300)
    return Kill(in_flight, summary, _last_copy_attempts(scratch), _identical(scratch))


def _freeze_holding_a_chunk(fleet: Fleet, scratch: Scratch, pid: int, worker: str) -> set[int]:
    """Freeze ``worker`` at a moment it holds a chunk; the chunks it holds (in flight)."""
    deadline = time.monotonic() + 60
    while True:
        fleet.freeze_process_of(pid)  # what it holds now is what a kill leaves in flight
        held = {int(r[0]) for r in _chunks(scratch) if r[1] == "running" and r[2] == worker}
        if held:
            return held
        fleet.thaw_process_of(pid)  # caught between two chunks: try again
        assert time.monotonic() < deadline, "the worker never held a chunk when frozen"
        time.sleep(0.01)


def _write_during(scratch: Scratch, stop: threading.Event, counter: list[int]) -> None:
    rng = random.Random(7)
    with helpers.connect(scratch.source) as conn, conn.cursor() as cur:
        while not stop.is_set():
            key = rng.randint(1, ROWS)
            cur.execute(
                "UPDATE big SET payload = CONCAT('changed-', %s), updated_at = NOW(6) "
                "WHERE id = %s",
                (counter[0], key),
            )
            cur.execute(
                "INSERT INTO big VALUES (%s, 'inserted', NULL, NOW(6))", (ROWS + 1 + counter[0],)
            )
            counter[0] += 1
            time.sleep(0.01)


def scenario(fleet: Fleet, scratch: Scratch) -> Run:
    stop, writes = threading.Event(), [0]
    writer = threading.Thread(target=_write_during, args=(scratch, stop, writes), daemon=True)
    copy = fleet.sync(full_refresh=True)
    writer.start()
    try:
        parallel = copy.get(timeout=300)
    finally:
        stop.set()
        writer.join()
    spans = [
        (r[4], r[5], r[2])
        for r in helpers.query(
            scratch.target,
            "SELECT chunk_no, state, worker, attempts, started_at, finished_at "
            f"FROM _dbsync_copy_chunks WHERE copy_id = '{parallel['load_id']}'",
        )
    ]
    incremental = fleet.sync().get(timeout=300)
    identical = _identical(scratch)
    helper_kill = _kill_mid_copy(fleet, scratch, "helper")
    coordinator_kill = _kill_mid_copy(fleet, scratch, "coordinator")
    run = Run(
        parallel, spans, writes[0], incremental, identical, helper_kill, coordinator_kill
    )
    run.figures = {
        "rows": ROWS,
        "chunks": parallel["chunks"],
        "workers": parallel["workers"],
        "copy_s": parallel["duration_s"],
        "writes_during_copy": writes[0],
        "helper_kill_s": helper_kill.summary["duration_s"],
        "coordinator_kill_resume_s": coordinator_kill.summary["duration_s"],
    }
    print(f"\nchunked fleet figures: {run.figures}")
    return run


@pytest.fixture(scope="module")
def chunked_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    logs = tmp_path_factory.mktemp("chunked-fleet")
    name = helpers.unique_name()
    run = name.split("_")[-1]
    scratch = Scratch(f"{name}_src", f"{name}_tgt", logs / "tables.json")
    helpers.execute(
        None, f"CREATE DATABASE `{scratch.source}`", f"CREATE DATABASE `{scratch.target}`"
    )
    queue = f"dbsync_chunks_{run}"
    client = Celery("chunked-fleet-test", set_as_current=False)
    client.conf.update(celery_config(load_fleet_settings(redis_url=REDIS_URL, celery_queue=queue)))
    env = {
        **scratch_env(scratch),
        "REDIS_URL": REDIS_URL,
        "CELERY_QUEUE": queue,
        "POOL_SIZE": "2",
        "MAX_OVERFLOW": "4",
        "RESULT_EXPIRES": "3600",
        "CHUNK_ROWS": str(CHUNK_ROWS),
        "CHUNK_WORKERS": str(WORKERS),
        "CHUNK_LEASE_SECONDS": str(LEASE_S),
    }
    fleet = Fleet(client, env, logs)
    try:
        helpers.execute(
            scratch.source,
            "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(100) NOT NULL, "
            "amount DECIMAL(12,2) NULL, updated_at DATETIME(6) NOT NULL, KEY u (updated_at))",
            "INSERT INTO big SELECT seq, CONCAT('payload-', seq, '-', MD5(seq)), seq / 100, "
            f"'2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_{ROWS}",
        )
        scratch.write_tables([{"table": "big", "primary_key": "id", "modifier": "updated_at"}])
        fleet.start(WORKERS, run)
        yield scenario(fleet, scratch)
    finally:
        fleet.stop()
        redis.Redis.from_url(REDIS_URL).delete(queue, f"_kombu.binding.{queue}")
        for database in (scratch.source, scratch.target, scratch.staging):
            helpers.execute(None, f"DROP DATABASE IF EXISTS `{database}`")


def test_one_tables_chunks_run_on_several_workers_at_once(chunked_run: Run) -> None:
    assert chunked_run.parallel["status"] == "synced"
    assert chunked_run.parallel["chunks"] >= CHUNKS  # writers may add a chunk at the end
    assert len(chunked_run.parallel["workers"]) >= 2
    spans = sorted(chunked_run.chunk_spans)
    assert any(
        b[0] < a[1] and a[2] != b[2] for a in spans for b in spans if a is not b and a[0] <= b[0]
    ), spans


def test_changes_made_during_the_copy_are_in_after_the_next_incremental_sync(
    chunked_run: Run,
) -> None:
    assert chunked_run.writes > 0
    assert chunked_run.incremental["mode"] == "incremental"
    assert chunked_run.identical_after_incremental


def test_a_killed_helper_costs_only_the_chunk_it_held(chunked_run: Run) -> None:
    kill = chunked_run.helper_kill
    assert kill.summary["status"] == "synced" and kill.identical
    assert kill.in_flight and {n for n, a in kill.attempts.items() if a > 1} == kill.in_flight


def test_a_killed_coordinator_is_resumed_by_the_next_task(chunked_run: Run) -> None:
    kill = chunked_run.coordinator_kill
    assert (kill.summary["status"], kill.summary["mode"]) == ("synced", "full_refresh")
    assert kill.summary["chunks_reused"] >= 2 and kill.identical
    assert kill.in_flight and {n for n, a in kill.attempts.items() if a > 1} == kill.in_flight
