"""Schema migrations converge: after each migration people run on the source (or a change
made by hand in the target), at most two plain syncs leave the target with the source's
columns, primary key, indexes, table collation and rows; ``"on_schema_change": "fail"``
refuses each one with one line instead."""

from __future__ import annotations

import pytest

from dbsync.compare.verify import verify_table
from dbsync.model import AddIndex, Index
from dbsync.sync.run import run_sync, sync_table
from tests import helpers

DDL = """CREATE TABLE t (
  id INT NOT NULL,
  code VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL,
  qty INT NULL,
  kind ENUM('a','c') NOT NULL,
  note VARCHAR(30) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL,
  m DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  KEY by_m (m),
  KEY by_qty (qty)
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""

ROWS = (
    "INSERT INTO t SELECT seq, CONCAT('code-', seq), IF(seq % 4 = 0, NULL, seq), "
    "IF(seq % 2, 'a', 'c'), IF(seq % 3, CONCAT('n', seq), NULL), "
    "'2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_30"
)

# migration: (statements on the source, what the target of an incremental table does)
IN_PLACE, REBUILD = "followed in place", "rebuilt"
MIGRATIONS = {
    "int-to-varchar": (["ALTER TABLE t MODIFY qty VARCHAR(20) NULL"], REBUILD),
    "int-to-unsigned": (["ALTER TABLE t MODIFY qty INT UNSIGNED NULL"], REBUILD),
    "narrowed-varchar": (["ALTER TABLE t MODIFY code VARCHAR(40) NOT NULL"], REBUILD),
    "enum-member-mid-list": (["ALTER TABLE t MODIFY kind ENUM('a','b','c') NOT NULL"], REBUILD),
    "enum-reordered": (["ALTER TABLE t MODIFY kind ENUM('c','a') NOT NULL"], REBUILD),
    "cursor-to-timestamp": (["ALTER TABLE t MODIFY m TIMESTAMP(6) NOT NULL"], REBUILD),
    "not-null-after-backfill": (
        ["UPDATE t SET qty = 0 WHERE qty IS NULL", "ALTER TABLE t MODIFY qty INT NOT NULL"],
        REBUILD,
    ),
    "added-not-null-with-default": (
        ["ALTER TABLE t ADD COLUMN score INT NOT NULL DEFAULT 7 AFTER code"],
        REBUILD,
    ),
    "primary-key-and-tables-json": (
        ["ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, kind)"],
        REBUILD,
    ),
    "widened": (["ALTER TABLE t MODIFY code VARCHAR(300) NOT NULL"], IN_PLACE),
    "not-null-loosened": (["ALTER TABLE t MODIFY code VARCHAR(200) NULL"], IN_PLACE),
    "added-nullable": (["ALTER TABLE t ADD COLUMN extra INT NULL AFTER id"], IN_PLACE),
    "dropped-column": (["ALTER TABLE t DROP COLUMN note"], IN_PLACE),
    "moved-column": (["ALTER TABLE t MODIFY qty INT NULL FIRST"], IN_PLACE),
    "index-added-and-dropped": (
        ["ALTER TABLE t DROP KEY by_qty, ADD KEY by_code (code(10), qty)"],
        IN_PLACE,
    ),
    "unique-index-added": (["ALTER TABLE t ADD UNIQUE KEY u_code (code)"], IN_PLACE),
    "converted-to-unicode-ci": (
        ["ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"],
        IN_PLACE,
    ),
}


def _entry(incremental: bool, **extra: object) -> dict[str, object]:
    key = extra.pop("primary_key", ["id"])
    entry: dict[str, object] = {"table": "t", "primary_key": key, **extra}
    if incremental:
        entry["modifier"] = "m"
    return entry


def _synced_table(scratch, runtime_factory, incremental: bool = True, **extra: object):
    helpers.execute(scratch.source, DDL, ROWS)
    scratch.write_tables([_entry(incremental, **extra)])
    runtime = runtime_factory()
    sync_table(runtime, "t")
    return runtime


def _converged(scratch, runtime) -> None:
    assert helpers.definition(scratch.target, "t") == helpers.definition(scratch.source, "t")
    assert helpers.exact_rows(scratch.target, "t") == helpers.exact_rows(scratch.source, "t")
    assert verify_table(runtime, "t").ok


def _migrate(scratch, case: str, incremental: bool, **extra: object) -> None:
    statements, _ = MIGRATIONS[case]
    helpers.execute(scratch.source, *statements)
    helpers.execute(scratch.source, "UPDATE t SET m = '2030-01-01', kind = 'a' WHERE id = 2")
    if case == "primary-key-and-tables-json":
        scratch.write_tables([_entry(incremental, primary_key=["id", "kind"], **extra)])


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "full-refresh"])
@pytest.mark.parametrize("case", list(MIGRATIONS))
def test_each_migration_converges_in_plain_syncs(
    scratch, runtime_factory, case: str, incremental: bool
) -> None:
    _synced_table(scratch, runtime_factory, incremental)
    _migrate(scratch, case, incremental)
    runtime = runtime_factory()

    first = sync_table(runtime, "t")

    done = MIGRATIONS[case][1]  # a keyed table without modifier syncs by diff: the same rules
    assert first.schema_changes and all(line.startswith(done) for line in first.schema_changes), (
        first.schema_changes
    )
    if done == REBUILD:
        assert first.mode == "full_refresh"
    _converged(scratch, runtime)  # after one plain sync already (at most two are allowed)


@pytest.mark.parametrize("case", list(MIGRATIONS))
def test_on_schema_change_fail_refuses_each_migration_in_one_line(
    scratch, runtime_factory, case: str
) -> None:
    _synced_table(scratch, runtime_factory, on_schema_change="fail")
    before = helpers.definition(scratch.target, "t"), helpers.exact_rows(scratch.target, "t")
    _migrate(scratch, case, True, on_schema_change="fail")
    runtime = runtime_factory()

    failed = run_sync(runtime, "t")

    assert failed.status == "failed"
    assert "\n" not in failed.error
    assert 'on_schema_change is "fail"' in failed.error
    assert "dbsync sync t --full-refresh" in failed.error
    assert (helpers.definition(scratch.target, "t"), helpers.exact_rows(scratch.target, "t")) == (
        before
    )


def test_a_full_refresh_table_under_fail_refuses_a_changed_definition(
    scratch, runtime_factory
) -> None:
    _synced_table(scratch, runtime_factory, incremental=False, on_schema_change="fail")
    helpers.execute(scratch.source, "ALTER TABLE t MODIFY qty BIGINT NULL")

    failed = run_sync(runtime_factory(), "t")

    assert failed.status == "failed"
    assert "column 'qty' widened from int(11) to bigint(20)" in failed.error


HAND_MADE = {
    "column-added": ("ALTER TABLE t ADD COLUMN mine INT NULL", "column 'mine' exists only"),
    "column-dropped": ("ALTER TABLE t DROP COLUMN note", "column 'note' is missing"),
    "column-retyped": ("ALTER TABLE t MODIFY qty BIGINT NULL", "column 'qty'"),
    "index-dropped": (
        "ALTER TABLE t DROP KEY by_qty",
        "index 'by_qty' (`qty`) is missing in the target",
    ),
}


@pytest.mark.parametrize("case", list(HAND_MADE))
def test_a_target_changed_by_hand_is_named_and_repaired(
    scratch, runtime_factory, case: str
) -> None:
    runtime = _synced_table(scratch, runtime_factory)
    statement, named = HAND_MADE[case]
    helpers.execute(scratch.target, statement)

    result = sync_table(runtime, "t")

    assert result.schema_changes, result.schema_changes
    assert all("the TARGET table was changed" in line for line in result.schema_changes)
    assert any(named in line for line in result.schema_changes), result.schema_changes
    _converged(scratch, runtime)


def test_a_target_changed_by_hand_under_fail_is_refused_as_a_target_change(
    scratch, runtime_factory
) -> None:
    runtime = _synced_table(scratch, runtime_factory, on_schema_change="fail")
    helpers.execute(scratch.target, "ALTER TABLE t ADD COLUMN mine INT NULL")

    failed = run_sync(runtime, "t")

    assert failed.status == "failed"
    assert "the TARGET table was changed since the last sync" in failed.error
    assert "column 'mine' exists only in the target" in failed.error


def test_a_primary_key_changed_while_tables_json_names_the_old_one_is_refused_clearly(
    scratch, runtime_factory
) -> None:
    _synced_table(scratch, runtime_factory)
    helpers.execute(scratch.source, "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, kind)")
    before = helpers.definition(scratch.target, "t"), helpers.exact_rows(scratch.target, "t")

    failed = run_sync(runtime_factory(), "t")

    assert failed.status == "failed"
    assert "\n" not in failed.error
    assert "the source's primary key is ['id', 'kind']" in failed.error
    assert "names primary_key ['id']" in failed.error
    assert 'update that entry to "primary_key": ["id", "kind"]' in failed.error
    assert (helpers.definition(scratch.target, "t"), helpers.exact_rows(scratch.target, "t")) == (
        before
    )


def test_unique_values_swapped_between_rows_merge(scratch, runtime_factory) -> None:
    helpers.execute(scratch.source, DDL, ROWS, "ALTER TABLE t ADD UNIQUE KEY u_code (code)")
    scratch.write_tables([_entry(True)])
    runtime = runtime_factory()
    sync_table(runtime, "t")
    helpers.execute(
        scratch.source,
        "UPDATE t SET code = CONCAT('tmp-', id) WHERE id IN (3, 4)",
        "UPDATE t SET code = IF(id = 3, 'code-4', 'code-3'), m = '2030-01-01' WHERE id IN (3, 4)",
        "DELETE FROM t WHERE id = 5",
        "INSERT INTO t VALUES (99, 'code-5', 1, 'a', NULL, '2030-01-02')",
    )

    result = sync_table(runtime, "t")

    assert result.mode == "incremental"
    _converged(scratch, runtime)


def test_a_rebuild_copied_in_chunks_mirrors_unique_indexes_unique(scratch, runtime_factory) -> None:
    helpers.execute(scratch.source, DDL, ROWS, "ALTER TABLE t ADD UNIQUE KEY u_code (code)")
    scratch.write_tables([_entry(True)])
    runtime = runtime_factory(chunk_rows=8, chunk_workers=2)
    sync_table(runtime, "t")
    helpers.execute(scratch.source, "ALTER TABLE t MODIFY qty VARCHAR(20) NULL")

    rebuilt = sync_table(runtime, "t")

    assert rebuilt.mode == "full_refresh" and rebuilt.chunks > 1
    _converged(scratch, runtime)


def _index_kinds(database: str, table: str) -> dict[str, int]:
    rows = helpers.query(
        "information_schema",
        "SELECT DISTINCT INDEX_NAME, NON_UNIQUE FROM STATISTICS "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
        (database, table),
    )
    return dict(rows)


def test_a_unique_index_over_duplicate_values_is_added_plain(scratch, runtime_factory) -> None:
    helpers.execute(scratch.target, DDL, ROWS, "UPDATE t SET code = 'same' WHERE id IN (1, 2)")
    runtime = runtime_factory()
    unique = AddIndex(Index("u_code", ("`code`",), unique=True))

    plain = runtime.dialect.alter_table(runtime.engines.target, scratch.target, "t", [unique])

    assert plain == ["u_code"]
    assert _index_kinds(scratch.target, "t")["u_code"] == 1  # NON_UNIQUE


def test_staging_keeps_an_index_plain_while_it_holds_duplicates(scratch, runtime_factory) -> None:
    runtime = runtime_factory()
    staging = runtime.dialect.staging_schema()
    helpers.execute(None, f"CREATE DATABASE IF NOT EXISTS `{staging}`")
    helpers.execute(staging, DDL, ROWS, "UPDATE t SET code = 'same' WHERE id IN (1, 2)")
    helpers.execute(scratch.source, DDL, "ALTER TABLE t ADD UNIQUE KEY u_code (code)")
    with runtime.engines.source.connect() as conn:
        source = runtime.dialect.read_table(conn, scratch.source, "t")
    assert runtime.dialect.staging_table("t") == "t"

    runtime.dialect.index_staging(runtime.engines.target, source, "m")

    assert _index_kinds(staging, "t")["u_code"] == 1


def test_a_change_the_target_cannot_take_in_place_is_rebuilt(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        DDL,
        ROWS,
        "ALTER TABLE t MODIFY code VARCHAR(150) NOT NULL, ADD KEY by_code (code)",
    )
    scratch.write_tables([_entry(True)])
    runtime = runtime_factory()
    sync_table(runtime, "t")
    # a target whose row format limits index keys to 767 bytes (not something dbsync mirrors)
    helpers.execute(scratch.target, "ALTER TABLE t ROW_FORMAT=COMPACT")
    helpers.execute(scratch.source, "ALTER TABLE t MODIFY code VARCHAR(250) NOT NULL")

    result = sync_table(runtime, "t")

    assert result.mode == "full_refresh"
    assert result.schema_changes == [
        "rebuilt (altering the target in place failed: MySQL error 1709: Index column size too "
        "large. The maximum column size is 767 bytes): the source changed: column 'code' "
        "widened from varchar(150) to varchar(250)"
    ]
    _converged(scratch, runtime)


@pytest.mark.parametrize("case", ["int-to-varchar", "moved-column", "unique-index-added"])
def test_a_table_copied_whole_every_run_says_what_its_copy_took_over(
    scratch, runtime_factory, case: str
) -> None:
    _synced_table(scratch, runtime_factory, incremental=False, strategy="replace")
    _migrate(scratch, case, False, strategy="replace")
    runtime = runtime_factory()

    result = sync_table(runtime, "t")

    assert result.schema_changes and all(
        line.startswith("rebuilt by the full copy: the source changed: ")
        for line in result.schema_changes
    ), result.schema_changes
    _converged(scratch, runtime)


def test_a_table_copied_whole_every_run_under_fail_refuses_a_changed_definition(
    scratch, runtime_factory
) -> None:
    _synced_table(
        scratch, runtime_factory, incremental=False, strategy="replace", on_schema_change="fail"
    )
    helpers.execute(scratch.source, "ALTER TABLE t ADD KEY by_code (code)")

    failed = run_sync(runtime_factory(), "t")

    assert failed.status == "failed"
    assert "index 'by_code' (`code`) added" in failed.error
    assert "dbsync sync t --full-refresh" in failed.error
