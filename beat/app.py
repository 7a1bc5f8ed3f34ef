"""The Celery application of the scheduler: ``celery -A beat.app beat``.

It shares the workers' broker configuration and sends ``dbsync.sync_table`` by name, so it
imports neither the task code nor dlt, and needs no database settings: only REDIS_URL,
CELERY_QUEUE, INTERVAL and TABLES_CONFIG.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from dbsync.ops.logs import configure_logging
from workers.config import celery_config, load_fleet_settings


def _config() -> dict[str, Any]:
    return {
        **celery_config(load_fleet_settings()),
        "beat_scheduler": "beat.beat:TablesScheduler",
    }


app = Celery("dbsync-beat")
# A callable is a promise: evaluated when beat first reads its configuration, not at import.
app.add_defaults(_config)


@signals.setup_logging.connect
def _on_setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connecting this signal stops Celery from installing its own log format.
    configure_logging(loglevel or "INFO")
