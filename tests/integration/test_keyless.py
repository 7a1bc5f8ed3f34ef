"""Tables without any key: copied by full refresh, verified whole, mirrored without a key."""

from __future__ import annotations

from dbsync.compare.verify import verify_table
from dbsync.sync.run import run_sync, sync_table
from tests import helpers

KEYLESS_DDL = (
    "CREATE TABLE hits (path VARCHAR(20) NOT NULL, day DATE NULL, n INT NULL, KEY by_path (path))"
)
# 30 rows, each (path, day, n) row three times
KEYLESS_ROWS = (
    "INSERT INTO hits SELECT CONCAT('/p/', seq % 10), '2024-01-01' + INTERVAL seq % 10 DAY, "
    "seq % 10 FROM seq_1_to_30"
)


def _rows(database: str) -> list[tuple]:
    return sorted(helpers.exact_rows(database, "hits"), key=repr)


def _keyless(scratch) -> None:
    helpers.execute(scratch.source, KEYLESS_DDL, KEYLESS_ROWS)
    scratch.write_tables([{"table": "hits"}])


def test_a_keyless_table_with_duplicate_rows_is_copied_without_a_key(
    scratch, runtime_factory
) -> None:
    _keyless(scratch)

    result = run_sync(runtime_factory(), "hits")

    assert (result.status, result.mode, result.rows_loaded) == ("synced", "full_refresh", 30)
    assert _rows(scratch.target) == _rows(scratch.source)
    assert helpers.primary_key(scratch.target, "hits") == []
    assert helpers.column_types(scratch.target, "hits") == helpers.column_types(
        scratch.source, "hits"
    )


def test_a_keyless_table_resyncs_inserts_updates_and_deletes(scratch, runtime_factory) -> None:
    _keyless(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "hits")
    helpers.execute(
        scratch.source,
        "INSERT INTO hits VALUES ('/p/1', '2024-01-02', 1), ('/new', NULL, NULL)",
        "UPDATE hits SET n = 99 WHERE path = '/p/2'",
        "DELETE FROM hits WHERE path = '/p/3'",
    )

    result = run_sync(runtime, "hits")

    assert (result.status, result.rows_loaded) == ("synced", 29), result.error
    assert _rows(scratch.target) == _rows(scratch.source)
    assert helpers.primary_key(scratch.target, "hits") == []


def test_a_keyless_table_verifies_as_one_whole_table_chunk(scratch, runtime_factory) -> None:
    _keyless(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "hits")

    report = verify_table(runtime, "hits", chunk_rows=7)
    done = helpers.run_dbsync(scratch.env(), "verify", "hits", cwd=scratch.tables_path.parent)

    assert report.ok and (report.chunks, report.source_rows, report.target_rows) == (1, 30, 30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hits: OK source=30 target=30 chunks=1" in done.stdout


def test_verify_sees_duplicate_rows_replaced_by_other_duplicates(scratch, runtime_factory) -> None:
    _keyless(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "hits")
    # same row count, and each changed row comes in pairs: an XOR of row hashes would not see it
    helpers.execute(
        scratch.target,
        "DELETE FROM hits WHERE path = '/p/4' LIMIT 2",
        "INSERT INTO hits VALUES ('/other', NULL, 1), ('/other', NULL, 1)",
    )

    report = verify_table(runtime, "hits")
    done = helpers.run_dbsync(scratch.env(), "verify", "hits", cwd=scratch.tables_path.parent)

    assert not report.ok
    assert (report.source_rows, report.target_rows) == (30, 30)
    assert done.returncode == 1
    assert "[start .. end): source 30 rows, target 30 rows, content differs" in done.stdout
    assert "rows: not told apart (the table has no key)" in done.stdout


def test_check_config_accepts_a_keyless_full_refresh_table(scratch) -> None:
    _keyless(scratch)

    done = helpers.run_dbsync(scratch.env(), "check-config", cwd=scratch.tables_path.parent)

    assert (done.returncode, done.stderr) == (0, "")


def test_omitting_the_key_of_a_table_that_has_one_mirrors_the_sources_key(
    scratch, runtime_factory
) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE keyed (a INT NOT NULL, b VARCHAR(5) NOT NULL, PRIMARY KEY (b, a))",
        "INSERT INTO keyed SELECT seq, CONCAT('k', seq % 3) FROM seq_1_to_20",
    )
    scratch.write_tables([{"table": "keyed"}])
    runtime = runtime_factory()

    result = run_sync(runtime, "keyed")
    report = verify_table(runtime, "keyed", chunk_rows=5)

    assert result.status == "synced", result.error
    assert helpers.primary_key(scratch.target, "keyed") == ["b", "a"]
    assert report.ok and report.key == ("b", "a") and report.chunks == 4
