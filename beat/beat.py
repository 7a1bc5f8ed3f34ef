"""The beat scheduler: loads tables.json when beat starts and schedules every table."""

from __future__ import annotations

import logging

from celery.beat import PersistentScheduler

from beat.schedule import build_schedule
from dbsync.config.tables import load_tables
from dbsync.ops.logs import register_settings_secrets
from workers.config import load_fleet_settings

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
        tables = load_tables(fleet.tables_config)
        for problem in tables.problems:
            logger.warning("tables.json entry skipped, not scheduled: %s", problem)
        self.app.conf.beat_schedule = build_schedule(tables.tables, fleet.interval)
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
