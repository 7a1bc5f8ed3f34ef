"""A fleet of Celery worker processes for the chunked-copy measurements.

``celery -A workers.app worker -c 1`` processes on the benchmark's databases and a queue of
their own on Redis (``BENCH_REDIS_URL``, default database 10 on 127.0.0.1), started once
and reused by every repeat. Each measured copy is one ``dbsync.sync_table`` task timed from
sending to its result; its coordinator fans the chunks out to the other workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import db

REPO = Path(__file__).resolve().parents[1]
LEASE_S = 10  # CHUNK_LEASE_SECONDS of the benchmark fleet: what a killed helper costs at most


@dataclass
class Fleet:
    env: dict[str, str]
    logs: Path
    workers: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    queue: str = field(default_factory=lambda: f"dbsync_bench_{uuid.uuid4().hex[:8]}")
    _client: Any = None

    @property
    def redis_url(self) -> str:
        return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")

    def client(self) -> Any:
        if self._client is None:
            from celery import Celery

            from workers.config import celery_config, load_fleet_settings

            self._client = Celery("bench", set_as_current=False)
            settings = load_fleet_settings(redis_url=self.redis_url, celery_queue=self.queue)
            self._client.conf.update(celery_config(settings))
        return self._client

    def worker_env(self) -> dict[str, str]:
        return {
            **self.env,
            "REDIS_URL": self.redis_url,
            "CELERY_QUEUE": self.queue,
            "POOL_SIZE": "2",
            "MAX_OVERFLOW": "4",
            "CHUNK_WORKERS": str(self.workers),
            "CHUNK_LEASE_SECONDS": str(LEASE_S),
            "PYTHONPATH": str(REPO),
        }

    def start(self) -> None:
        while len([p for p in self.processes if p.poll() is None]) < self.workers:
            name = f"b{len(self.processes)}-{self.queue}"
            with (self.logs / f"{name}.log").open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-c",
                         "1", "-n", f"{name}@%h", "--loglevel", "INFO"],
                        cwd=REPO, env=self.worker_env(), stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        self._wait_ready()

    def _wait_ready(self) -> None:
        alive = {p.pid for p in self.processes if p.poll() is None}
        deadline = time.monotonic() + 180
        while True:
            replies = self.client().control.ping(timeout=1.0)
            if len(replies) >= len(alive):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"bench fleet: {len(replies)} of {len(alive)} workers ready")

    def copy(self, table: str) -> Any:
        return self.client().send_task("dbsync.sync_table", args=[table],
                                       kwargs={"full_refresh": True})

    def kill_helper_halfway(self, server: db.Server, target_db: str, result: Any) -> None:
        """SIGKILL a worker copying a chunk for someone else once half the chunks are done."""
        deadline = time.monotonic() + 600
        while result.state != "STARTED":
            if result.ready():
                raise RuntimeError("bench fleet: the copy ended before it could be watched")
            time.sleep(0.02)
        coordinator = int(result.info["pid"])
        while time.monotonic() < deadline and not result.ready():
            rows = db.query(
                server, target_db,
                "SELECT c.state, c.worker FROM _dbsync_copy_chunks c JOIN _dbsync_copies p "
                "USING (copy_id) WHERE p.state = 'copying'",
            )
            done = sum(1 for r in rows if r[0] == "done")
            helpers = [int(r[1].rsplit(":", 1)[1]) for r in rows
                       if r[0] == "running" and not r[1].endswith(f":{coordinator}")]
            if rows and done * 2 >= len(rows) and helpers:
                os.killpg(os.getpgid(helpers[0]), signal.SIGKILL)
                return
            time.sleep(0.02)
        raise RuntimeError("bench fleet: no helper to kill (is the table over CHUNK_ROWS?)")

    def peak_rss_mb(self) -> float | None:
        """The largest peak RSS (VmHWM) of any live worker process."""
        groups = {p.pid for p in self.processes if p.poll() is None}
        peaks = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[2]) not in groups:
                    continue
                for line in (entry / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
            except (OSError, IndexError, ValueError):
                continue
        return max(peaks) if peaks else None

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._client is not None:
            import redis

            redis.Redis.from_url(self.redis_url).delete(self.queue, f"_kombu.binding.{self.queue}")
