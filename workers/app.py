"""The Celery application of the worker fleet: ``celery -A workers.app worker``.

Importing this module reads no environment variable and connects nowhere: the configuration
(``workers.config``) is computed when Celery first needs it, and each worker process builds
its database engines after fork (``workers.worker``).
"""

from __future__ import annotations

from celery import Celery

from workers.config import celery_config, load_fleet_settings

app = Celery("dbsync", include=["workers.tasks"])
# A callable is a promise: Celery calls it on first access to app.conf, not at import.
app.add_defaults(lambda: celery_config(load_fleet_settings()))
