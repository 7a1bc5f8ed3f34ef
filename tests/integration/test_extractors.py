"""Both source readers (connectorx, and PyMySQL used with TLS) copy values exactly."""

from __future__ import annotations

import pytest

from dbsync.compare.verify import verify_table
from dbsync.sync.run import sync_table
from tests import helpers

DDL = (
    "CREATE TABLE t (id INT UNSIGNED PRIMARY KEY, name VARCHAR(20) CHARACTER SET utf8mb4, "
    "amount DECIMAL(30,10), happened DATETIME(6) NULL, raw VARBINARY(8), "
    "changed TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
)
ROWS = (
    "INSERT INTO t VALUES (1, 'tab\\there 😀', 12345678901234567890.0123456789, "
    "'2024-02-29 23:59:59.999999', X'00090A5C', '2024-01-01 00:00:00'), "
    "(2, NULL, NULL, NULL, NULL, '2024-01-02 00:00:00')"
)


@pytest.mark.parametrize("extractor", ["connectorx", "pymysql"])
def test_reader_copies_the_table_exactly(
    scratch, runtime_factory, monkeypatch: pytest.MonkeyPatch, extractor: str
) -> None:
    monkeypatch.setenv("DBSYNC_EXTRACTOR", extractor)
    helpers.execute(scratch.source, DDL, ROWS)
    scratch.write_tables([{"table": "t", "primary_key": "id", "modifier": "changed"}])
    runtime = runtime_factory()

    assert sync_table(runtime, "t", full_refresh=True).rows_loaded == 2
    assert verify_table(runtime, "t").ok


def test_pymysql_reader_counts_the_snapshot_it_reads(
    scratch, runtime_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBSYNC_EXTRACTOR", "pymysql")
    helpers.execute(scratch.source, DDL, ROWS)
    scratch.write_tables([{"table": "t", "primary_key": "id"}])

    result = sync_table(runtime_factory(), "t")

    assert (result.mode, result.rows_extracted, result.rows_loaded) == ("full_refresh", 2, 2)
