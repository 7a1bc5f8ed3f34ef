"""The beat scheduler: loads tables.json when beat starts and schedules every table.

Fair scheduling: beat never enqueues a table whose previous sync message is still queued
or running (a pending marker per table, ``workers.pending``), so the queue holds at most one
message per table and a slow round cannot pile messages up; tables due at the same moment
are sent in a new random order every round, so none is always last in the queue.
"""

from __future__ import annotations

import logging
import random
import uuid
from typing import Any

from celery.beat import PersistentScheduler, event_t

from beat.schedule import build_schedule
from dbsync.config.tables import load_tables
from dbsync.ops.logs import register_settings_secrets
from workers import pending
from workers.config import TASK_NAME, load_fleet_settings

# tables due at the same moment are sent within this many seconds, in random order
ROUND_SHUFFLE_S = 1.0

logger = logging.getLogger(__name__)


class TablesScheduler(PersistentScheduler):
    """Celery's persistent scheduler, with ``beat_schedule`` built from tables.json.

    tables.json is read once, at start-up: restart beat after editing it. Tables that were
    never sent before are due at once, so a fresh fleet syncs right away instead of waiting
    one interval; the others keep their last run time across restarts (the schedule file).
    """

    def setup_schedule(self) -> None:
        fleet = load_fleet_settings()
        register_settings_secrets(fleet)
        self._stale_s = fleet.lock_stale_seconds
        self._pending_ttl: dict[str, int] = {}
        tables = load_tables(fleet.tables_config)
        for problem in tables.problems:
            logger.warning("tables.json entry skipped, not scheduled: %s", problem)
        self.app.conf.beat_schedule = build_schedule(tables.tables, fleet.interval)
        for entry in self.app.conf.beat_schedule.values():
            table = entry["args"][0]
            self._pending_ttl[table] = int(entry["options"]["expires"])
        super().setup_schedule()
        now = self.app.now()
        for entry in self.schedule.values():
            run_every = getattr(entry.schedule, "run_every", None)
            if entry.total_run_count == 0 and run_every is not None:
                entry.last_run_at = now - run_every
        logger.info(
            "scheduled %d tables from %s (default interval %ds, queue %s)",
            len(tables.tables),
            fleet.tables_config,
            fleet.interval,
            fleet.celery_queue,
        )

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Send a table's sync unless its previous message is still queued or running."""
        if name != TASK_NAME or not args:
            return super().send_task(name, args, kwargs, **options)
        table = str(args[0])
        markers = pending.pending_of(self.app)
        task_id = str(uuid.uuid4())
        ttl = self._pending_ttl.get(table, pending.MIN_PENDING_TTL_S)
        if not markers.claim(table, task_id, ttl) and not self._claim_after_reaping(
            markers, table, task_id, ttl
        ):
            return None
        try:
            return super().send_task(name, args, kwargs, task_id=task_id, **options)
        except BaseException:
            markers.release(table, task_id)
            raise

    def _claim_after_reaping(
        self, markers: pending.Pending, table: str, task_id: str, ttl: int
    ) -> bool:
        """The table is pending: free it if its worker died, else skip this round."""
        marker = markers.get(table)
        if marker is not None and not pending.reap(
            markers, [marker], self._stale_s, pending.mark_lost_in(self.app)
        ):
            logger.info(
                "table %s not enqueued: its previous sync (task %s) is %s",
                table,
                marker.task_id,
                pending.describe(marker),
            )
            return False
        return markers.claim(table, task_id, ttl)

    def adjust(self, n: Any, drift: float = -0.010) -> Any:
        """Next run times get a random fraction of a second: a new order every round."""
        if n and n > 0:
            return n + drift + random.uniform(0, ROUND_SHUFFLE_S)
        return n

    def populate_heap(self, *args: Any, **kwargs: Any) -> None:
        """Tables due together at start-up are sent in a random order too."""
        super().populate_heap(*args, **kwargs)
        self._heap = [event_t(when, random.random(), entry) for when, _, entry in self._heap]
        self._heap.sort(key=lambda event: (event[0], event[1]))
