"""Boundary windows of any size cost what changed: only the rows of differing buckets are read.

The source table ``w`` has 100,000 rows sharing one cursor value (as after ``ALTER TABLE ...
ADD m ...``), set by the application (no ``ON UPDATE``): every incremental read's window
holds them all.
"""

from __future__ import annotations

import pytest

from dbsync.sync.run import sync_table
from tests import helpers

ROWS = 100_000


@pytest.fixture
def shared(scratch):
    helpers.execute(
        scratch.source,
        "CREATE TABLE w (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL, "
        "m DATETIME NOT NULL, KEY (m))",
        f"INSERT INTO w SELECT seq, CONCAT('v', seq), '2024-01-01' FROM seq_1_to_{ROWS}",
    )
    scratch.write_tables([{"table": "w", "primary_key": ["id"], "modifier": "m"}])
    return scratch


def _same(scratch) -> bool:
    return helpers.exact_rows(scratch.source, "w") == helpers.exact_rows(scratch.target, "w")


def test_a_few_changes_in_a_shared_value_window_read_only_their_buckets(
    shared, runtime_factory
) -> None:
    runtime = runtime_factory()
    sync_table(runtime, "w")
    helpers.execute(
        shared.source,
        "UPDATE w SET v = 'changed' WHERE id IN (7, 5000, 42424, 99999)",
        "INSERT INTO w VALUES (100001, 'new', '2024-01-01'), (100002, 'new', '2024-01-01')",
    )

    result = sync_table(runtime, "w")

    assert _same(shared)
    assert 6 <= result.rows_extracted <= 1_000


def test_an_unchanged_shared_value_window_reads_nothing(shared, runtime_factory) -> None:
    runtime = runtime_factory()
    sync_table(runtime, "w")

    result = sync_table(runtime, "w")

    assert (result.rows_extracted, result.rows_loaded) == (0, 0)


def test_a_window_mostly_changed_is_read_whole(shared, runtime_factory) -> None:
    runtime = runtime_factory()
    sync_table(runtime, "w")
    helpers.execute(shared.source, "UPDATE w SET v = CONCAT(v, '!') WHERE id % 4 <> 0")

    result = sync_table(runtime, "w")

    assert _same(shared)
    assert result.rows_extracted == ROWS
