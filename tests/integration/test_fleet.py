"""The fleet: 10 worker OS processes, 31 tables, duplicates, one worker killed mid-sync.

Real Redis, real MariaDB, real ``celery -A workers.app worker -c 1`` processes. Tasks are
enqueued the way ``celery call`` does it (``send_task`` by name), every table several times
over. The scenario runs once per module (``fleet_run``); each test checks one of its claims:

- every table ends synced and ``dbsync verify`` finds no difference;
- the start and end times recorded in the task results show that no table was ever synced
  by two processes at once;
- a worker killed with SIGKILL in the middle of the large table's sync leaves the target
  table intact, and the next task for it syncs it on another worker within two minutes.

Run it with ``pytest -m fleet -s`` to see its figures (tables, workers, wall time, kills).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import AsyncResult

from tests import helpers
from tests.integration.conftest import Scratch
from workers.config import celery_config, load_fleet_settings

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
DBSYNC = str(Path(sys.executable).with_name("dbsync"))
REDIS_DB = 12  # the fleet test's own Redis database
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
WORKERS = 10
SMALL_TABLES = 30
BIG_ROWS = 300_000
REPAIR_WITHIN = timedelta(minutes=2)
# Settings a developer's shell may carry that must not reach the fleet under test.
FOREIGN_ENV = ("SOURCE_DB_", "TARGET_DB_", "STAGING_DB_", "POOL_", "TABLES_CONFIG", "RETRY_")

Interval = tuple[datetime, datetime, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sync:
    """One task sent to the fleet, and its summary once it ended."""

    table: str
    result: AsyncResult
    summary: dict[str, Any] | None = None


@dataclass
class Fleet:
    client: Celery
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    sent: list[Sync] = field(default_factory=list)

    def send(self, table: str, **kwargs: Any) -> Sync:
        sync = Sync(table, self.client.send_task("dbsync.sync_table", args=[table], kwargs=kwargs))
        self.sent.append(sync)
        return sync

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        expected = set(self.processes)
        ready: set[str] = set()
        while ready != expected:
            crashed = [n for n, p in self.processes.items() if p.poll() is not None]
            assert not crashed, f"workers exited at start-up: {crashed}"
            assert time.monotonic() < deadline, f"workers not ready: {sorted(expected - ready)}"
            for reply in self.client.control.ping(timeout=1.0):
                ready |= {name.split("@")[0] for name in reply} & expected

    @staticmethod
    def finish(syncs: list[Sync], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for sync in syncs:
            value = sync.result.get(timeout=max(deadline - time.monotonic(), 1), propagate=False)
            if sync.result.successful():
                sync.summary = value
            else:  # a failed sync's summary travels in its SyncFailed; the scenario goes on
                failed = getattr(value, "summary", None)
                sync.summary = failed or {"status": f"task {sync.result.state}: {value!r}"}


@dataclass
class FleetRun:
    """What the scenario recorded."""

    tables: list[str]
    sent: list[Sync]
    runs: dict[str, list[Interval]]
    big_rows_after_kill: int
    killed_pid: int
    next_task_at: datetime
    repair: dict[str, Any]
    verify: subprocess.CompletedProcess[str]
    figures: dict[str, Any]


def create_source(database: str) -> list[dict[str, Any]]:
    """30 small tables (half incremental, half full refresh) and one large one."""
    statements, tables = [], []
    for i in range(SMALL_TABLES):
        name, rows = f"t{i:02d}", 100 + 37 * i
        statements += [
            f"CREATE TABLE {name} (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, "
            "amount DECIMAL(12,2) NULL, updated_at DATETIME(6) NOT NULL)",
            f"INSERT INTO {name} SELECT seq, CONCAT('{name}-', seq), seq * 1.25, "
            f"'2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}",
        ]
        entry: dict[str, Any] = {"table": name, "primary_key": "id"}
        if i % 2 == 0:
            entry["modifier"] = "updated_at"
        tables.append(entry)
    statements += [
        "CREATE TABLE big (id INT PRIMARY KEY, payload VARCHAR(100) NOT NULL, "
        "amount DECIMAL(12,2) NULL, updated_at DATETIME(6) NOT NULL)",
        "INSERT INTO big SELECT seq, CONCAT('payload-', seq, '-', MD5(seq)), seq / 100, "
        f"'2024-01-01' + INTERVAL seq SECOND FROM seq_1_to_{BIG_ROWS}",
    ]
    tables.append({"table": "big", "primary_key": "id", "modifier": "updated_at"})
    helpers.execute(database, *statements)
    return tables


def change_source(database: str) -> None:
    """Updates and inserts in every table, for the second round of syncs."""
    statements = [
        "UPDATE big SET payload = CONCAT(payload, '-v2'), updated_at = NOW(6) WHERE id % 10 = 0",
        "INSERT INTO big SELECT seq, CONCAT('new-', seq), NULL, NOW(6) "
        f"FROM seq_{BIG_ROWS + 1}_to_{BIG_ROWS + 5000}",
    ]
    for i in range(SMALL_TABLES):
        statements += [
            f"UPDATE t{i:02d} SET amount = amount + 1, updated_at = NOW(6) WHERE id % 7 = 0",
            f"INSERT INTO t{i:02d} VALUES (100000, 'late row', NULL, NOW(6))",
        ]
    helpers.execute(database, *statements)


def wait_for_copy_in_flight(scratch: Scratch, deadline: float) -> None:
    """Until the big table's copy is reading the source or bulk-loading staging: killed
    then, it is surely mid-copy, however fast or slow the machine is today."""
    sql = (
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
        "AND (INFO LIKE %s OR INFO LIKE %s)"
    )
    patterns = (f"SELECT %`{scratch.source}`.`big`%", f"LOAD DATA %`{scratch.staging}`.`big`%")
    while helpers.query(None, sql, patterns)[0][0] == 0:
        assert time.monotonic() < deadline, "the big table's copy never reached its rows"
        time.sleep(0.02)


def overlapping(intervals: list[Interval]) -> list[tuple[str, str]]:
    """Pairs of syncs of one table whose [start, end] intervals intersect."""
    ordered = sorted(intervals)
    return [(a[2], b[2]) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1]]


def start_workers(fleet: Fleet, env: dict[str, str], run: str, logs: Path) -> None:
    for i in range(WORKERS):
        name = f"w{i}-{run}"
        worker_env = {
            **env,
            "HEALTH_PORT": str(free_port()),
            "PROMETHEUS_MULTIPROC_DIR": str(logs / f"metrics-{i}"),
        }
        with (logs / f"{name}.log").open("wb") as log:
            fleet.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-c", "1",
                 "-n", f"{name}@%h", "--loglevel", "INFO"],
                cwd=REPO, env=worker_env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: the parent and its pool child
            )


def stop_workers(fleet: Fleet) -> None:
    for proc in fleet.processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in fleet.processes.values():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def scenario(
    fleet: Fleet, scratch: Scratch, tables: list[dict[str, Any]], began: float
) -> FleetRun:
    names = [t["table"] for t in tables]
    small = [n for n in names if n != "big"]
    fleet.wait_ready(timeout=180)
    ready_s = time.monotonic() - began

    # Round 1: every table, each small one twice in a row (duplicates).
    first_big = fleet.send("big")
    round_one = [first_big] + [fleet.send(t) for t in small for _ in range(2)]
    Fleet.finish(round_one, timeout=300)
    assert first_big.summary is not None and first_big.summary["status"] == "synced"

    # Round 2: the source changed; the big table's full refresh is killed a third of the way.
    change_source(scratch.source)
    doomed = fleet.send("big", full_refresh=True)
    round_two = [fleet.send(t) for t in small for _ in range(2)]
    deadline = time.monotonic() + 120
    while doomed.result.state != "STARTED":
        assert time.monotonic() < deadline, f"big never started: {doomed.result.state}"
        time.sleep(0.05)
    doomed_seen = datetime.now(UTC)
    holder = dict(doomed.result.info)  # {'pid': the pool child, 'hostname': 'wN-run@host'}
    wait_for_copy_in_flight(scratch, deadline)
    assert doomed.result.state == "STARTED", "the big sync ended before it could be killed"
    victim = holder["hostname"].split("@")[0]
    os.killpg(fleet.processes[victim].pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    fleet.processes[victim].wait(timeout=10)
    big_rows_after_kill = helpers.query(scratch.target, "SELECT COUNT(*) FROM big")[0][0]

    # The next task for the big table, as beat would send it; re-sent while skipped.
    next_task_at = datetime.now(UTC)
    repair = fleet.send("big")
    Fleet.finish([repair], timeout=REPAIR_WITHIN.total_seconds())
    while repair.summary and repair.summary["status"] == "skipped":
        assert datetime.now(UTC) - next_task_at < REPAIR_WITHIN, "big still locked"
        time.sleep(2)
        repair = fleet.send("big")
        Fleet.finish([repair], timeout=REPAIR_WITHIN.total_seconds())
    Fleet.finish(round_two, timeout=300)
    verify = subprocess.run(
        [DBSYNC, "verify"], cwd=scratch.tables_path.parent, env=scratch_env(scratch),
        capture_output=True, text=True, timeout=300,
    )

    # Every sync that held its table's lock (synced or failed; a skipped one never held it),
    # from acquiring the lock to just before releasing it: the work before the lock (reading
    # tables.json, choosing the mode) and after it may overlap another sync's, the held part not.
    runs: dict[str, list[Interval]] = defaultdict(list)
    for sync in fleet.sent:
        if sync.summary and sync.summary["held_from"]:
            runs[sync.table].append(
                (
                    datetime.fromisoformat(sync.summary["held_from"]),
                    datetime.fromisoformat(sync.summary["held_until"]),
                    f"{sync.result.id} on {sync.summary['worker']}",
                )
            )
    # The killed sync ran from before it was seen STARTED until the kill.
    runs["big"].append((doomed_seen, killed_at, f"{doomed.result.id} killed on {victim}"))
    statuses = [s.summary["status"] for s in fleet.sent if s.summary]
    failures = [s.summary for s in fleet.sent if s.summary and s.summary["status"] != "synced"
                and s.summary["status"] != "skipped"]
    assert repair.summary is not None
    figures = {
        "tables": len(names),
        "workers": WORKERS,
        "tasks_sent": len(fleet.sent),
        "synced": statuses.count("synced"),
        "skipped": statuses.count("skipped"),
        "failed": len(failures),
        "kills_survived": 1,
        "workers_ready_s": round(ready_s, 1),
        "big_sync_s": first_big.summary["duration_s"],
        "repair_s": round(
            (datetime.fromisoformat(repair.summary["finished_at"]) - next_task_at)
            .total_seconds(), 1
        ),
        "wall_s": round(time.monotonic() - began, 1),
    }
    print(f"\nfleet figures: {figures}")
    return FleetRun(
        tables=names,
        sent=fleet.sent,
        runs=dict(runs),
        big_rows_after_kill=big_rows_after_kill,
        killed_pid=int(holder["pid"]),
        next_task_at=next_task_at,
        repair=repair.summary,
        verify=verify,
        figures=figures,
    )


def scratch_env(scratch: Scratch) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    return {**inherited, **scratch.env()}


@pytest.fixture(scope="module")
def fleet_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetRun]:
    logs = tmp_path_factory.mktemp("fleet")
    name = helpers.unique_name()
    run = name.split("_")[-1]
    scratch = Scratch(f"{name}_src", f"{name}_tgt", logs / "tables.json")
    helpers.execute(
        None, f"CREATE DATABASE `{scratch.source}`", f"CREATE DATABASE `{scratch.target}`"
    )
    queue = f"dbsync_fleet_{run}"
    client = Celery("fleet-test", set_as_current=False)
    client.conf.update(celery_config(load_fleet_settings(redis_url=REDIS_URL, celery_queue=queue)))
    fleet = Fleet(client=client)
    env = {
        **scratch_env(scratch),
        "REDIS_URL": REDIS_URL,
        "CELERY_QUEUE": queue,
        "POOL_SIZE": "2",
        "MAX_OVERFLOW": "4",
        "RESULT_EXPIRES": "3600",
    }
    try:
        tables = create_source(scratch.source)
        scratch.write_tables(tables)
        began = time.monotonic()
        start_workers(fleet, env, run, logs)
        yield scenario(fleet, scratch, tables, began)
    finally:
        stop_workers(fleet)
        redis.Redis.from_url(REDIS_URL).delete(queue, f"_kombu.binding.{queue}")
        for database in (scratch.source, scratch.target, scratch.staging):
            helpers.execute(None, f"DROP DATABASE IF EXISTS `{database}`")


def test_every_table_ends_synced_and_verified_clean(fleet_run: FleetRun) -> None:
    verify = fleet_run.verify
    clean = sorted(line.split(":")[0] for line in verify.stdout.splitlines() if ": OK " in line)
    report = verify.stdout + verify.stderr
    assert (verify.returncode, clean) == (0, sorted(fleet_run.tables)), report


def test_no_table_was_ever_synced_by_two_processes_at_once(fleet_run: FleetRun) -> None:
    assert all(len(fleet_run.runs[t]) >= 2 for t in fleet_run.tables)  # two rounds each
    clashes = {t: overlapping(r) for t, r in fleet_run.runs.items() if overlapping(r)}
    assert clashes == {}


def test_duplicate_tasks_end_synced_or_skipped_never_failed(fleet_run: FleetRun) -> None:
    ended = [s.summary for s in fleet_run.sent if s.summary is not None]
    assert len(ended) == len(fleet_run.sent) - 1  # all but the killed one ended
    assert [e for e in ended if e["status"] not in ("synced", "skipped")] == []


def test_worker_killed_mid_sync_leaves_the_previous_copy_in_place(fleet_run: FleetRun) -> None:
    assert fleet_run.big_rows_after_kill == BIG_ROWS


def test_next_task_syncs_the_killed_table_on_another_worker_within_two_minutes(
    fleet_run: FleetRun,
) -> None:
    repair = fleet_run.repair
    took = datetime.fromisoformat(repair["finished_at"]) - fleet_run.next_task_at
    assert (repair["status"], repair["rows_extracted"] > 0, took < REPAIR_WITHIN) == (
        "synced",
        True,
        True,
    )
    assert repair["worker"] != f"{socket.gethostname()}:{fleet_run.killed_pid}"
