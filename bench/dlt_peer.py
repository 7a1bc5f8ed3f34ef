"""The dlt peer: an untuned dlt pipeline, run as its own process so its peak RSS is measured.

``sql_table`` with the default backend (SQLAlchemy rows), incremental on ``updated_at``,
``write_disposition="merge"`` on primary key ``id``, into dlt's ``sqlalchemy`` destination; the
target table is created by dlt on the first (untimed) run. Prints one JSON line with the time
spent in ``pipeline.run`` (task time, without interpreter and import start-up).

    python -m bench.dlt_peer --source-url URL --table T --target-url URL --dataset D \
        --pipelines-dir DIR --name NAME
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dlt_peer")
    for name in ("source-url", "table", "target-url", "dataset", "pipelines-dir", "name"):
        parser.add_argument(f"--{name}", required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import dlt
    from dlt.sources.sql_database import sql_table

    resource = sql_table(
        credentials=args.source_url,
        table=args.table,
        incremental=dlt.sources.incremental("updated_at"),
        write_disposition="merge",
        primary_key="id",
    )
    pipeline = dlt.pipeline(
        pipeline_name=args.name,
        pipelines_dir=args.pipelines_dir,
        destination=dlt.destinations.sqlalchemy(credentials=args.target_url),
        dataset_name=args.dataset,
    )
    start = time.perf_counter()
    pipeline.run(resource)
    task_s = time.perf_counter() - start
    trace = pipeline.last_trace
    rows = trace.last_normalize_info.row_counts.get(args.table, 0) if trace else 0
    print(json.dumps({"task_s": task_s, "rows_loaded": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
