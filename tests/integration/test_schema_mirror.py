"""Schema mirror: the target table follows the source's definition, or refuses clearly."""

from __future__ import annotations

import pytest

from dbsync.compare.verify import verify_table
from dbsync.sync.run import run_sync, sync_table
from tests import helpers

WIDE_DDL = """CREATE TABLE wide (
  id BIGINT UNSIGNED NOT NULL,
  code CHAR(3) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  legacy VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_german1_ci NULL,
  bin_name VARCHAR(10) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin NULL,
  flag TINYINT(1) NOT NULL,
  small SMALLINT UNSIGNED NULL,
  amount DECIMAL(12,4) NOT NULL,
  ratio DOUBLE NULL,
  born YEAR NULL,
  kind ENUM('Alpha','beta','Gamma') NOT NULL,
  tags SET('x','Y','z') NULL,
  doc JSON NULL,
  body MEDIUMTEXT NULL,
  raw VARBINARY(12) NULL,
  pic LONGBLOB NULL,
  bits BIT(5) NULL,
  at TIMESTAMP(3) NULL,
  happened DATETIME(6) NOT NULL,
  span TIME(2) NULL,
  place GEOMETRY NULL,
  PRIMARY KEY (code, id),
  KEY name_prefix (name(10))
) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""


def test_created_table_has_identical_columns_and_key(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        WIDE_DDL,
        "INSERT INTO wide (id, code, name, flag, amount, kind, happened) "
        "VALUES (1, 'abc', 'n', 1, 1.5, 'beta', '2024-01-01')",
    )
    scratch.write_tables([{"table": "wide", "primary_key": ["code", "id"], "modifier": "happened"}])

    result = sync_table(runtime_factory(), "wide")

    assert result.schema_changes == ["created"]
    assert helpers.column_types(scratch.target, "wide") == helpers.column_types(
        scratch.source, "wide"
    )
    assert helpers.primary_key(scratch.target, "wide") == ["code", "id"]
    collation = (
        "SELECT TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME='wide'"
    )
    assert helpers.query(None, collation, (scratch.target,)) == [("utf8mb4_general_ci",)]


def _evolving_table(scratch, runtime_factory):
    helpers.execute(
        scratch.source,
        "CREATE TABLE e (id INT NOT NULL PRIMARY KEY, v VARCHAR(10) NOT NULL, n INT NULL, "
        "k ENUM('a','b') NOT NULL DEFAULT 'a', extra INT NULL, m DATETIME NOT NULL)",
        "INSERT INTO e SELECT seq, CONCAT('v', seq), seq, 'b', seq * 10, "
        "'2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_20",
    )
    scratch.write_tables([{"table": "e", "primary_key": ["id"], "modifier": "m"}])
    runtime = runtime_factory()
    sync_table(runtime, "e")
    return runtime


def _same_schema(scratch, table: str = "e") -> bool:
    return helpers.column_types(scratch.target, table) == helpers.column_types(
        scratch.source, table
    )


def test_added_column_appears_with_its_type_and_existing_values(scratch, runtime_factory) -> None:
    runtime = _evolving_table(scratch, runtime_factory)
    helpers.execute(
        scratch.source,
        "ALTER TABLE e ADD COLUMN score DECIMAL(6,2) NOT NULL DEFAULT 1.25 AFTER v",
        "UPDATE e SET score = id / 4 WHERE id <= 5",  # existing rows, cursor unchanged
    )

    sync_table(runtime, "e")

    assert _same_schema(scratch)
    assert helpers.query(
        scratch.target, "SELECT id, CAST(score AS CHAR) FROM e WHERE id IN (2, 9)"
    ) == [
        (2, "0.50"),
        (9, "1.25"),
    ]
    assert helpers.exact_rows(scratch.target, "e") == helpers.exact_rows(scratch.source, "e")


def test_widened_types_are_widened_in_the_target(scratch, runtime_factory) -> None:
    runtime = _evolving_table(scratch, runtime_factory)
    helpers.execute(
        scratch.source,
        "ALTER TABLE e MODIFY v VARCHAR(50) NOT NULL, MODIFY n BIGINT NULL, "
        "MODIFY k ENUM('a','b','c') NOT NULL DEFAULT 'a'",
        "INSERT INTO e VALUES (100, REPEAT('w', 50), 9007199254740993, 'c', NULL, '2025-01-01')",
    )

    result = sync_table(runtime, "e")

    assert result.status == "synced"
    assert _same_schema(scratch)
    types = {
        name: column_type for name, column_type, *_ in helpers.column_types(scratch.target, "e")
    }
    assert (types["v"], types["n"], types["k"]) == (
        "varchar(50)",
        "bigint(20)",
        "enum('a','b','c')",
    )
    assert helpers.query(scratch.target, "SELECT LENGTH(v), n, k FROM e WHERE id = 100") == [
        (50, 9007199254740993, "c")
    ]
    assert verify_table(runtime, "e").ok


INCOMPATIBLE = {
    "dropped-column": ("ALTER TABLE e DROP COLUMN extra", ["id"], "extra"),
    "narrowed-type": ("ALTER TABLE e MODIFY v VARCHAR(5) NOT NULL", ["id"], "v"),
    "changed-primary-key": (
        "ALTER TABLE e DROP PRIMARY KEY, ADD PRIMARY KEY (id, k)",
        ["id", "k"],
        "k",
    ),
}


@pytest.mark.parametrize("case", list(INCOMPATIBLE))
def test_under_fail_a_change_stops_the_table_until_a_full_refresh(
    scratch, runtime_factory, case: str
) -> None:
    runtime = _evolving_table(scratch, runtime_factory)
    alter, key, column = INCOMPATIBLE[case]
    helpers.execute(scratch.source, "UPDATE e SET v = LEFT(v, 5)", alter)
    helpers.execute(scratch.source, "UPDATE e SET n = -1, m = '2025-01-01' WHERE id = 1")
    entry = {"table": "e", "primary_key": key, "modifier": "m", "on_schema_change": "fail"}
    scratch.write_tables([entry])
    runtime = runtime_factory()
    before_types = helpers.column_types(scratch.target, "e")
    before_rows = helpers.exact_rows(scratch.target, "e")
    before_key = helpers.primary_key(scratch.target, "e")

    failed = run_sync(runtime, "e")

    assert failed.status == "failed"
    assert f"'{column}'" in failed.error and "--full-refresh" in failed.error, failed.error
    assert helpers.column_types(scratch.target, "e") == before_types
    assert helpers.exact_rows(scratch.target, "e") == before_rows
    assert helpers.primary_key(scratch.target, "e") == before_key

    rebuilt = sync_table(runtime, "e", full_refresh=True)

    assert rebuilt.status == "synced"
    assert _same_schema(scratch)
    assert helpers.primary_key(scratch.target, "e") == helpers.primary_key(scratch.source, "e")
    assert helpers.exact_rows(scratch.target, "e") == helpers.exact_rows(scratch.source, "e")


def test_unusual_table_and_column_names_are_mirrored(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE `Order-Lines` (`Line Id` INT PRIMARY KEY, `dot.name` INT NULL, "
        "`ünïcode` VARCHAR(3) NULL, `MixedCase` INT NULL, `select` DATETIME NOT NULL)",
        "INSERT INTO `Order-Lines` VALUES (1, 2, 'ü', 4, '2024-01-01'), "
        "(2, NULL, NULL, NULL, '2024-01-02')",
    )
    scratch.write_tables([{"table": "Order-Lines", "primary_key": "Line Id", "modifier": "select"}])
    runtime = runtime_factory()
    sync_table(runtime, "Order-Lines")
    helpers.execute(
        scratch.source, "UPDATE `Order-Lines` SET `ünïcode` = 'é', `select` = '2024-02-01'"
    )

    sync_table(runtime, "Order-Lines")

    assert _same_schema(scratch, "Order-Lines")
    assert helpers.exact_rows(scratch.target, "Order-Lines") == helpers.exact_rows(
        scratch.source, "Order-Lines"
    )


def test_a_column_name_with_a_backtick_is_mirrored(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE bt (id INT PRIMARY KEY, `bt``ick` INT NULL)",
        "INSERT INTO bt VALUES (1, 2)",
    )
    scratch.write_tables([{"table": "bt", "primary_key": "id"}])

    result = run_sync(runtime_factory(), "bt")

    assert result.status == "synced", result.error
    assert helpers.query(scratch.target, "SELECT id, `bt``ick` FROM bt") == [(1, 2)]
