"""Folds and key lists come back from the server packed into one text value; a text the
server cuts short (a small ``group_concat_max_len`` or ``max_allowed_packet``) is read again
as rows, with the same result."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dbsync.backends.engines import fetch_all
from dbsync.backends.key_folds import RangeSide, read_folds
from dbsync.backends.mysql.rowdiff import Fingerprint, RangeRowSide
from dbsync.backends.mysql.schema import read_table
from dbsync.model import Buckets, KeySet
from tests import helpers

ROWS = 3_000


@pytest.fixture
def table(scratch) -> str:
    helpers.execute(
        scratch.source,
        "CREATE TABLE k (id BIGINT NOT NULL PRIMARY KEY, v VARCHAR(32))",
        f"INSERT INTO k SELECT seq * 3, MD5(seq) FROM seq_1_to_{ROWS}",
    )
    return scratch.source


def _engine(database: str, group_concat_max_len: int) -> sa.Engine:
    url = sa.engine.URL.create(
        "mysql+pymysql", username=helpers.MYSQL_USER, host=helpers.MYSQL_HOST,
        port=helpers.MYSQL_PORT, database=database,
    )
    init = f"SET group_concat_max_len = {group_concat_max_len}"
    return sa.create_engine(url, connect_args={"init_command": init})


@pytest.fixture
def engines(table: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    roomy, cramped = _engine(table, 1 << 25), _engine(table, 4)
    yield roomy, cramped
    roomy.dispose()
    cramped.dispose()


def _as_rows(engine: sa.Engine) -> dict[int, tuple[int, int]]:
    rows = fetch_all(engine, "SELECT id & 255, COUNT(*), BIT_XOR(CRC32(v)) FROM k GROUP BY 1")
    return {int(b): (int(n), int(x)) for b, n, x in rows}


def test_packed_folds_equal_the_folds_read_as_rows(engines) -> None:
    roomy, _ = engines
    folds = read_folds(lambda sql: fetch_all(roomy, sql), "id & 255", "CRC32(v)", "k")
    assert folds == _as_rows(roomy)
    assert sum(n for n, _ in folds.values()) == ROWS


def test_folds_cut_short_by_the_server_are_read_as_rows(engines) -> None:
    roomy, cramped = engines
    folds = read_folds(lambda sql: fetch_all(cramped, sql), "id & 255", "CRC32(v)", "k")
    assert folds == _as_rows(roomy)


def _range_side(engine: sa.Engine, database: str) -> RangeSide:
    with engine.connect() as conn:
        schema = read_table(conn, database, "k")
    assert schema is not None
    return RangeSide(KeySet(engine, database, schema, ("id",)), 3, 3 * ROWS)


def test_key_lists_cut_short_are_read_as_rows_with_the_same_keys(engines, table) -> None:
    roomy, cramped = engines
    buckets = Buckets(6, (4, (1, 9)))  # two of 16 key ranges, split four ways
    packed = _range_side(roomy, table).identities(buckets, with_keys=True)
    as_rows = _range_side(cramped, table).identities(buckets, with_keys=True)
    assert sorted(packed) == sorted(as_rows)
    assert packed and all(identity == str(key) for identity, key in packed)


def _row_side(engine: sa.Engine, database: str) -> RangeRowSide:
    with engine.connect() as conn:
        schema = read_table(conn, database, "k")
    assert schema is not None
    keys = KeySet(engine, database, schema, ("id",))
    return RangeRowSide(keys, Fingerprint(("id", "v"), frozenset({"v"})), 3, 3 * ROWS)


def test_row_lists_cut_short_are_read_as_rows_with_the_same_fingerprints(engines, table) -> None:
    roomy, cramped = engines
    buckets = Buckets(6, (4, (1, 9)))
    packed = _row_side(roomy, table).rows(buckets)
    as_rows = _row_side(cramped, table).rows(buckets)
    assert sorted(packed) == sorted(as_rows)
    assert packed and all(identity == str(key) for identity, _, key in packed)
