"""Chunked full copies in one process: key ranges, progress, leases and resumption.

Real MariaDB; tables are small and ``chunk_rows`` is set low so that they split into several
chunks. The fleet (chunks on several worker processes, SIGKILLs) is tests/integration/
test_chunked_fleet.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dbsync.backends.mysql.copy_progress import CopyProgress, Holder
from dbsync.backends.mysql.schema import require_source_table
from dbsync.compare.verify import verify_table
from dbsync.config.tables import TableConfig
from dbsync.copy import chunked as chunked_copy
from dbsync.copy.chunked import Job, LeaseLost
from dbsync.sync.run import help_copy, run_sync, sync_table
from dbsync.sync.runtime import Runtime
from tests import helpers


def _numbers(scratch, rows: int = 10_000, table: str = "n") -> None:
    helpers.execute(
        scratch.source,
        f"CREATE TABLE `{table}` (id INT NOT NULL PRIMARY KEY, v VARCHAR(32) NOT NULL, "
        "n INT NULL, updated_at DATETIME(6) NOT NULL, KEY n (n), KEY u (updated_at))",
        f"INSERT INTO `{table}` SELECT seq, MD5(seq), seq % 97, "
        f"'2025-01-01' + INTERVAL seq SECOND FROM seq_1_to_{rows}",
    )


def _chunks(scratch, table: str) -> list[tuple]:
    return helpers.query(
        scratch.target,
        "SELECT chunk_no, state, rows_copied, attempts, worker FROM _dbsync_copy_chunks "
        "WHERE table_name = %s ORDER BY chunk_no",
        (table,),
    )


def _same(scratch, table: str) -> bool:
    return helpers.exact_rows(scratch.target, table) == helpers.exact_rows(scratch.source, table)


def test_a_large_full_refresh_is_copied_in_key_ranges_and_swapped_whole(
    scratch, runtime_factory
) -> None:
    _numbers(scratch)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_workers=3)

    result = sync_table(runtime, "n")

    assert (result.chunks, result.chunks_reused, result.rows_loaded) == (10, 0, 10_000)
    assert [c[1:3] for c in _chunks(scratch, "n")] == [("done", 1_000)] * 10
    assert _same(scratch, "n")
    assert helpers.query(scratch.target, "SHOW INDEX FROM n WHERE Key_name = 'n'")


def test_a_table_at_most_chunk_rows_takes_the_one_piece_path(scratch, runtime_factory) -> None:
    _numbers(scratch, rows=1_000)
    scratch.write_tables([{"table": "n", "primary_key": "id", "chunk_rows": 1_000}])
    runtime = runtime_factory(chunk_rows=10)

    result = sync_table(runtime, "n")

    assert (result.chunks, result.rows_loaded) == (0, 1_000)
    assert result.load_id is not None and len(result.load_id) < 32  # dlt's load id
    assert _same(scratch, "n")


def test_composite_keys_split_at_boundaries_without_losing_or_doubling_rows(
    scratch, runtime_factory
) -> None:
    # many rows share each first key column, so boundaries fall inside runs of equal values
    helpers.execute(
        scratch.source,
        "CREATE TABLE c (a INT NOT NULL, b VARCHAR(20) NOT NULL, v INT, PRIMARY KEY (a, b))",
        "INSERT INTO c SELECT seq DIV 7, CONCAT('k', seq % 7), seq FROM seq_1_to_5000",
    )
    scratch.write_tables([{"table": "c", "primary_key": ["a", "b"]}])
    runtime = runtime_factory(chunk_rows=333, chunk_workers=2)

    result = sync_table(runtime, "c")

    assert result.chunks == 16
    assert sum(c[2] for c in _chunks(scratch, "c")) == 5_000
    assert _same(scratch, "c")
    assert verify_table(runtime, "c").ok


def test_string_keys_in_a_case_insensitive_collation_split_exactly(
    scratch, runtime_factory
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE s (code VARCHAR(40) COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, "
        "v INT) DEFAULT CHARSET=utf8mb4",
        "INSERT INTO s SELECT CONCAT(IF(seq % 2, 'Key-', 'key_'), LPAD(seq, 5, '0'), "
        "IF(seq % 3 = 0, 'é', ''), IF(seq % 5 = 0, ' x''y\\\\z', '')), seq FROM seq_1_to_3000",
    )
    scratch.write_tables([{"table": "s", "primary_key": "code"}])
    runtime = runtime_factory(chunk_rows=250, chunk_workers=2)

    result = sync_table(runtime, "s")

    assert result.chunks == 12
    assert _same(scratch, "s")
    assert verify_table(runtime, "s").ok


def _start_copy(
    runtime: Runtime, table: str, *, planned: bool = True
) -> tuple[Job, CopyProgress]:
    """A copy started as a coordinator starts it; ``planned``: with every range recorded."""
    config = runtime.tables.get(table)
    assert isinstance(config, TableConfig)
    with runtime.engines.source.connect() as conn:
        source = require_source_table(
            conn, runtime.dialect.source_schema(), table, config.primary_key, config.modifier
        )
    runtime.dialect.ensure_staging(runtime.engines.target)
    copy = chunked_copy.start(runtime, source, config, runtime.settings.chunk_rows, lambda: None)
    assert copy is not None
    job = Job(runtime, source, config.primary_key, copy)
    if planned:
        chunked_copy.plan_rest(job, runtime.settings.chunk_rows)
    return job, chunked_copy.progress_of(runtime)


def test_the_next_sync_resumes_an_interrupted_copy_and_copies_only_the_rest(
    scratch, runtime_factory
) -> None:
    _numbers(scratch)
    scratch.write_tables([{"table": "n", "primary_key": "id", "modifier": "updated_at"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_workers=1, chunk_lease_seconds=1)
    sync_table(runtime, "n")  # the target exists: the interrupted copy is a re-copy
    job, progress = _start_copy(runtime, "n")
    for _ in range(4):  # a coordinator copied four chunks, then died holding a fifth
        chunk = progress.claim(job.copy.copy_id, "earlier", 60)
        assert chunk is not None
        chunked_copy.copy_chunk(job, chunk)
    progress.claim(job.copy.copy_id, "dead", 1)

    result = sync_table(runtime, "n")  # an incremental call: it finishes the copy first

    assert (result.mode, result.chunks, result.chunks_reused) == ("full_refresh", 10, 4)
    attempts = [c[3] for c in _chunks(scratch, "n")]
    assert attempts == [1, 1, 1, 1, 2, 1, 1, 1, 1, 1]  # only the dead one's chunk twice
    assert _same(scratch, "n")


def test_a_holder_whose_lease_was_taken_over_loads_nothing(scratch, runtime_factory) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000)
    job, progress = _start_copy(runtime, "n")
    slow = progress.claim(job.copy.copy_id, "slow", 0.2)
    time.sleep(0.5)
    fast = progress.claim(job.copy.copy_id, "fast", 60)
    assert slow is not None and fast is not None and slow.number == fast.number

    with pytest.raises(LeaseLost):
        chunked_copy.copy_chunk(job, slow)
    assert helpers.query(scratch.target + "_staging", "SELECT COUNT(*) FROM n") == [(0,)]
    chunked_copy.copy_chunk(job, fast)
    assert helpers.query(scratch.target + "_staging", "SELECT COUNT(*) FROM n") == [(1_000,)]


def test_an_unfinished_copy_older_than_the_limit_is_discarded(scratch, runtime_factory) -> None:
    _numbers(scratch, rows=3_000)
    # copied whole each sync: a table without modifier would otherwise sync by its differences
    scratch.write_tables([{"table": "n", "primary_key": "id", "strategy": "replace"}])
    runtime = runtime_factory(chunk_rows=1_000)
    sync_table(runtime, "n")
    job, progress = _start_copy(runtime, "n")
    helpers.execute(
        scratch.target,
        "UPDATE _dbsync_copies SET started_at = NOW(6) - INTERVAL 7 HOUR "
        f"WHERE copy_id = '{job.copy.copy_id}'",
    )

    result = sync_table(runtime, "n")

    assert (result.chunks, result.chunks_reused) == (3, 0)
    assert progress.state(job.copy.copy_id) is None  # discarded, then forgotten
    assert _same(scratch, "n")


def test_changes_during_a_chunked_copy_are_caught_by_the_next_incremental_sync(
    scratch, runtime_factory
) -> None:
    _numbers(scratch)
    scratch.write_tables([{"table": "n", "primary_key": "id", "modifier": "updated_at"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_workers=1)

    def writer(table: str, rows: int) -> None:
        # after the first chunk is in: a row already copied changes, then a later one with a
        # newer cursor value, which the copy does read; the target's highest cursor is then
        # newer than the first change
        if not writes:
            writes.append(rows)
            helpers.execute(
                scratch.source,
                "UPDATE n SET v = 'early', updated_at = '2030-01-01 00:00:01' WHERE id = 5",
                "UPDATE n SET v = 'late', updated_at = '2030-01-01 00:00:02' WHERE id = 9999",
            )

    writes: list[int] = []
    runtime.chunk_listeners.append(writer)
    result = sync_table(runtime, "n", full_refresh=True)
    assert result.chunks == 10 and writes
    assert helpers.query(scratch.target, "SELECT v FROM n WHERE id IN (5, 9999) ORDER BY id") == [
        (helpers.query(scratch.source, "SELECT MD5(5)")[0][0],),
        ("late",),
    ]

    again = sync_table(runtime, "n")

    assert again.mode == "incremental"
    assert _same(scratch, "n")
    assert verify_table(runtime, "n").ok


def test_the_cli_copies_chunks_with_parallel_threads_and_logs_each(scratch) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    env = {**scratch.env(), "CHUNK_ROWS": "1000"}

    done = helpers.run_dbsync(
        env, "sync", "n", "--full-refresh", "--parallel", "2", cwd=scratch.tables_path.parent
    )

    assert done.returncode == 0, done.stdout + done.stderr
    copied = sorted(re.findall(r"table n: chunk (\d)/\d\+? copied: 1,000 rows", done.stderr))
    assert copied == ["1", "2", "3"], done.stderr
    assert _same(scratch, "n")


def test_status_shows_a_copy_in_progress(scratch, runtime_factory) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000)
    job, progress = _start_copy(runtime, "n")
    chunk = progress.claim(job.copy.copy_id, "host:1", 60)
    assert chunk is not None
    chunked_copy.copy_chunk(job, chunk)
    progress.claim(job.copy.copy_id, "host:2", 60)

    shown = helpers.run_dbsync(scratch.env(), "status", cwd=scratch.tables_path.parent)

    assert shown.returncode == 0, shown.stderr
    assert re.search(
        r"copying n: 1/3 chunks done \(1 running\), 1,000 rows, elapsed [\d.]+s, about "
        r"[\d.]+s left, workers: ",
        shown.stdout,
    ), shown.stdout


def test_status_json_gives_each_table_its_copy_in_progress(scratch, runtime_factory) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}, {"table": "other"}])
    runtime = runtime_factory(chunk_rows=1_000)
    job, progress = _start_copy(runtime, "n")
    chunk = progress.claim(job.copy.copy_id, "host:1", 60)
    assert chunk is not None
    chunked_copy.copy_chunk(job, chunk)

    shown = helpers.run_dbsync(scratch.env(), "status", "--json", cwd=scratch.tables_path.parent)

    assert shown.returncode == 0, shown.stderr
    records = {r["table"]: r for r in json.loads(shown.stdout)}
    copy = records["n"]["copy"]
    assert (copy["chunks_done"], copy["chunks_total"], copy["chunks_total_exact"]) == (1, 3, True)
    assert (copy["rows"], copy["workers"]) == (1_000, ["host:1"])
    assert copy["seconds_left"] is not None and copy["elapsed_s"] >= 0
    assert records["other"]["copy"] is None


def test_a_helper_copies_every_chunk_left_without_the_table_lock(scratch, runtime_factory) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000)
    job, progress = _start_copy(runtime, "n")

    with runtime.dialect.table_lock(runtime.engines.target, "n"):  # held by "the coordinator"
        summary = help_copy(runtime, "n", job.copy.copy_id)
        stranger = help_copy(runtime, "n", "0" * 32)

    assert (summary["copy_id"], summary["chunks"]) == (job.copy.copy_id, [0, 1, 2])
    assert progress.progress(job.copy.copy_id).complete
    assert stranger["chunks"] == []  # no such copy: nothing to help with


def test_a_table_listed_without_a_key_is_split_by_the_sources_own_key(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=3_000)
    helpers.execute(
        scratch.source,
        "CREATE TABLE heap (v INT NOT NULL, w VARCHAR(10))",
        "INSERT INTO heap SELECT seq % 10, 'x' FROM seq_1_to_3000",
    )
    scratch.write_tables([{"table": "n"}, {"table": "heap"}])
    runtime = runtime_factory(chunk_rows=1_000)

    keyed, keyless = sync_table(runtime, "n"), sync_table(runtime, "heap")

    assert (keyed.chunks, keyless.chunks) == (3, 0)  # no key at all: one piece
    assert _same(scratch, "n")
    assert sorted(helpers.query(scratch.target, "SELECT v, w FROM heap")) == sorted(
        helpers.query(scratch.source, "SELECT v, w FROM heap")
    )


def test_a_table_whose_staging_name_differs_is_chunked_into_that_table(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=3_000, table="odd.name")
    scratch.write_tables([{"table": "odd.name", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000)

    result = sync_table(runtime, "odd.name")

    assert (result.chunks, result.rows_loaded) == (3, 3_000)
    assert _same(scratch, "odd.name")


def _ranges(scratch, table: str) -> list[tuple]:
    return helpers.query(
        scratch.target,
        "SELECT lower_key, upper_key FROM _dbsync_copy_chunks WHERE table_name = %s "
        "ORDER BY chunk_no",
        (table,),
    )


def test_chunks_are_copied_while_the_rest_of_the_table_is_still_being_planned(
    scratch, runtime_factory
) -> None:
    _numbers(scratch)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_workers=1)
    job, progress = _start_copy(runtime, "n", planned=False)
    assert progress.plan_state(job.copy.copy_id) == (1, False)  # only the first range known
    first = progress.claim(job.copy.copy_id, "early", 60)
    assert first is not None
    chunked_copy.copy_chunk(job, first)

    result = sync_table(runtime, "n")  # resumes: plans the rest while copying

    assert (result.chunks, result.chunks_reused, result.rows_loaded) == (10, 1, 10_000)
    ranges = _ranges(scratch, "n")
    assert ranges[0][0] is None and ranges[-1][1] is None
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert _same(scratch, "n")


def test_a_copy_whose_planner_stopped_is_planned_on_from_its_last_range(
    scratch, runtime_factory
) -> None:
    _numbers(scratch)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_workers=2)
    job, progress = _start_copy(runtime, "n", planned=False)
    steps = iter(range(3))  # the planner records three more ranges, then dies
    chunked_copy.plan_rest(job, 1_000, stopped=lambda: next(steps, None) is None)
    assert progress.plan_state(job.copy.copy_id) == (4, False)

    result = sync_table(runtime, "n")

    assert (result.chunks, result.rows_loaded) == (10, 10_000)
    assert [c[2] for c in _chunks(scratch, "n")] == [1_000] * 10  # no range twice or lost
    assert _same(scratch, "n")


def test_a_helper_waits_for_ranges_being_planned_and_copies_them(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_lease_seconds=20)
    job, progress = _start_copy(runtime, "n", planned=False)
    summaries: list[dict] = []
    helper = threading.Thread(
        target=lambda: summaries.append(help_copy(runtime, "n", job.copy.copy_id))
    )

    helper.start()
    time.sleep(1.0)  # the helper has copied the first range and waits for more
    chunked_copy.plan_rest(job, 1_000)
    helper.join(timeout=30)

    assert summaries and summaries[0]["chunks"] == [0, 1, 2]
    assert progress.progress(job.copy.copy_id).complete


def test_a_helper_stops_waiting_when_planning_stalls_for_a_lease(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_lease_seconds=1)
    job, _progress = _start_copy(runtime, "n", planned=False)  # its planner never runs
    started = time.monotonic()

    summary = help_copy(runtime, "n", job.copy.copy_id)

    assert summary["chunks"] == [0]
    assert time.monotonic() - started < 10


def test_small_secondary_indexes_are_kept_up_while_the_chunks_load(
    scratch, runtime_factory
) -> None:
    _numbers(scratch)
    scratch.write_tables([{"table": "n", "primary_key": "id", "modifier": "updated_at"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_workers=1)
    seen: list[set[str]] = []

    def staging_indexes(table: str, rows: int) -> None:
        shown = helpers.query(scratch.target + "_staging", "SHOW INDEX FROM n")
        seen.append({row[2] for row in shown})

    runtime.chunk_listeners.append(staging_indexes)
    result = sync_table(runtime, "n", full_refresh=True)

    assert result.chunks == 10
    assert seen[0] == {"PRIMARY", "n", "u"}  # there from the first chunk on
    shown = helpers.query(scratch.target, "SHOW INDEX FROM n")
    assert {row[2] for row in shown} == {"PRIMARY", "n", "u"}


def test_building_indexes_after_the_load_adds_only_those_staging_lacks(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=10)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory()
    with runtime.engines.source.connect() as conn:
        source = require_source_table(conn, scratch.source, "n", ("id",), None)
    dialect, target = runtime.dialect, runtime.engines.target
    dialect.ensure_staging(target)
    dialect.create_staging(target, source, ("id",), None, with_indexes=True)
    helpers.execute(scratch.target + "_staging", "ALTER TABLE n DROP INDEX u")

    dialect.index_staging(target, source, None)

    shown = helpers.query(scratch.target + "_staging", "SHOW INDEX FROM n")
    assert sorted({row[2] for row in shown}) == ["PRIMARY", "n", "u"]


def test_a_staged_count_that_differs_from_the_chunks_fails_and_keeps_the_target(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000, chunk_workers=1)
    sync_table(runtime, "n")
    before = helpers.exact_rows(scratch.target, "n")

    def stray_row(table: str, rows: int) -> None:  # a row no chunk loaded appears in staging
        helpers.execute(
            scratch.target + "_staging",
            "INSERT IGNORE INTO n VALUES (999999, 'stray', 1, '2025-01-01')",
        )

    runtime.chunk_listeners.append(stray_row)
    result = run_sync(runtime, "n", full_refresh=True)

    assert result.status == "failed"
    assert "staged 3001 rows but its chunks loaded 3000" in (result.error or "")
    assert helpers.exact_rows(scratch.target, "n") == before


def test_an_emptied_target_of_an_incremental_table_is_copied_in_chunks(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id", "modifier": "updated_at"}])
    runtime = runtime_factory(chunk_rows=1_000)
    sync_table(runtime, "n")
    helpers.execute(scratch.target, "DELETE FROM n")

    result = sync_table(runtime, "n")

    assert (result.mode, result.chunks, result.rows_loaded) == ("full_refresh", 3, 3_000)
    assert _same(scratch, "n")


def test_a_chunk_whose_holders_connection_ended_is_claimable_before_its_lease_runs_out(
    scratch, runtime_factory
) -> None:
    _numbers(scratch, rows=3_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    runtime = runtime_factory(chunk_rows=1_000)
    job, progress = _start_copy(runtime, "n")
    copy_id, engine = job.copy.copy_id, runtime.engines.target
    alive, killed = Holder(engine), Holder(engine)
    held = progress.claim(copy_id, "alive", 600, alive.take())
    lost = progress.claim(copy_id, "killed", 600, killed.take())
    assert held is not None and lost is not None
    killed.raw.invalidate()  # the connection ends as a killed process's does

    others = [Holder(engine) for _ in range(3)]
    again = [progress.claim(copy_id, "next", 600, other.take()) for other in others]

    assert [c.number if c else None for c in again] == [lost.number, 2, None]
    for holder in (alive, *others):
        holder.close()


def _waiting_chunk_read(database: str, table: str) -> int:
    """The processlist id of a chunk's SELECT of ``table`` once it waits for its lock."""
    return helpers.waiting_for_metadata_lock(f"SELECT CAST(% FROM `{database}`.`{table}`%", 60)


def test_a_chunk_that_fails_transiently_is_retried_in_place(scratch) -> None:
    # the CLI in its own process: connectorx keeps the GIL while its query waits, so the
    # killer cannot be a thread of the syncing process
    _numbers(scratch, rows=30_000)
    scratch.write_tables([{"table": "n", "primary_key": "id"}])
    env = {**scratch.env(), "CHUNK_ROWS": "1000"}
    sync = subprocess.Popen(
        [str(Path(sys.executable).with_name("dbsync")), "sync", "n", "--full-refresh",
         "--parallel", "1"],
        cwd=scratch.tables_path.parent, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    lock = helpers.connect(scratch.source)
    try:
        _wait_for_a_done_chunk(scratch, "n")
        with lock.cursor() as cur:
            cur.execute("LOCK TABLES n WRITE")  # the next chunk's read waits for it
        helpers.execute(None, f"KILL QUERY {_waiting_chunk_read(scratch.source, 'n')}")
        with lock.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        stdout, stderr = sync.communicate(timeout=120)
    finally:
        lock.close()
        if sync.poll() is None:
            sync.kill()

    assert sync.returncode == 0, stdout + stderr
    assert re.search(r"chunk \d+ failed \(attempt 1 of 4\), given back, retrying", stderr)
    attempts = [c[3] for c in _chunks(scratch, "n")]
    assert len(attempts) == 30 and sorted(attempts) == [1] * 29 + [2]  # the killed read, twice
    assert _same(scratch, "n")


def _wait_for_a_done_chunk(scratch, table: str) -> None:
    deadline = time.monotonic() + 60
    while not any(c[1] == "done" for c in _table_chunks(scratch, table)):
        assert time.monotonic() < deadline, "no chunk was copied"
        time.sleep(0.01)


def _table_chunks(scratch, table: str) -> list[tuple]:
    try:
        return _chunks(scratch, table)
    except Exception:  # noqa: BLE001 - the progress tables are not there yet
        return []
