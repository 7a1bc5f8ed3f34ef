"""What Flower's task list shows for dbsync tasks: the table and row counts in the list.

Flower's ``tasks_columns`` picks the columns; ``format_task`` rewrites a task before it is
shown, here the result column: the sync summary (a dict repr of ~20 fields, cut by Celery
at 1 KiB) becomes one line, ``synced incremental: 120 read, 120 loaded, 0 deleted in
0.42s``. Both are set by ``workers/flowerconfig.py`` (``celery -A workers.app flower
--conf=workers/flowerconfig.py``; the image has it at ``/app/flowerconfig.py``).
"""

from __future__ import annotations

import re
from typing import Any

# the table is the task's first argument; the result column carries the row counts
TASKS_COLUMNS = "name,args,state,result,received,started,runtime,worker,retries"

_FIELD = re.compile(r"'(status|mode|rows_extracted|rows_loaded|rows_deleted|duration_s)': "
                    r"'?([\w.]+)'?")
MAX_ERROR_CHARS = 160


def summary_line(result: str | None) -> str | None:
    """One line from the repr of a sync summary; None when it is not one."""
    if not result:
        return None
    found = dict(_FIELD.findall(result))
    if "status" not in found or "rows_loaded" not in found:
        return None
    line = (
        f"{found['status']} {found.get('mode', '')}: {found.get('rows_extracted', '?')} read, "
        f"{found['rows_loaded']} loaded, {found.get('rows_deleted', '0')} deleted"
    )
    if "duration_s" in found:
        line += f" in {found['duration_s']}s"
    return line


def error_line(exception: str | None) -> str | None:
    """The message of a failed task's exception, without its class name, shortened."""
    if not exception:
        return None
    message = re.sub(r"^\w+\((['\"])(.*)\1\)$", r"\2", exception.strip(), flags=re.S)
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return f"failed: {message}"


def format_task(task: Any) -> Any:
    """Flower's ``format_task`` hook: the result column as one line (a copy is given)."""
    line = summary_line(getattr(task, "result", None)) or error_line(
        getattr(task, "exception", None)
    )
    if line is not None:
        task.result = line
    return task
