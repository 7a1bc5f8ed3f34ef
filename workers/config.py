"""Celery configuration for the dbsync fleet: one block, every reliability setting explained.

Nothing here runs at import. ``FleetSettings`` is read from the environment when Celery first
needs its configuration (worker, beat, ``celery call``, Flower), and unlike
``dbsync.config.settings.Settings`` it does not insist on database settings: beat, Flower and
``celery call`` only talk to Redis.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from dbsync.config.settings import Settings, build_settings

TASK_NAME = "dbsync.sync_table"
CHUNK_TASK_NAME = "dbsync.copy_chunk"
# attempts to store a task's outcome while the result backend (Redis) is unreachable
RESULT_STORE_RETRIES = 30


class FleetSettings(Settings):
    """dbsync's settings plus the fleet's own; database settings are optional here."""

    celery_queue: str = Field("dbsync", min_length=1, description="queue the sync tasks use")
    sync_time_limit: int = Field(
        3600, ge=10, description="hard limit (s): the pool child running a sync is killed"
    )
    sync_soft_time_limit: int | None = Field(
        None, ge=5, description="soft limit (s): the sync is interrupted; default hard - 60"
    )
    broker_visibility_timeout: int | None = Field(
        None, ge=60, description="Redis visibility timeout (s); default hard limit + 3600"
    )
    result_expires: int = Field(7 * 24 * 3600, ge=60, description="how long results are kept")

    @model_validator(mode="after")
    def _require_databases(self) -> FleetSettings:  # replaces the parent's check on purpose
        return self

    @model_validator(mode="after")
    def _limits_in_order(self) -> FleetSettings:
        if self.soft_time_limit >= self.sync_time_limit:
            raise ValueError("SYNC_SOFT_TIME_LIMIT must be lower than SYNC_TIME_LIMIT")
        if self.visibility_timeout <= self.sync_time_limit + self.retry_backoff_max:
            raise ValueError(
                "BROKER_VISIBILITY_TIMEOUT must exceed SYNC_TIME_LIMIT + RETRY_BACKOFF_MAX, "
                "or Redis hands a message still held by a worker to a second worker"
            )
        return self

    @property
    def soft_time_limit(self) -> int:
        if self.sync_soft_time_limit is not None:
            return self.sync_soft_time_limit
        return max(self.sync_time_limit - 60, self.sync_time_limit // 2)

    @property
    def visibility_timeout(self) -> int:
        if self.broker_visibility_timeout is not None:
            return self.broker_visibility_timeout
        return self.sync_time_limit + 3600


def load_fleet_settings(**overrides: Any) -> FleetSettings:
    """Read the fleet settings from the environment, reporting every problem at once."""
    return build_settings(FleetSettings, overrides)


def celery_config(fleet: FleetSettings) -> dict[str, Any]:
    """The Celery settings shared by workers, beat, Flower and ``celery call``."""
    redis_url = fleet.redis_url.get_secret_value()
    return {
        "broker_url": redis_url,
        "result_backend": redis_url,
        # Keep retrying to reach Redis at start-up instead of exiting: the fleet may start
        # before Redis does (compose, systemd) and a worker that exits is a worker lost.
        "broker_connection_retry_on_startup": True,
        # --- serialisation -------------------------------------------------------------------
        # JSON only, both ways. Pickle would let anyone able to write to Redis run code in
        # every worker, and a task's arguments (a table name, a flag) and its summary are
        # plain data anyway; the summary is what `celery result` and Flower show.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # --- acknowledgement -----------------------------------------------------------------
        # Acknowledge a message when its task *starts*, not when it ends. On Redis an
        # unacknowledged message goes back to the queue once the visibility timeout passes;
        # with late acks a sync running longer than that would be handed to a second worker
        # while the first still runs it. Early acks make each message run at most once; a
        # message lost with a killed worker costs one interval, beat sends the next one, and
        # the table lock (a MySQL named lock) frees itself when the dead worker's connection
        # drops.
        "task_acks_late": False,
        # A pool child that dies mid-task (SIGKILL, OOM) is recorded as failed, not requeued:
        # requeueing a task that kills its worker would kill the next worker too.
        "task_reject_on_worker_lost": False,
        # --- prefetch ------------------------------------------------------------------------
        # A worker takes a message only when it has an idle process, and holds no spare one:
        # otherwise a message would wait behind a slow table on a busy worker while other
        # workers sit idle (and expire there).
        "worker_prefetch_multiplier": 1,
        "worker_disable_prefetch": True,
        # --- time limits ---------------------------------------------------------------------
        # The soft limit interrupts a runaway sync inside the library (SoftTimeLimitExceeded),
        # so it cleans up, releases its lock and reports a clear failure; the hard limit then
        # kills the pool child if the soft one was not enough, and the lock frees with its
        # connection. Both are far below the visibility timeout.
        "task_soft_time_limit": fleet.soft_time_limit,
        "task_time_limit": fleet.sync_time_limit,
        # --- Redis visibility timeout ---------------------------------------------------------
        # With early acks the only unacknowledged messages are those a worker holds before
        # running them: retries waiting for their countdown (at most RETRY_BACKOFF_MAX) and a
        # due message waiting for the worker's busy process (at most one hard time limit).
        # The timeout exceeds both, so Redis never hands such a message to a second worker
        # while the first still has it (checked by FleetSettings).
        "broker_transport_options": {"visibility_timeout": fleet.visibility_timeout},
        # --- results and monitoring -----------------------------------------------------------
        # Keep summaries for a week (Flower, `celery result`); they are small.
        "result_expires": fleet.result_expires,
        # A sync that committed is a success whatever Redis does meanwhile: when the result
        # backend is unreachable as a task ends, the worker keeps retrying to store the
        # outcome (connection errors only; full-jitter backoff from 0.5 s, at most 10 s
        # apart, 30 times: about two minutes, at most five) instead of failing at once,
        # which would make the pool record FAILURE once Redis returned. docs/fleet.md says
        # what happens after a longer outage.
        "result_backend_always_retry": True,
        "result_backend_max_retries": RESULT_STORE_RETRIES,
        "result_backend_base_sleep_between_retries_ms": 500,
        "result_backend_max_sleep_between_retries_ms": 10_000,
        # Store the task name, arguments, worker and retry count with the result: Flower and
        # the fleet test read them, and an operator can see which table a result belongs to.
        "result_extended": True,
        # Record STARTED (with the worker's hostname and the pid running it), so a running
        # sync is visible as such and not mistaken for a queued one.
        "task_track_started": True,
        # Task events feed Flower's task list.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # --- routing -------------------------------------------------------------------------
        # One named queue (CELERY_QUEUE): several fleets, or tests, can share one Redis.
        "task_default_queue": fleet.celery_queue,
        "task_create_missing_queues": True,
        "enable_utc": True,
        "timezone": "UTC",
    }
