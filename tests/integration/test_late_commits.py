"""No row lost to a late commit or a cursor ahead of the clock, with default settings.

The source table ``t`` has a cursor the server stamps (``ON UPDATE CURRENT_TIMESTAMP(6)``),
written through a second connection whose transactions stay open across syncs.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import pymysql
import pytest

from dbsync.backends.status import read_status
from dbsync.ops.metrics import metrics_text
from dbsync.sync.run import sync_table
from tests import helpers


def _make_table(scratch, cursor: str = "TIMESTAMP(6)", **options) -> None:
    stamp = "CURRENT_TIMESTAMP(6)"
    helpers.execute(
        scratch.source,
        f"CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, "
        f"updated_at {cursor} NOT NULL DEFAULT {stamp} ON UPDATE {stamp}, KEY (updated_at))",
        "INSERT INTO t (id, v) SELECT seq, CONCAT('v', seq) FROM seq_1_to_100",
    )
    scratch.write_tables(
        [{"table": "t", "primary_key": ["id"], "modifier": "updated_at", **options}]
    )


def _writer(scratch, zone: str = "+00:00") -> pymysql.Connection:
    """A client connection of the application: transactions stay open until it commits."""
    conn = helpers.connect(scratch.source)
    with conn.cursor() as cur:
        cur.execute(f"SET time_zone = '{zone}'")
    conn.autocommit(False)
    return conn


def _same(scratch) -> bool:
    return helpers.exact_rows(scratch.source, "t") == helpers.exact_rows(scratch.target, "t")


def test_a_transaction_committed_after_a_sync_arrives_in_the_next(scratch, runtime_factory) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    late = _writer(scratch)
    late.cursor().execute("UPDATE t SET v = 'late' WHERE id = 10")  # stamped now, not committed
    time.sleep(0.05)
    helpers.execute(scratch.source, "UPDATE t SET v = 'early' WHERE id = 20")  # stamped later
    sync_table(runtime, "t")  # reads row 20: the target's newest value passes row 10's
    late.commit()
    late.close()

    sync_table(runtime, "t")

    assert _same(scratch)


def test_a_transaction_open_across_several_syncs_loses_nothing(scratch, runtime_factory) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    long = _writer(scratch)
    cur = long.cursor()
    cur.execute("UPDATE t SET v = 'long' WHERE id = 1")
    cur.execute("INSERT INTO t (id, v) VALUES (1001, 'long insert')")
    for round_ in range(3):
        time.sleep(1.1)  # past the safe point's one-second margin
        helpers.execute(
            scratch.source,
            f"UPDATE t SET v = 'round {round_}' WHERE id = {50 + round_}",
            f"INSERT INTO t (id, v) VALUES ({2000 + round_}, 'insert {round_}')",
        )
        sync_table(runtime, "t")
        cur.execute(f"UPDATE t SET v = 'long {round_}' WHERE id = {2 + round_}")
    long.commit()
    long.close()

    sync_table(runtime, "t")

    assert _same(scratch)


def test_a_datetime_cursor_stamped_in_the_writers_zone_loses_no_late_commit(
    scratch, runtime_factory
) -> None:
    # writers five hours behind UTC: a safe point left in UTC would be five hours ahead of
    # every value they stamp, and read nothing
    _make_table(scratch, cursor="DATETIME(6)")
    runtime = runtime_factory(cursor_time_zone="-05:00")
    sync_table(runtime, "t")
    late = _writer(scratch, zone="-05:00")
    late.cursor().execute("UPDATE t SET v = 'late' WHERE id = 10")
    time.sleep(0.05)
    writer = _writer(scratch, zone="-05:00")
    writer.cursor().execute("UPDATE t SET v = 'early' WHERE id = 20")
    writer.commit()
    writer.close()
    sync_table(runtime, "t")
    late.commit()
    late.close()

    sync_table(runtime, "t")

    assert _same(scratch)


def test_the_safe_point_is_recorded_with_the_status_when_the_sync_commits(
    scratch, runtime_factory
) -> None:
    _make_table(scratch)
    runtime = runtime_factory()

    result = sync_table(runtime, "t")

    (row,) = read_status(runtime.engines.target, scratch.target)
    assert (row.safe_point, row.cursor_fallback) == (result.safe_point, False)
    assert row.safe_point is not None


def test_cursor_values_a_day_ahead_never_hide_later_updates(
    scratch, runtime_factory, caplog
) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(
        scratch.source, "UPDATE t SET updated_at = NOW(6) + INTERVAL 1 DAY WHERE id IN (10, 20)"
    )
    first = sync_table(runtime, "t")
    helpers.execute(scratch.source, "UPDATE t SET v = 'ordinary' WHERE id IN (30, 40)")
    caplog.set_level(logging.WARNING, logger="dbsync.sync_engine")

    second = sync_table(runtime, "t")

    assert _same(scratch)
    assert (first.future_cursor_rows, second.future_cursor_rows) == (2, 2)


def test_rows_ahead_of_the_clock_are_warned_about_once(scratch, runtime_factory, caplog) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(
        scratch.source, "UPDATE t SET updated_at = NOW(6) + INTERVAL 1 DAY WHERE id = 10"
    )
    caplog.set_level(logging.WARNING, logger="dbsync.sync_engine")

    for _ in range(3):
        sync_table(runtime, "t")

    warnings = [r for r in caplog.records if "ahead of the source's clock" in r.getMessage()]
    assert len(warnings) == 1
    (row,) = read_status(runtime.engines.target, scratch.target)
    assert row.future_cursor_rows == 1


@pytest.fixture
def unprivileged(scratch):
    """A source user that may read the source database but lacks PROCESS."""
    user = helpers.unique_name("np")[:30]
    helpers.execute(
        None,
        f"CREATE USER '{user}'@'%' IDENTIFIED BY 'np-secret'",
        f"GRANT SELECT ON `{scratch.source}`.* TO '{user}'@'%'",
    )
    yield user
    helpers.execute(None, f"DROP USER '{user}'@'%'")


def test_without_process_privilege_the_table_runs_on_the_fallback_lag(
    scratch, runtime_factory, unprivileged
) -> None:
    _make_table(scratch)
    runtime = runtime_factory(source_db_user=unprivileged, source_db_pass="np-secret")
    sync_table(runtime, "t")
    late = _writer(scratch)
    late.cursor().execute("UPDATE t SET v = 'late' WHERE id = 10")
    time.sleep(0.05)
    helpers.execute(scratch.source, "UPDATE t SET v = 'early' WHERE id = 20")
    sync_table(runtime, "t")
    late.commit()  # within CURSOR_FALLBACK_LAG_SECONDS: re-read
    late.close()

    result = sync_table(runtime, "t")

    assert _same(scratch)
    assert (result.cursor_fallback, result.safe_point) == (True, None)
    (row,) = read_status(runtime.engines.target, scratch.target)
    assert row.cursor_fallback


def test_without_process_privilege_a_commit_later_than_the_fallback_lag_is_missed(
    scratch, runtime_factory, unprivileged
) -> None:
    # the fallback's documented limit: what it guarantees is the lag, no more
    _make_table(scratch)
    runtime = runtime_factory(
        source_db_user=unprivileged, source_db_pass="np-secret", cursor_fallback_lag_seconds=0
    )
    sync_table(runtime, "t")
    late = _writer(scratch)
    late.cursor().execute("UPDATE t SET v = 'late' WHERE id = 10")
    time.sleep(0.05)
    helpers.execute(scratch.source, "UPDATE t SET v = 'early' WHERE id = 20")
    sync_table(runtime, "t")
    late.commit()
    late.close()

    sync_table(runtime, "t")

    assert helpers.query(scratch.target, "SELECT v FROM t WHERE id = 10") == [("v10",)]


def test_check_config_says_in_one_line_which_grant_gives_a_safe_point(
    scratch, unprivileged
) -> None:
    _make_table(scratch)
    env = {**scratch.env(), "SOURCE_DB_USER": unprivileged, "SOURCE_DB_PASS": "np-secret"}

    done = helpers.run_dbsync(env, "check-config", cwd=scratch.tables_path.parent)

    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert f"GRANT PROCESS ON *.* TO '{unprivileged}'@'%'" in line
    assert "CURSOR_FALLBACK_LAG_SECONDS" in line


def test_check_config_says_nothing_when_the_source_gives_a_safe_point(scratch) -> None:
    _make_table(scratch)

    done = helpers.run_dbsync(scratch.env(), "check-config", cwd=scratch.tables_path.parent)

    assert (done.returncode, done.stderr) == (0, "")


def test_metrics_show_the_tables_on_the_fallback_and_rows_ahead_of_the_clock(
    scratch, runtime_factory, unprivileged
) -> None:
    _make_table(scratch)
    helpers.execute(
        scratch.source,
        "CREATE TABLE u LIKE t",
        "INSERT INTO u (id, v, updated_at) VALUES (1, 'ahead', NOW(6) + INTERVAL 1 DAY)",
    )
    scratch.write_tables(
        [
            {"table": "t", "primary_key": ["id"], "modifier": "updated_at"},
            {"table": "u", "primary_key": ["id"], "modifier": "updated_at"},
        ]
    )
    sync_table(runtime_factory(source_db_user=unprivileged, source_db_pass="np-secret"), "t")
    sync_table(runtime_factory(), "u")

    text = metrics_text(
        status_engine=runtime_factory().engines.target, status_database=scratch.target
    )

    assert 'table_cursor_fallback{table="t"} 1.0' in text
    assert 'table_cursor_fallback{table="u"} 0.0' in text
    assert 'table_future_cursor_rows{table="u"} 1.0' in text


def test_a_status_table_of_an_earlier_release_gets_the_cursor_columns(
    scratch, runtime_factory
) -> None:
    _make_table(scratch)
    helpers.execute(
        scratch.target,
        "CREATE TABLE _dbsync_status (table_name VARCHAR(64) NOT NULL PRIMARY KEY, "
        "status VARCHAR(16) NOT NULL, mode VARCHAR(16) NOT NULL, last_started_at DATETIME(6), "
        "last_finished_at DATETIME(6), last_success_at DATETIME(6), "
        "rows_extracted BIGINT NOT NULL DEFAULT 0, rows_loaded BIGINT NOT NULL DEFAULT 0, "
        "duration_s DOUBLE NOT NULL DEFAULT 0, last_error TEXT, load_id VARCHAR(64), "
        "worker VARCHAR(255), consecutive_failures INT NOT NULL DEFAULT 0)",
    )
    runtime = runtime_factory()

    result = sync_table(runtime, "t")

    (row,) = read_status(runtime.engines.target, scratch.target)
    assert row.safe_point == result.safe_point is not None


def _source_now(scratch) -> datetime:
    return datetime.fromisoformat(
        helpers.query(scratch.source, "SELECT CAST(NOW(6) AS CHAR)")[0][0]
    )


def test_an_open_writing_transaction_holds_the_safe_point_back(scratch, runtime_factory) -> None:
    _make_table(scratch)
    runtime = runtime_factory()
    sync_table(runtime, "t")
    writer = _writer(scratch)
    writer.cursor().execute("UPDATE t SET v = 'open' WHERE id = 3")
    started = _source_now(scratch)
    time.sleep(2.1)

    result = sync_table(runtime, "t")
    writer.rollback()
    writer.close()

    assert datetime.fromisoformat(result.safe_point) <= started
