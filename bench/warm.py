"""Task time of an incremental sync in a running process, as in a Celery worker.

A worker process has synced before: its engines are connected, dlt has run. This changes
rows and syncs once (the worker's previous task, which goes through dlt), then changes rows
again and times the next sync: what the issue's "task time in a running worker" means.
Prints one JSON line.

    python -m bench.warm TABLE ROWS ROUND   (uses change rounds ROUND and ROUND + 1;
                                             database settings from the environment)
"""

from __future__ import annotations

import json
import os
import sys

from bench import db
from bench.scenarios import CHANGED_ROWS


def main(argv: list[str]) -> int:
    from dbsync.config.settings import load_settings
    from dbsync.sync.run import sync_table
    from dbsync.sync.runtime import Runtime

    table, rows, round_no = argv[0], int(argv[1]), int(argv[2])
    runtime = Runtime.create(load_settings())
    server = db.Server.from_env(
        os.environ["SOURCE_DB_HOST"], int(os.environ["SOURCE_DB_PORT"]),
        os.environ["SOURCE_DB_USER"],
    )
    source = os.environ["SOURCE_DB_NAME"]
    try:
        db.change_rows(server, source, table, rows, CHANGED_ROWS, round_no)
        sync_table(runtime, table)  # the previous task of this worker process
        changed = db.change_rows(server, source, table, rows, CHANGED_ROWS, round_no + 1)
        result = sync_table(runtime, table)
    finally:
        runtime.dispose()
    print(json.dumps({"task_s": result.duration_s, "extracted": result.rows_extracted,
                      "changed": changed, "phases": result.phases}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
