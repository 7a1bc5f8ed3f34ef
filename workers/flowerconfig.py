"""Flower configuration for the dbsync fleet, read by ``--conf`` (Flower executes it).

``celery -A workers.app flower --conf=workers/flowerconfig.py`` (the image: ``/app/``). The
task list then shows each task's table (args) and row counts (result) without opening it.
"""

from workers.flower_tasks import TASKS_COLUMNS, format_task

tasks_columns = TASKS_COLUMNS
__all__ = ["format_task", "tasks_columns"]
