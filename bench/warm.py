"""Task time of an incremental sync in a running process, as in a Celery worker.

A worker process has synced before: its engines are connected, dlt is loaded. This runs one
sync first (the worker's previous task), then changes rows and times the next sync, which is
what the issue's "task time in a running worker" means. Prints one JSON line.

    python -m bench.warm TABLE ROWS ROUND   (database settings from the environment)
"""

from __future__ import annotations

import json
import os
import sys

from bench import db
from bench.scenarios import CHANGED_ROWS


def main(argv: list[str]) -> int:
    from dbsync.runtime import Runtime
    from dbsync.settings import load_settings
    from dbsync.sync import sync_table

    table, rows, round_no = argv[0], int(argv[1]), int(argv[2])
    runtime = Runtime.create(load_settings())
    try:
        sync_table(runtime, table)  # the previous task of this worker process
        server = db.Server.from_env(
            os.environ["SOURCE_DB_HOST"], int(os.environ["SOURCE_DB_PORT"]),
            os.environ["SOURCE_DB_USER"],
        )
        changed = db.change_rows(
            server, os.environ["SOURCE_DB_NAME"], table, rows, CHANGED_ROWS, round_no
        )
        result = sync_table(runtime, table)
    finally:
        runtime.dispose()
    print(json.dumps({"task_s": result.duration_s, "extracted": result.rows_extracted,
                      "changed": changed, "phases": result.phases}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
