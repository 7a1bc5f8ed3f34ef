"""Soak test: the fleet (beat + 3 workers) keeps 8 tables in sync under a writer whose
transactions stay open 0-3 s, then every table is compared.

    python -m bench.soak --minutes 10 [--rows 100000] [--interval 15] [--keep]

Not part of CI: it loads the machine for as long as it runs. Scratch databases
``dbsync_soak_<id>_src``/``_tgt``, a Redis queue of their own (``SOAK_REDIS_URL``, default
database 11 on 127.0.0.1), beat and workers as plain processes (``celery -A beat.app beat``,
``celery -A workers.app worker -c 1``). The writer: ``--writers`` connections, each looping
over transactions that update a few rows, insert one and delete one, then stay open for a
random 0-3 s before committing. At the end the writer stops, every table gets one more sync,
and ``dbsync verify`` plus ``pt-table-sync --print`` (when installed) compare them. Printed:
syncs and failures (from the workers' logs), the longest gap between a table's syncs, the
freshness lag (seconds since a table's last success, sampled every 5 s) p50/p95/max, and the
workers' peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pymysql

REPO = Path(__file__).resolve().parents[1]
TABLES = 8
WORKERS = 3
SAMPLE_S = 5.0
TABLE_DDL = (
    "CREATE TABLE `{table}` (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, "
    "c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, "
    "updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) "
    "ON UPDATE CURRENT_TIMESTAMP(6), KEY (updated_at), KEY (k))"
)
FILL_SQL = (
    "INSERT INTO `{table}` (id, k, c, pad) SELECT seq, seq % 1000, "
    "RPAD(CONCAT('c-', seq), 120, 'x'), RPAD(CONCAT('p-', seq), 60, 'y') FROM seq_1_to_{rows}"
)
LOG_LINE = re.compile(r"^(\S+ \S+) - \w+ - [\w.]+ - table (\S+): (synced|sync failed)")


def connect(database: str | None = None, *, autocommit: bool = True) -> pymysql.Connection:
    return pymysql.connect(
        host=os.environ.get("SOAK_DB_HOST", "127.0.0.1"),
        port=int(os.environ.get("SOAK_DB_PORT", "3306")),
        user=os.environ.get("SOAK_DB_USER", "root"),
        password=os.environ.get("SOAK_DB_PASS", ""),
        database=database,
        autocommit=autocommit,
        charset="utf8mb4",
    )


def execute(database: str | None, *statements: str) -> None:
    with connect(database) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


@dataclass
class Writer:
    """Transactions that stay open 0-3 s: updates, one insert and one delete each."""

    database: str
    tables: list[str]
    rows: int
    threads: int
    stop: threading.Event = field(default_factory=threading.Event)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for number in range(self.threads):
            thread = threading.Thread(target=self._loop, args=(number,), daemon=True)
            thread.start()
            self._running.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self._running:
            thread.join(timeout=30)

    def _loop(self, number: int) -> None:
        rng = random.Random(number)
        conn = connect(self.database, autocommit=False)
        try:
            while not self.stop.is_set():
                try:
                    self._transaction(conn, rng)
                except pymysql.err.OperationalError as exc:  # deadlock, lock wait: retry
                    conn.rollback()
                    self._count("aborted", 1)
                    if exc.args[0] not in (1205, 1213):
                        raise
        finally:
            conn.close()

    def _transaction(self, conn: pymysql.Connection, rng: random.Random) -> None:
        table = rng.choice(self.tables)
        with conn.cursor() as cur:
            for _ in range(rng.randint(1, 4)):
                cur.execute(
                    f"UPDATE `{table}` SET k = k + 1 WHERE id = %s", (rng.randint(1, self.rows),)
                )
            cur.execute(
                f"INSERT INTO `{table}` (k, c, pad) VALUES (%s, 'soak', 'insert')",
                (rng.randint(0, 999),),
            )
            cur.execute(f"DELETE FROM `{table}` WHERE id = %s", (rng.randint(1, self.rows),))
            self.stop.wait(rng.uniform(0, 3))  # the transaction stays open
        conn.commit()
        self._count("transactions", 1)

    def _count(self, what: str, n: int) -> None:
        with self._lock:
            self.counts[what] += n


@dataclass
class Fleet:
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self) -> None:
        commands = {
            "beat": ["beat", "--schedule", str(self.logs / "celerybeat-schedule")],
            **{f"w{n}": ["worker", "-c", "1", "-n", f"soak{n}@%h"] for n in range(WORKERS)},
        }
        for name, args in commands.items():
            app = "beat.app" if name == "beat" else "workers.app"
            with (self.logs / f"{name}.log").open("wb") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", app, *args, "--loglevel", "INFO"],
                    cwd=REPO,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def workers(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.processes.items() if n != "beat" and p.poll() is None}

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def rss_mb(group: int) -> float:
    """Resident memory of a process group (a prefork worker: parent and child), in MB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


@dataclass
class Samples:
    freshness: list[float] = field(default_factory=list)
    memory: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def take(self, target: str, fleet: Fleet) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            with connect(target) as conn, conn.cursor() as cur:
                cur.execute("SELECT last_success_at FROM _dbsync_status")
                rows = cur.fetchall()
        except pymysql.err.MySQLError:
            rows = ()
        self.freshness += [(now - r[0]).total_seconds() for r in rows if r[0] is not None]
        for name, pid in fleet.workers().items():
            self.memory[name].append(rss_mb(pid))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def sync_log(logs: Path) -> dict[str, list[tuple[datetime, str]]]:
    """Per table, (time, 'synced' | 'sync failed') of every sync the workers logged."""
    events: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for path in logs.glob("w*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if found := LOG_LINE.match(line):
                moment = datetime.fromisoformat(found.group(1).replace(",", "."))
                events[found.group(2)].append((moment, found.group(3)))
    return {table: sorted(found) for table, found in events.items()}


def wait_for_final_syncs(target: str, tables: list[str], since: datetime, timeout: float) -> None:
    """Until every table has a sync that started after ``since`` and succeeded."""
    deadline = time.monotonic() + timeout
    naive = since.astimezone(UTC).replace(tzinfo=None)
    while time.monotonic() < deadline:
        with connect(target) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM _dbsync_status WHERE status = 'synced' "
                "AND last_started_at > %s",
                (naive,),
            )
            done = {r[0] for r in cur.fetchall()}
        if set(tables) <= done:
            return
        time.sleep(2)
    raise RuntimeError(f"soak: tables without a final sync: {sorted(set(tables) - done)}")


def pt_table_sync(source: str, target: str, tables: list[str]) -> str:
    if shutil.which("pt-table-sync") is None:
        return "pt-table-sync not installed"
    host = os.environ.get("SOAK_DB_HOST", "127.0.0.1")
    differing = []
    for table in tables:
        done = subprocess.run(
            [
                "pt-table-sync",
                "--print",
                f"h={host},u=root,D={source},t={table}",
                f"h={host},u=root,D={target},t={table}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        statements = [line for line in done.stdout.splitlines() if line.strip()]
        if done.returncode not in (0, 2) or statements:
            differing.append(f"{table}: {len(statements)} statement(s) {done.stderr.strip()[:200]}")
    return "identical" if not differing else "; ".join(differing)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rows", type=int, default=100_000, help="rows per table")
    parser.add_argument("--interval", type=int, default=15, help="INTERVAL of beat (seconds)")
    parser.add_argument("--writers", type=int, default=4, help="writer connections")
    parser.add_argument("--keep", action="store_true", help="keep databases and logs")
    return parser.parse_args()


def fleet_env(source: str, target: str, tables_path: Path, queue: str, interval: int) -> dict:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOURCE_DB_", "TARGET_DB_", "TABLES_CONFIG", "CELERY_", "REDIS_"))
    }
    host, user = os.environ.get("SOAK_DB_HOST", "127.0.0.1"), os.environ.get("SOAK_DB_USER", "root")
    return {
        **keep,
        **{
            f"{side}_DB_{k}": v
            for side in ("SOURCE", "TARGET")
            for k, v in (
                ("HOST", host),
                ("USER", user),
                ("PASS", os.environ.get("SOAK_DB_PASS", "")),
            )
        },
        "SOURCE_DB_NAME": source,
        "TARGET_DB_NAME": target,
        "TABLES_CONFIG": str(tables_path),
        "REDIS_URL": os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/11"),
        "CELERY_QUEUE": queue,
        "INTERVAL": str(interval),
        "POOL_SIZE": "4",
        "MAX_OVERFLOW": "4",
        "PYTHONPATH": str(REPO),
    }


def main() -> int:
    args = parse_args()
    run = f"dbsync_soak_{uuid.uuid4().hex[:8]}"
    source, target = f"{run}_src", f"{run}_tgt"
    tmp = Path(tempfile.mkdtemp(prefix="dbsync_soak_"))
    tables = [f"sbtest{n}" for n in range(1, TABLES + 1)]
    execute(None, f"CREATE DATABASE `{source}`", f"CREATE DATABASE `{target}`")
    for table in tables:
        execute(source, TABLE_DDL.format(table=table), FILL_SQL.format(table=table, rows=args.rows))
    tables_path = tmp / "tables.json"
    tables_path.write_text(
        json.dumps([{"table": t, "primary_key": "id", "modifier": "updated_at"} for t in tables])
    )
    env = fleet_env(source, target, tables_path, run, args.interval)
    fleet, writer, samples = (
        Fleet(env, tmp),
        Writer(source, tables, args.rows, args.writers),
        Samples(),
    )
    print(
        f"soak {run}: {TABLES} tables x {args.rows:,} rows, {WORKERS} workers, interval "
        f"{args.interval}s, {args.writers} writers, {args.minutes} min; logs {tmp}",
        flush=True,
    )
    try:
        fleet.start()
        writer.start()
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(SAMPLE_S)
            samples.take(target, fleet)
        writer.finish()
        stopped = datetime.now(UTC)
        wait_for_final_syncs(target, tables, stopped, timeout=6 * args.interval + 120)
        fleet.stop()
        verify = subprocess.run(
            [sys.executable, "-m", "dbsync.cli", "verify"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        report(
            args,
            tables,
            writer,
            samples,
            sync_log(tmp),
            verify,
            pt_table_sync(source, target, tables),
        )
        return 0 if verify.returncode == 0 else 1
    finally:
        writer.finish()
        fleet.stop()
        if not args.keep:
            for database in (source, target, f"{target}_staging"):
                execute(None, f"DROP DATABASE IF EXISTS `{database}`")
            shutil.rmtree(tmp, ignore_errors=True)


def _all(memory: dict[str, list[float]]) -> list[float]:
    return [v for values in memory.values() for v in values]


def report(
    args: argparse.Namespace,
    tables: list[str],
    writer: Writer,
    samples: Samples,
    events: dict[str, list[tuple[datetime, str]]],
    verify: subprocess.CompletedProcess[str],
    pt: str,
) -> None:
    syncs = sum(1 for found in events.values() for _, what in found if what == "synced")
    failures = sum(1 for found in events.values() for _, what in found if what != "synced")
    gaps = {}
    for table in tables:
        moments = [m for m, what in events.get(table, []) if what == "synced"]
        gaps[table] = (
            max((b - a).total_seconds() for a, b in zip(moments, moments[1:], strict=False))
            if len(moments) > 1
            else None
        )
    worst = max((g for g in gaps.values() if g is not None), default=None)
    peaks = {name: max(values) for name, values in samples.memory.items() if values}
    print(f"writer: {dict(writer.counts)}")
    print(
        f"syncs: {syncs}, failures: {failures}, per table: "
        + ", ".join(f"{t} {sum(1 for _, w in events.get(t, []) if w == 'synced')}" for t in tables)
    )
    print(
        f"longest gap between a table's syncs: {worst:.1f}s "
        f"(limit 2 x interval = {2 * args.interval}s)"
        if worst is not None
        else "gaps: n/a"
    )
    fresh = samples.freshness
    print(
        f"freshness lag (s): p50 {percentile(fresh, 0.5):.1f}, p95 {percentile(fresh, 0.95):.1f}, "
        f"max {max(fresh, default=0):.1f} over {len(fresh)} samples"
    )
    print(
        "worker peak RSS (MB): "
        + ", ".join(f"{n} {v:.0f}" for n, v in sorted(peaks.items()))
        + (
            f"; median sample {statistics.median(_all(samples.memory)):.0f}"
            if samples.memory
            else ""
        )
    )
    print(f"dbsync verify: exit {verify.returncode}")
    print(verify.stdout.strip()[-2000:])
    print(f"pt-table-sync --print: {pt}")


if __name__ == "__main__":
    sys.exit(main())
