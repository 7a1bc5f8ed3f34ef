"""An ENUM's error value (index 0, read as ''), stored by non-strict sources, arrives as such
through every write path, while the target's writes stay strict for everything else."""

from __future__ import annotations

import pymysql
import pytest

from dbsync.backends.mysql.enum_blanks import BlankEnumWriteError, writing_blanks
from dbsync.sync.run import run_sync
from tests import helpers

DDL = (
    "CREATE TABLE {t} (id INT NOT NULL PRIMARY KEY, e ENUM('x','y') NOT NULL, "
    "n INT NOT NULL, updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) "
    "ON UPDATE CURRENT_TIMESTAMP(6))"
)


def _non_strict(database: str, *statements: str) -> None:
    with helpers.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        for statement in statements:
            cur.execute(statement)


def _enums(database: str, table: str) -> list[tuple]:
    return helpers.query(database, f"SELECT id, e, e + 0, n FROM `{table}` ORDER BY id")


@pytest.fixture
def blanks(scratch) -> None:
    for table in ("inc", "plain"):
        _non_strict(
            scratch.source,
            DDL.format(t=table),
            f"INSERT INTO {table} (id, e, n) VALUES (1, 'x', 1), (2, 'bogus', 2), (3, 'y', 3)",
        )
    scratch.write_tables(
        [
            {"table": "inc", "primary_key": "id", "modifier": "updated_at"},
            {"table": "plain", "primary_key": "id"},
        ]
    )


def test_blanks_arrive_in_a_first_copy_and_in_later_merges(scratch, runtime_factory, blanks):
    runtime = runtime_factory()
    assert run_sync(runtime, "inc").status == "synced"
    _non_strict(
        scratch.source,
        "UPDATE inc SET n = 20 WHERE id = 2",
        "INSERT INTO inc (id, e, n) VALUES (4, 'also-bogus', 4)",
    )
    result = run_sync(runtime, "inc")
    assert result.status == "synced", result.error
    assert _enums(scratch.target, "inc") == _enums(scratch.source, "inc")
    assert (4, "", 0, 4) in _enums(scratch.target, "inc")


def test_a_diff_sync_repairs_a_row_into_a_blank(scratch, runtime_factory, blanks):
    runtime = runtime_factory()
    assert run_sync(runtime, "plain").status == "synced"
    _non_strict(scratch.source, "UPDATE plain SET e = 'bogus' WHERE id = 3")
    result = run_sync(runtime, "plain")
    assert result.status == "synced", result.error
    assert result.rows_repaired == 1
    assert _enums(scratch.target, "plain") == [(1, "x", 1, 1), (2, "", 0, 2), (3, "", 0, 3)]


@pytest.fixture
def target_cursor(scratch):
    helpers.execute(
        scratch.target, "CREATE TABLE w (id INT PRIMARY KEY, e ENUM('x') NOT NULL, s VARCHAR(3))"
    )
    conn = helpers.connect(scratch.target)
    conn.autocommit(False)
    cursor = conn.cursor()
    cursor.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
    yield conn, cursor
    conn.close()


def test_a_write_truncating_more_than_its_blanks_fails_and_keeps_nothing(target_cursor, scratch):
    conn, cursor = target_cursor
    truncated = pytest.raises(BlankEnumWriteError, match="Data truncated for column 's'")
    with truncated, writing_blanks(cursor, 1, ["e"]):
        cursor.execute("INSERT INTO w VALUES (1, '', 'too long')")
    conn.rollback()
    assert helpers.count(scratch.target, "w") == 0


def test_the_session_is_strict_again_after_writing_blanks(target_cursor) -> None:
    conn, cursor = target_cursor
    with writing_blanks(cursor, 1, ["e"]):
        cursor.execute("INSERT INTO w VALUES (1, '', 'ok')")
    with pytest.raises(pymysql.err.DataError):
        cursor.execute("INSERT INTO w VALUES (2, '', 'ok')")
    conn.rollback()
