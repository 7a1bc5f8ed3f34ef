"""The measured steps. Each one runs a copier as a subprocess, then checks the target."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import db, measure, peers
from bench.fleet import Fleet
from bench.report import FAILED, INVALID, OK, TIMED_OUT, UNAVAILABLE, Run

LARGE, SMALL, HUGE = "bench_large", "bench_small", "bench_huge"
SHARED, SHARED_APP = "bench_shared", "bench_shared_app"  # rows sharing one cursor value
SIZE_NAMES = {LARGE: "large", SMALL: "small", HUGE: "huge"}
CHANGED_ROWS = 1000
BOUNDARY_CHANGES = 100
DELETED_ROWS = 1000
REPO = Path(__file__).resolve().parents[1]
_DBSYNC_ENV_PREFIXES = (
    "SOURCE_DB_", "TARGET_DB_", "STAGING_DB_", "POOL_", "TABLES_CONFIG", "DEFAULT_LAG",
    "FETCH_LIMIT", "LOCK_", "WORK_DIR",
)


ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Bench:
    """One benchmark run: its server, scratch databases, temp dir and results."""

    server: db.Server
    prefix: str
    sizes: dict[str, int]  # table -> rows
    repeat: int
    tmp: Path
    peer_timeout: float
    runs: list[Run] = field(default_factory=list)
    change_round: int = 0
    diff_server: str = "own"  # the diff step's server: its own (bench.own_server) or this one
    started: float = field(default_factory=time.perf_counter)
    source_sums: dict[tuple[str, int], db.Checksum | None] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.prefix

    def database(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    def log(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[bench {elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)

    def change(self, table: str) -> int:
        self.change_round += 1
        return db.change_rows(self.server, self.source, table, self.sizes[table],
                              CHANGED_ROWS, self.change_round)

    def change_few(self, table: str, rows: int) -> int:
        self.change_round += 1
        return db.change_rows(self.server, self.source, table, self.sizes[table], rows,
                              self.change_round)

    def delete(self, table: str) -> int:
        """Delete rows in the source (the content check compares against the new source)."""
        self.change_round += 1
        return db.delete_rows(self.server, self.source, table, self.sizes[table],
                              DELETED_ROWS, self.change_round)


# --- content check ------------------------------------------------------------------------

def differing_columns(bench: Bench, target_db: str, table: str) -> list[str]:
    columns = db.source_columns(bench.server, bench.source, table)
    return [
        name for name, kind in columns
        if db.checksum(bench.server, bench.source, table, [(name, kind)])
        != db.checksum(bench.server, target_db, table, [(name, kind)])
    ]


def verify(bench: Bench, target_db: str, table: str) -> str | None:
    """None if the target holds the source's content, else what differs."""
    columns = db.source_columns(bench.server, bench.source, table)
    key = (table, bench.change_round)  # the source changes only in Bench.change
    if key not in bench.source_sums:
        bench.source_sums[key] = db.checksum(bench.server, bench.source, table, columns)
    want = bench.source_sums[key]
    got = db.checksum(bench.server, target_db, table, columns)
    if got is None:
        return "target table missing"
    if want == got:
        return None
    if want is not None and got.rows != want.rows:
        return f"target has {got.rows} rows, source {want.rows}"
    return "values differ in column(s): " + ", ".join(differing_columns(bench, target_db, table))


def record(bench: Bench, run: Run, result: measure.Measured, target_db: str, table: str) -> Run:
    """Fill ``run`` from a measured subprocess, timing it only if the target is right."""
    run.rss_mb = result.rss_mb
    if result.returncode != 0:
        run.status = FAILED
        run.note = f"exit {result.returncode}: {_tail(result.stderr or result.stdout)}"
    elif (problem := verify(bench, target_db, table)) is not None:
        run.status, run.note, run.unverified_wall_s = INVALID, problem, result.wall_s
        run.task_s = None
    else:
        run.wall_s = result.wall_s
    if run.status != OK:
        run.task_s = None
    bench.runs.append(run)
    bench.log(f"{run.label} #{run.repeat}: {run.status} wall={run.wall_s} task={run.task_s}")
    return run


def _tail(text: str, lines: int = 2) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])[:300]


# --- baseline -------------------------------------------------------------------------------

def baseline(bench: Bench, repeat: int) -> Run:
    target = bench.database("dump")
    client = bench.server.client_args()
    dump = ["mysqldump", *client, "--single-transaction", "--quick", bench.source, LARGE]
    load = ["mysql", *client, target]
    result = measure.run_pipeline([dump, load], env=bench.server.client_env())
    rows = bench.sizes[LARGE]
    run = Run("baseline", "baseline mysqldump|mysql", rows, rows, repeat)
    return record(bench, run, result, target, LARGE)


# --- dbsync ---------------------------------------------------------------------------------

def dbsync_env(bench: Bench) -> dict[str, str]:
    tables = bench.tmp / "tables.json"
    if not tables.exists():
        entries = [{"table": t, "primary_key": "id", "modifier": "updated_at"}
                   for t in bench.sizes]
        tables.write_text(json.dumps(entries), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_DBSYNC_ENV_PREFIXES)}
    s = bench.server
    for side, name in (("SOURCE", bench.source), ("TARGET", bench.database("dbsync"))):
        env.update({f"{side}_DB_HOST": s.host, f"{side}_DB_PORT": str(s.port),
                    f"{side}_DB_USER": s.user, f"{side}_DB_PASS": s.password,
                    f"{side}_DB_NAME": name})
    env["TABLES_CONFIG"] = str(tables)
    env["WORK_DIR"] = str(bench.tmp / "dbsync-work")
    return env


def dbsync_command() -> list[str]:
    script = Path(sys.executable).with_name("dbsync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dbsync.cli"]


def parse_summary(stdout: str, table: str) -> tuple[float | None, int | None]:
    """(seconds, extracted) from the `dbsync sync` summary line of ``table``."""
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0] == table:
            try:
                return float(parts[5]), int(parts[3])
            except ValueError:
                return None, None
    return None, None


def dbsync_sync(bench: Bench, run: Run, table: str, *flags: str) -> Run:
    (bench.tmp / "dbsync-work").mkdir(exist_ok=True)
    result = measure.run([*dbsync_command(), "sync", table, *flags], env=dbsync_env(bench),
                         cwd=bench.tmp)
    run.task_s, run.extracted = parse_summary(result.stdout, table)
    if found := re.search(r"compared in (\d+\.\d+)s, re-checked and deleted in (\d+\.\d+)s",
                          result.stderr):
        run.note = f"keys compared {found.group(1)} s, re-checked + deleted {found.group(2)} s"
    return record(bench, run, result, bench.database("dbsync"), table)


def dbsync_full(bench: Bench, repeat: int, table: str = LARGE) -> Run:
    rows = bench.sizes[table]
    scenario = "dbsync_full" if table == LARGE else "dbsync_full_small"
    run = Run(scenario, f"dbsync --full-refresh ({rows:,})", rows, rows, repeat)
    return dbsync_sync(bench, run, table, "--full-refresh")


def ensure_dbsync_target(bench: Bench, table: str) -> None:
    if db.checksum(bench.server, bench.database("dbsync"), table, [("id", "bigint")]) is None:
        bench.log(f"initial (untimed) dbsync load of {table}")
        dbsync_sync(bench, Run("setup", "dbsync initial load (untimed)", bench.sizes[table],
                               bench.sizes[table], 1), table)
        bench.runs.pop()


def dbsync_incremental(bench: Bench, repeat: int, table: str) -> Run:
    size = "large" if table == LARGE else "small"
    changed = bench.change(table)
    rows = bench.sizes[table]
    run = Run(f"dbsync_incr_{size}", f"dbsync incremental {changed:,} chg ({rows:,})",
              rows, changed, repeat)
    return dbsync_sync(bench, run, table)


def dbsync_incremental_warm(bench: Bench, repeat: int, table: str) -> Run:
    """The same change, timed inside a process that already ran a sync (a running worker)."""
    size = "large" if table == LARGE else "small"
    bench.change_round += 2  # bench.warm changes rows twice: before its warm-up and timed syncs
    rows = bench.sizes[table]
    first_round = bench.change_round - 1
    command = [sys.executable, "-m", "bench.warm", table, str(rows), str(first_round)]
    result = measure.run(command, env={**dbsync_env(bench), "PYTHONPATH": str(ROOT)},
                         cwd=bench.tmp)
    run = Run(f"dbsync_warm_{size}", f"dbsync incr. in running worker ({rows:,})", rows,
              CHANGED_ROWS, repeat)
    if result.returncode == 0 and result.stdout.strip():
        data = json.loads(result.stdout.strip().splitlines()[-1])
        run.task_s, run.extracted, run.rows = data["task_s"], data["extracted"], data["changed"]
    return record(bench, run, result, bench.database("dbsync"), table)


def dbsync_deletes(bench: Bench, repeat: int, table: str) -> Run:
    """Spread deletes and updates, propagated by one incremental `dbsync sync` process."""
    size, rows = SIZE_NAMES[table], bench.sizes[table]
    changed = bench.change(table)
    deleted = bench.delete(table)
    run = Run(f"dbsync_del_{size}", f"dbsync {deleted:,} del + {changed:,} chg ({rows:,})",
              rows, changed + deleted, repeat)
    return dbsync_sync(bench, run, table)


def dbsync_updates_only(bench: Bench, repeat: int, table: str) -> Run:
    """The same table's updates-only incremental sync (its key comparison finds nothing)."""
    size, rows = SIZE_NAMES[table], bench.sizes[table]
    changed = bench.change(table)
    run = Run(f"dbsync_upd_{size}", f"dbsync {changed:,} chg, 0 del ({rows:,})", rows,
              changed, repeat)
    return dbsync_sync(bench, run, table)


def dbsync_full_of(bench: Bench, repeat: int, table: str) -> Run:
    """A full refresh of the table the delete runs use (their 0.3x reference)."""
    size, rows = SIZE_NAMES[table], bench.sizes[table]
    run = Run(f"dbsync_delfull_{size}", f"dbsync --full-refresh, del. table ({rows:,})", rows,
              rows, repeat)
    return dbsync_sync(bench, run, table, "--full-refresh")


def dbsync_noop(bench: Bench, repeat: int, table: str) -> Run:
    size = "large" if table == LARGE else "small"
    rows = bench.sizes[table]
    run = Run(f"dbsync_noop_{size}", f"dbsync incremental, no change ({rows:,})", rows, 0,
              repeat)
    return dbsync_sync(bench, run, table)


# --- schema migrations (issue 19) ---------------------------------------------------------

# each repeat's source migration: a type change no target can follow in place (a rebuild)
TYPE_CHANGES = (
    "ALTER TABLE `{table}` MODIFY `quantity` VARCHAR(20) NOT NULL",
    "ALTER TABLE `{table}` MODIFY `quantity` INT NOT NULL",
)


def dbsync_rebuild(bench: Bench, repeat: int, table: str = LARGE) -> Run:
    """A plain sync after a type change in the source (a rebuild; the ALTER is untimed)."""
    rows = bench.sizes[table]
    statement = TYPE_CHANGES[(repeat - 1) % len(TYPE_CHANGES)].format(table=table)
    start = time.perf_counter()
    db.execute(bench.server, bench.source, statement)
    bench.change_round += 1  # the source's checksums change with the column's type
    bench.log(f"source: {statement} in {time.perf_counter() - start:.1f} s (untimed)")
    run = Run("dbsync_rebuild", f"dbsync rebuild after a type change ({rows:,})", rows, rows,
              repeat)
    return dbsync_sync(bench, run, table)


# --- boundary windows (issue 17) ---------------------------------------------------------

BOUNDARY = {
    SMALL: ("dbsync_bnd_ordinary", "distinct cursor values"),
    SHARED: ("dbsync_bnd_shared", "one shared value, server-stamped"),
    SHARED_APP: ("dbsync_bnd_shared_app", "one shared value, app-set (window = table)"),
}


def dbsync_boundary(bench: Bench, repeat: int, table: str) -> Run:
    """100 rows changed in a table whose rows share one cursor value, or (SMALL) not."""
    scenario, what = BOUNDARY[table]
    rows = bench.sizes[table]
    changed = bench.change_few(table, BOUNDARY_CHANGES)
    run = Run(scenario, f"dbsync {changed:,} chg, {what} ({rows:,})", rows, changed, repeat)
    return dbsync_sync(bench, run, table)


# --- chunked copies -----------------------------------------------------------------------

def dbsync_parallel1(bench: Bench, repeat: int) -> Run:
    rows = bench.sizes[LARGE]
    run = Run("dbsync_full_p1", f"dbsync --full-refresh --parallel 1 ({rows:,})", rows, rows,
              repeat)
    return dbsync_sync(bench, run, LARGE, "--full-refresh", "--parallel", "1")


def fleet_full(bench: Bench, fleet: Fleet, repeat: int, *, kill: bool = False) -> Run:
    """One full refresh of the large table through the fleet, timed send to result."""
    rows = bench.sizes[LARGE]
    scenario = "dbsync_fleet_killed" if kill else "dbsync_fleet"
    what = "helper killed halfway" if kill else "full refresh"
    run = Run(scenario, f"fleet of {fleet.workers}: {what} ({rows:,})", rows, rows, repeat)
    started = time.perf_counter()
    result = fleet.copy(LARGE)
    try:
        if kill:
            fleet.kill_helper_halfway(bench.server, bench.database("dbsync"), result)
        summary = result.get(timeout=3600)
        returncode, error = 0, ""
    except Exception as exc:  # noqa: BLE001 - reported as a failed run
        summary, returncode, error = {}, 1, repr(exc)
    wall = time.perf_counter() - started
    measured = measure.Measured(wall, fleet.peak_rss_mb(), returncode, "", error)
    run.task_s, run.extracted = summary.get("duration_s"), summary.get("rows_extracted")
    run.note = f"{summary.get('chunks')} chunks, {len(summary.get('workers', []))} workers"
    if kill:
        fleet.start()  # replace the killed worker (untimed)
    return record(bench, run, measured, bench.database("dbsync"), LARGE)


# --- peers ----------------------------------------------------------------------------------

@dataclass
class Peer:
    name: str
    target_db: str
    command: list[str]  # the (incremental) run
    initial: list[str]  # the untimed first load
    env: dict[str, str]


def peer_dlt(bench: Bench, table: str) -> Peer:
    target = bench.database("dlt")
    db.create_database(bench.server, target)  # dlt's credentials must name a database
    command = peers.dlt_command(bench.server, bench.source, target, table,
                                bench.tmp / "dlt-pipelines")
    env = {**peers.dlt_env(), "PYTHONPATH": str(REPO)}
    return Peer("dlt (untuned, sqlalchemy, merge)", target, command, command, env)


def peer_sling(bench: Bench, table: str) -> Peer:
    binary = peers.ensure_sling()
    target = bench.database("sling")
    db.create_database(bench.server, target)
    env = {**peers.sling_env(bench.tmp),
           **peers.sling_connections(bench.server, bench.source, target)}
    return Peer(
        "sling incremental", target,
        peers.sling_command(binary, bench.source, target, table, initial=False),
        peers.sling_command(binary, bench.source, target, table, initial=True), env,
    )


def _peer_task_s(stdout: str) -> float | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return float(json.loads(line)["task_s"])
            except (ValueError, KeyError):
                return None
    return None


def run_peer(bench: Bench, which: str, table: str) -> None:
    rows = bench.sizes[table]
    label = f"{which} incremental {CHANGED_ROWS:,} chg ({rows:,})"
    scenario = f"peer_{which}"
    try:
        peer = peer_dlt(bench, table) if which == "dlt" else peer_sling(bench, table)
    except peers.PeerUnavailable as exc:
        bench.runs.append(Run(scenario, label, rows, 0, 1, UNAVAILABLE, note=str(exc)))
        bench.log(f"{which}: not available: {exc}")
        return
    bench.log(f"{which}: initial (untimed) load of {rows:,} rows")
    try:
        first = measure.run(peer.initial, env=peer.env, cwd=bench.tmp,
                            timeout=4 * bench.peer_timeout)
    except subprocess.TimeoutExpired:
        bench.runs.append(Run(scenario, label, rows, 0, 1, TIMED_OUT,
                              note=f"initial load over {4 * bench.peer_timeout:.0f} s"))
        return
    if first.returncode != 0:
        bench.runs.append(Run(scenario, label, rows, 0, 1, FAILED,
                              note=f"initial load: {_tail(first.stderr or first.stdout)}"))
        return
    _peer_repeats(bench, peer, scenario, label, table)


def _peer_repeats(bench: Bench, peer: Peer, scenario: str, label: str, table: str) -> None:
    rows = bench.sizes[table]
    for repeat in range(1, bench.repeat + 1):
        changed = bench.change(table)
        run = Run(scenario, label, rows, changed, repeat)
        try:
            result = measure.run(peer.command, env=peer.env, cwd=bench.tmp,
                                 timeout=bench.peer_timeout)
        except subprocess.TimeoutExpired:
            run.status, run.note = TIMED_OUT, f"over {bench.peer_timeout:.0f} s; stopped"
            bench.runs.append(run)
            return
        run.task_s = _peer_task_s(result.stdout)
        record(bench, run, result, peer.target_db, table)
