"""The worker's per-process lifecycle: Runtime after fork, disposal on shutdown.

Prefork (the default pool): every pool child builds its own engines and pools
(``worker_process_init``) and disposes them (``worker_process_shutdown``); the parent never
opens a sync connection, so no socket is ever shared across a fork. Solo pool: the worker's
only process gets ``worker_process_init`` too. Threads (and other in-process pools):
``worker_init`` builds one Runtime shared by the threads (SQLAlchemy engines are
thread-safe) and ``worker_shutdown`` disposes it.

The parent process (``worker_init``) checks the configuration before any message is taken
(and exits with the list of problems if it is invalid), prepares multiprocess metrics,
starts the health endpoint and the heartbeat of the pending markers of the syncs it runs
(``workers.pending``); once connected (``worker_ready``) it records the tasks of dead
workers as lost and frees their tables. Each process that syncs wires the metrics listener
into its Runtime. Observability never stops a worker: its failures are logged and syncing
goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals

from dbsync.config.errors import ConfigError
from dbsync.config.settings import Settings, load_settings
from dbsync.config.tables import load_tables
from dbsync.ops import health_server, metrics
from dbsync.ops.logs import configure_logging, register_settings_secrets
from dbsync.sync.pipeline import remove_dead_work_dirs
from dbsync.sync.runtime import Runtime
from workers import pending
from workers.config import TASK_NAME

logger = logging.getLogger(__name__)

_runtime: Runtime | None = None
_instrumentation: metrics.Instrumentation | None = None
_health: health_server.HealthServer | None = None
_heartbeat: pending.Heartbeat | None = None
_guard = threading.Lock()

# Pools whose tasks run in forked children (each child gets worker_process_init).
_FORKING_POOLS = frozenset({"prefork", "processes"})


def start_runtime() -> Runtime:
    """This process's Runtime, built from the environment on first use."""
    global _runtime, _instrumentation
    with _guard:
        if _runtime is None:
            settings = load_settings()
            register_settings_secrets(settings)
            runtime = Runtime.create(settings)
            runtime.spread_chunks = _spread_chunks
            for problem in runtime.tables.problems:
                logger.warning("tables.json entry skipped: %s", problem)
            try:
                _instrumentation = metrics.instrument(runtime)
            except Exception:  # noqa: BLE001 - metrics must never stop a worker
                logger.exception("metrics not available in this process")
            _runtime = runtime
            logger.info(
                "engines created for this process (pool_size=%d, max_overflow=%d, tables=%d)",
                settings.pool_size,
                settings.max_overflow,
                len(runtime.tables.tables),
            )
        return _runtime


def _spread_chunks(table: str, copy_id: str, helpers: int) -> None:
    """A chunked copy's helpers are chunk tasks any worker of the fleet takes."""
    from workers.tasks import spread_chunks

    spread_chunks(table, copy_id, helpers)


def stop_runtime() -> None:
    """Dispose this process's engines (and stop its metrics threads), if it has any."""
    global _runtime, _instrumentation
    with _guard:
        if _instrumentation is not None:
            _instrumentation.stop()
            _instrumentation = None
        if _runtime is not None:
            _runtime.dispose()
            _runtime = None
            logger.info("engines disposed for this process")


def get_runtime() -> Runtime:
    """The Runtime the signals built, or one built now (pools that send no signal)."""
    runtime = _runtime
    return runtime if runtime is not None else start_runtime()


def pool_name(pool_cls: Any) -> str:
    """'prefork', 'solo', 'threads'... from Celery's pool option (a name or a class)."""
    name = pool_cls if isinstance(pool_cls, str) else getattr(pool_cls, "__module__", "")
    return str(name).rsplit(".", 1)[-1].rsplit(":", 1)[-1].lower()


def check_configuration() -> Settings:
    """Settings and tables.json must load before the worker takes any message."""
    settings = load_settings()
    load_tables(settings.tables_config)
    return settings


def _start_health(settings: Settings, app: Any) -> None:
    global _health
    try:
        metrics.setup_multiprocess(wipe=True)
        waits = pending.pending_of(app).waits if app is not None else None
        _health = health_server.start_in_background(settings, queue_waits=waits)
    except Exception:  # noqa: BLE001 - observability must never stop a worker
        logger.exception("health endpoint not started")


def _stop_health() -> None:
    global _health
    server, _health = _health, None
    if server is not None:
        server.stop()


def _start_heartbeat(settings: Settings, app: Any) -> None:
    global _heartbeat
    if app is None:
        return
    _heartbeat = pending.Heartbeat(
        app, settings.lock_heartbeat_seconds, settings.lock_stale_seconds, TASK_NAME
    ).start()


def _stop_heartbeat() -> None:
    global _heartbeat
    beat, _heartbeat = _heartbeat, None
    if beat is not None:
        beat.stop()


@signals.setup_logging.connect
def _on_setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connecting this signal stops Celery from installing its own log format.
    configure_logging(loglevel or "INFO")


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    try:
        settings = check_configuration()
    except ConfigError as exc:
        logger.critical("worker not started, invalid configuration: %s", exc)
        # SystemExit passes through Celery's signal dispatch, which swallows Exceptions.
        raise SystemExit(f"dbsync worker: invalid configuration: {exc}") from None
    register_settings_secrets(settings)
    app = getattr(sender, "app", None)
    _start_health(settings, app)
    _start_heartbeat(settings, app)
    if pool_name(getattr(sender, "pool_cls", "prefork")) not in _FORKING_POOLS:
        start_runtime()


@signals.worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    """Tasks of workers that died (this host's earlier processes, or silent ones) are
    recorded as lost, and their tables freed for their next sync; the dlt working
    directories this host's dead processes left are removed."""
    settings = load_settings()
    removed = remove_dead_work_dirs(settings.work_dir)
    if removed:
        logger.info("removed %d dlt working directories of dead processes", len(removed))
    app = getattr(sender, "app", None)
    if app is None:
        return
    try:
        reaped = pending.reap_dead(app, settings.lock_stale_seconds)
    except Exception:  # noqa: BLE001 - never stops a worker
        logger.exception("tasks of dead workers not checked")
        return
    if reaped:
        logger.info("recorded %d task(s) of dead workers as lost", len(reaped))


@signals.worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    start_runtime()


@signals.worker_process_shutdown.connect
def _on_worker_process_shutdown(pid: int | None = None, **_: Any) -> None:
    stop_runtime()
    metrics.mark_process_dead(pid)


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    stop_runtime()
    _stop_health()
    _stop_heartbeat()
