"""The worker process's Runtime: built after fork, disposed on shutdown.

Prefork: every pool child builds its own engines (``worker_process_init``) and disposes them
(``worker_process_shutdown``); the parent process never opens a database connection, so
no socket is ever shared across a fork. Solo pool: the worker's only process gets
``worker_process_init`` too. Threads (and other in-process pools): ``worker_init`` builds one
Runtime shared by the threads (SQLAlchemy engines are thread-safe) and ``worker_shutdown``
disposes it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import signals

from dbsync.errors import ConfigError
from dbsync.runtime import Runtime
from dbsync.settings import load_settings
from dbsync.tables import load_tables

logger = logging.getLogger(__name__)

_runtime: Runtime | None = None
_guard = threading.Lock()

# Pools whose tasks run in forked children (each child gets worker_process_init).
_FORKING_POOLS = frozenset({"prefork", "processes"})


def start_runtime() -> Runtime:
    """This process's Runtime, built from the environment on first use."""
    global _runtime
    with _guard:
        if _runtime is None:
            settings = load_settings()
            runtime = Runtime.create(settings)
            for problem in runtime.tables.problems:
                logger.warning("tables.json entry skipped: %s", problem)
            _runtime = runtime
            logger.info(
                "engines created for this process (pool_size=%d, max_overflow=%d, tables=%d)",
                settings.pool_size,
                settings.max_overflow,
                len(runtime.tables.tables),
            )
        return _runtime


def stop_runtime() -> None:
    """Dispose this process's engines, if it has any."""
    global _runtime
    with _guard:
        if _runtime is not None:
            _runtime.dispose()
            _runtime = None
            logger.info("engines disposed for this process")


def get_runtime() -> Runtime:
    """The Runtime the signals built, or one built now (pools that send no signal)."""
    runtime = _runtime
    return runtime if runtime is not None else start_runtime()


def _pool_name(pool_cls: Any) -> str:
    name = pool_cls if isinstance(pool_cls, str) else getattr(pool_cls, "__module__", "")
    return str(name).rsplit(".", 1)[-1].rsplit(":", 1)[-1].lower()


def check_configuration() -> None:
    """Fail fast: settings and tables.json must load before the worker takes any message."""
    settings = load_settings()
    load_tables(settings.tables_config)


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    try:
        check_configuration()
    except ConfigError as exc:
        logger.critical("worker not started, invalid configuration: %s", exc)
        # SystemExit passes through Celery's signal dispatch, which swallows Exceptions.
        raise SystemExit(f"dbsync worker: invalid configuration: {exc}") from None
    if _pool_name(getattr(sender, "pool_cls", "prefork")) not in _FORKING_POOLS:
        start_runtime()


@signals.worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    start_runtime()


@signals.worker_process_shutdown.connect
def _on_worker_process_shutdown(**_: Any) -> None:
    stop_runtime()


@signals.worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    stop_runtime()
