"""Command line and orchestration: scratch space, data, scenarios in order, report, cleanup."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from bench import db, diff, many, own_server, report
from bench import scenarios as sc
from bench.fleet import Fleet

STEPS = (
    "full", "chunked", "incremental", "deletes", "boundary", "diff", "schema", "dlt", "sling",
    "many",
)
# steps that need the generated large/small tables (``many`` makes its own)
TABLE_STEPS = frozenset(STEPS) - {"many"}
FLEET_WORKERS = 4


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="dbsync vs mysqldump|mysql, dlt and Sling on a scratch MariaDB/MySQL table.",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="large table rows")
    parser.add_argument("--small", type=int, default=100_000, help="small table rows")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement")
    parser.add_argument("--huge", type=int, default=0,
                        help="also measure delete propagation on a table of this many rows "
                        "(e.g. 10000000; generating and loading it takes minutes)")
    parser.add_argument(
        "--only", action="append", choices=STEPS, metavar="STEP",
        help=f"run only these steps (repeatable; any of {', '.join(STEPS)}). "
        "'full' is the baseline and dbsync full refreshes, 'chunked' the baseline, the CLI "
        "with --parallel 1 and a fleet of 4 workers (needs Redis: BENCH_REDIS_URL); 'many' "
        "--many tables of 100 rows: one row changed, nothing changed, and a fleet round",
    )
    parser.add_argument("--many", type=int, default=300,
                        help="tables of 100 rows the 'many' step syncs (issue 20)")
    parser.add_argument("--peer-size", choices=("small", "large"), default="small",
                        help="table the dlt and Sling peers sync (default: small)")
    parser.add_argument("--peer-timeout", type=float, default=600,
                        help="seconds per peer run (initial loads get 4x) before giving up")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root", help="password: env BENCH_DB_PASS")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--diff-server", choices=("own", "shared"), default="own",
                        help="where the diff step runs: a MariaDB server the bench starts "
                        "with a buffer pool that holds its tables (own), or --host (shared)")
    args = parser.parse_args(argv)
    if args.rows < 1000 or args.small < 1000 or args.repeat < 1:
        parser.error("--rows and --small must be >= 1000 (1,000 rows change), --repeat >= 1")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def setup(bench: sc.Bench, steps: Sequence[str]) -> None:
    for name in (bench.source, bench.database("dump"), bench.database("dbsync")):
        db.create_database(bench.server, name)
    tables_needed = TABLE_STEPS & set(steps)
    if bench.diff_server == "own" and own_server.available():
        tables_needed -= {"diff"}  # the diff step makes its tables on its own server
    if not tables_needed:
        return
    for table, rows in bench.sizes.items():
        start = time.perf_counter()
        db.generate_table(bench.server, bench.source, table, rows)
        bench.log(f"generated {table}: {rows:,} rows in {time.perf_counter() - start:.1f} s")


def step_full(bench: sc.Bench) -> None:
    """Baseline and full refreshes interleaved, so drift in machine load hits both alike."""
    for repeat in range(1, bench.repeat + 1):
        sc.baseline(bench, repeat)
        sc.dbsync_full(bench, repeat, sc.LARGE)
        sc.dbsync_full(bench, repeat, sc.SMALL)


def step_chunked(bench: sc.Bench) -> None:
    """Chunked copies: one process with --parallel 1, and a fleet of worker processes
    (plain, and with a helper killed halfway), interleaved with the baseline."""
    fleet = Fleet(sc.dbsync_env(bench), bench.tmp, FLEET_WORKERS)
    try:
        fleet.start()
        for repeat in range(1, bench.repeat + 1):
            sc.baseline(bench, repeat)
            sc.dbsync_parallel1(bench, repeat)
            sc.fleet_full(bench, fleet, repeat)
        sc.fleet_full(bench, fleet, 1, kill=True)
    finally:
        fleet.stop()


def step_incremental(bench: sc.Bench) -> None:
    for table in (sc.SMALL, sc.LARGE):
        sc.ensure_dbsync_target(bench, table)
    for repeat in range(1, bench.repeat + 1):
        for table in (sc.SMALL, sc.LARGE):
            sc.dbsync_incremental(bench, repeat, table)
    for repeat in range(1, bench.repeat + 1):
        for table in (sc.SMALL, sc.LARGE):
            sc.dbsync_incremental_warm(bench, repeat, table)
    for repeat in range(1, bench.repeat + 1):
        for table in (sc.SMALL, sc.LARGE):
            sc.dbsync_noop(bench, repeat, table)


def step_deletes(bench: sc.Bench) -> None:
    """Per table: updates only, deletes + updates, and a full refresh, interleaved."""
    tables = [t for t in (sc.SMALL, sc.LARGE, sc.HUGE) if t in bench.sizes]
    for table in tables:
        sc.ensure_dbsync_target(bench, table)
    for repeat in range(1, bench.repeat + 1):
        for table in tables:
            sc.dbsync_updates_only(bench, repeat, table)
            sc.dbsync_deletes(bench, repeat, table)
            sc.dbsync_full_of(bench, repeat, table)


def step_boundary(bench: sc.Bench) -> None:
    """100 changed rows: in a table whose rows share one cursor value (server-stamped, and
    app-set so every read's window is the whole table) against an ordinary one."""
    db.share_cursor(bench.server, bench.source, sc.SHARED, app_set=False)
    db.share_cursor(bench.server, bench.source, sc.SHARED_APP, app_set=True)
    tables = (sc.SMALL, sc.SHARED, sc.SHARED_APP)
    for table in tables:
        sc.ensure_dbsync_target(bench, table)
    for repeat in range(1, bench.repeat + 1):
        for table in tables:
            sc.dbsync_boundary(bench, repeat, table)


def step_schema(bench: sc.Bench) -> None:
    """A rebuild forced by a type change next to --full-refresh of the same table."""
    sc.ensure_dbsync_target(bench, sc.LARGE)
    for repeat in range(1, bench.repeat + 1):
        sc.dbsync_full(bench, repeat, sc.LARGE)
        sc.dbsync_rebuild(bench, repeat, sc.LARGE)


def run_steps(
    bench: sc.Bench, steps: Sequence[str], peer_table: str, many_tables: int = 300
) -> None:
    actions: dict[str, Callable[[], None]] = {
        "full": lambda: step_full(bench),
        "chunked": lambda: step_chunked(bench),
        "incremental": lambda: step_incremental(bench),
        "deletes": lambda: step_deletes(bench),
        "boundary": lambda: step_boundary(bench),
        "diff": lambda: diff.step_diff(bench),
        "schema": lambda: step_schema(bench),
        "dlt": lambda: sc.run_peer(bench, "dlt", peer_table),
        "sling": lambda: sc.run_peer(bench, "sling", peer_table),
        "many": lambda: many.step(bench, many_tables, FLEET_WORKERS),
    }
    for step in STEPS:
        if step in steps:
            bench.log(f"step: {step}")
            actions[step]()


def finish(bench: sc.Bench, args: argparse.Namespace) -> None:
    version = db.query(bench.server, None, "SELECT VERSION()")[0][0]
    result = report.Report(args=vars(args), server_version=version, runs=bench.runs)
    result.goals = report.evaluate_goals(bench.runs, args.rows, args.small)
    result.goals += diff.diff_goals(bench.runs, f"{args.rows:,}")
    print(report.format_table(bench.runs))
    print()
    print(report.format_goals(result.goals, bench.runs))
    path = report.write_json(result)
    print(f"\nresults: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too when started in background
        signal.signal(signum, _raise_interrupt)
    server = db.Server.from_env(args.host, args.port, args.user)
    tmp = Path(tempfile.mkdtemp(prefix="dbsync_bench_"))
    sizes = {sc.LARGE: args.rows, sc.SMALL: args.small}
    if args.huge:
        sizes[sc.HUGE] = args.huge
    if "boundary" in (args.only or STEPS):
        sizes.update({sc.SHARED: args.small, sc.SHARED_APP: args.small})
    bench = sc.Bench(server, db.unique_prefix(), sizes, args.repeat, tmp, args.peer_timeout)
    bench.diff_server = args.diff_server
    bench.log(f"scratch databases {bench.prefix}*, temp dir {tmp}")
    try:
        steps = args.only or STEPS
        setup(bench, steps)
        peer_table = sc.LARGE if args.peer_size == "large" else sc.SMALL
        run_steps(bench, steps, peer_table, args.many)
        finish(bench, args)
        return 0
    except KeyboardInterrupt:
        bench.log("interrupted")
        return 130
    finally:
        if not args.keep:
            dropped = db.drop_databases(server, bench.prefix)
            bench.log(f"dropped {len(dropped)} scratch database(s)")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
