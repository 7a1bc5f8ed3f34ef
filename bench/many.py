"""Many small tables (issue 20): what one sync costs when there is almost nothing to move.

``--many`` tables (default 300) of 100 rows, PK + ``ON UPDATE`` cursor, in databases of
their own. Measured, each as one whole ``dbsync sync`` process over every table (the figure
is its wall time divided by the tables):

- ``many_first``: the first copy of every table;
- ``many_one_row``: one row updated in each table, then one sync of each;
- ``many_nothing``: nothing changed since the last sync (the baseline of this step);
- ``many_fleet``: one row updated in each, the same syncs sent to ``FLEET_WORKERS`` Celery
  worker processes, timed from the first send to the last result (round time).
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench import db, measure
from bench import scenarios as sc
from bench.fleet import Fleet
from bench.report import FAILED, Run

TABLE_ROWS = 100
DDL = (
    "CREATE TABLE `{table}` (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, "
    "updated_at DATETIME(6) NOT NULL DEFAULT NOW(6) ON UPDATE NOW(6), KEY (updated_at))"
)
FILL = "INSERT INTO `{table}` (id, v) SELECT seq, CONCAT('row ', seq) FROM seq_1_to_{rows}"


def names(count: int) -> list[str]:
    return [f"many_{i:04d}" for i in range(count)]


def env(bench: sc.Bench, tables: list[str]) -> dict[str, str]:
    """dbsync's environment for the many-tables databases (their own tables.json)."""
    config = bench.tmp / "many-tables.json"
    config.write_text(
        json.dumps([{"table": t, "primary_key": "id", "modifier": "updated_at"} for t in tables]),
        encoding="utf-8",
    )
    values = sc.dbsync_env(bench)
    values.update(
        SOURCE_DB_NAME=bench.database("many_src"),
        TARGET_DB_NAME=bench.database("many_tgt"),
        TABLES_CONFIG=str(config),
    )
    return values


def setup(bench: sc.Bench, tables: list[str]) -> None:
    source = bench.database("many_src")
    for name in (source, bench.database("many_tgt")):
        db.create_database(bench.server, name)
    with db.connect(bench.server, source) as conn, conn.cursor() as cur:
        for table in tables:
            cur.execute(DDL.format(table=table))
            cur.execute(FILL.format(table=table, rows=TABLE_ROWS))
        conn.commit()
    bench.log(f"generated {len(tables)} tables of {TABLE_ROWS} rows")


def change_one_row(bench: sc.Bench, tables: list[str], round_no: int) -> None:
    with db.connect(bench.server, bench.database("many_src")) as conn, conn.cursor() as cur:
        for table in tables:
            cur.execute(
                f"UPDATE `{table}` SET v = CONCAT('changed ', %s) WHERE id = %s",
                (round_no, 1 + round_no % TABLE_ROWS),
            )
        conn.commit()


def one_process(bench: sc.Bench, scenario: str, label: str, tables: list[str], repeat: int) -> Run:
    """One ``dbsync sync`` process over every table; wall / tables is the figure."""
    (bench.tmp / "dbsync-work").mkdir(exist_ok=True)
    result = measure.run([*sc.dbsync_command(), "sync"], env=env(bench, tables), cwd=bench.tmp)
    run = Run(scenario, f"{label} ({len(tables)} tables x {TABLE_ROWS} rows)",
              TABLE_ROWS * len(tables), len(tables), repeat)
    return finish(bench, run, result.wall_s, result.returncode, result.rss_mb, len(tables),
                  result.stderr)


def fleet_round(bench: sc.Bench, fleet: Fleet, tables: list[str], repeat: int) -> Run:
    started = time.perf_counter()
    results = [fleet.client().send_task("dbsync.sync_table", args=[t]) for t in tables]
    failed = 0
    for result in results:
        try:
            summary: dict[str, Any] = result.get(timeout=1800)
            failed += summary.get("status") != "synced"
        except Exception:  # noqa: BLE001 - counted as a failure of the round
            failed += 1
    wall = time.perf_counter() - started
    run = Run("many_fleet", f"fleet of {fleet.workers}: one row in each of {len(tables)} tables",
              TABLE_ROWS * len(tables), len(tables), repeat)
    return finish(bench, run, wall, 1 if failed else 0, fleet.peak_rss_mb(), len(tables),
                  f"{failed} syncs did not end synced")


def finish(bench: sc.Bench, run: Run, wall: float, code: int, rss: float | None, tables: int,
           error: str) -> Run:
    run.wall_s, run.rss_mb = wall, rss
    run.task_s = wall / tables  # per table
    run.note = f"{wall / tables * 1000:.1f} ms per table"
    if code != 0:
        run.status, run.note = FAILED, sc._tail(error)
    bench.runs.append(run)
    bench.log(f"{run.label}: {run.note}")
    return run


def step(bench: sc.Bench, count: int, workers: int) -> None:
    tables = names(count)
    setup(bench, tables)
    one_process(bench, "many_first", "dbsync sync, first copy", tables, 1)
    for repeat in range(1, bench.repeat + 1):
        one_process(bench, "many_nothing", "dbsync sync, nothing changed", tables, repeat)
        change_one_row(bench, tables, repeat)
        one_process(bench, "many_one_row", "dbsync sync, one row changed in each", tables,
                    repeat)
    fleet = Fleet(env(bench, tables), bench.tmp, workers)
    try:
        fleet.start()
        for repeat in range(1, bench.repeat + 1):
            change_one_row(bench, tables, 100 + repeat)
            fleet_round(bench, fleet, tables, repeat)
    finally:
        fleet.stop()
