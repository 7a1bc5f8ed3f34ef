"""The beat schedule, built from tables.json by a pure function."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from dbsync.config.tables import TableConfig
from workers.config import TASK_NAME
from workers.pending import pending_ttl_s

ENTRY_PREFIX = "sync:"


def entry_name(table: str) -> str:
    return f"{ENTRY_PREFIX}{table}"


def table_interval(config: TableConfig, default_interval: int) -> int:
    """Seconds between syncs of a table: its own ``interval``, else INTERVAL."""
    return config.interval if config.interval is not None else default_interval


def build_schedule(
    tables: Iterable[TableConfig], default_interval: int
) -> dict[str, dict[str, Any]]:
    """One ``dbsync.sync_table`` entry per table, for Celery's ``beat_schedule``.

    Beat sends a table's next message only once the previous one ended (its pending marker,
    ``workers.pending``), so messages never pile up. Each message expires with its table's
    pending marker (``PENDING_INTERVALS`` intervals, at least a minute): a message that
    waited that long is dropped and the table's next one is sent; long before that the
    wait shows in health and metrics.
    """
    if default_interval < 1:
        raise ValueError(f"default_interval must be >= 1 second, not {default_interval}")
    schedule: dict[str, dict[str, Any]] = {}
    for config in tables:
        seconds = table_interval(config, default_interval)
        schedule[entry_name(config.table)] = {
            "task": TASK_NAME,
            "schedule": timedelta(seconds=seconds),
            "args": (config.table,),
            "options": {"expires": float(pending_ttl_s(seconds))},
        }
    return schedule
