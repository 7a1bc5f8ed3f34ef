"""Names and types from real schemas: any name MariaDB accepts syncs and verifies."""

from __future__ import annotations

import pytest

from dbsync.compare.verify import verify_table
from dbsync.config.names import pipeline_name, staging_table
from dbsync.sync.run import run_sync, sync_table
from tests import helpers

ODD_NAMES = ["a.b", "x|y", 'say "hi"']


def _odd_table(scratch, name: str) -> None:
    helpers.execute(
        scratch.source,
        f"CREATE TABLE `{name}` (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL, "
        "at DATETIME(6) NOT NULL, KEY by_v (v))",
        f"INSERT INTO `{name}` SELECT seq, CONCAT('v', seq), '2024-01-01' FROM seq_1_to_20",
    )


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_table_with_an_odd_name_syncs_incrementally_and_verifies(
    scratch, runtime_factory, name: str
) -> None:
    _odd_table(scratch, name)
    scratch.write_tables([{"table": name, "primary_key": "id", "modifier": "at"}])
    runtime = runtime_factory()
    first = run_sync(runtime, name)
    helpers.execute(
        scratch.source,
        f"UPDATE `{name}` SET v = 'changed', at = '2024-02-01' WHERE id = 3",
        f"INSERT INTO `{name}` VALUES (21, 'new', '2024-02-01')",
    )

    second = run_sync(runtime, name)

    assert (first.status, second.status) == ("synced", "synced"), (first.error, second.error)
    assert second.mode == "incremental"
    assert helpers.exact_rows(scratch.target, name) == helpers.exact_rows(scratch.source, name)
    assert verify_table(runtime, name).ok


@pytest.mark.parametrize("name", ODD_NAMES)
def test_a_table_with_an_odd_name_is_swapped_in_by_a_full_refresh(
    scratch, runtime_factory, name: str
) -> None:
    _odd_table(scratch, name)
    scratch.write_tables([{"table": name, "primary_key": "id"}])
    runtime = runtime_factory()
    sync_table(runtime, name)
    helpers.execute(scratch.source, f"DELETE FROM `{name}` WHERE id > 10")

    result = run_sync(runtime, name)

    assert result.status == "synced", result.error
    assert helpers.exact_rows(scratch.target, name) == helpers.exact_rows(scratch.source, name)
    assert {name, staging_table(name)}.isdisjoint(helpers.table_names(scratch.staging))


def test_the_log_maps_an_odd_table_name_to_its_dlt_names(scratch, runtime_factory) -> None:
    _odd_table(scratch, "a.b")
    scratch.write_tables([{"table": "a.b", "primary_key": "id"}])
    runtime = runtime_factory()

    with helpers.captured_logs() as logs:
        result = run_sync(runtime, "a.b")

    assert result.status == "synced", result.error
    line = next(x for x in logs.getvalue().splitlines() if "dlt pipeline" in x)
    assert "'a.b'" in line
    assert pipeline_name(scratch.target, "a.b") in line
    assert staging_table("a.b") in line


def test_columns_named_with_quotes_and_blanks_sync_incrementally(scratch, runtime_factory) -> None:
    helpers.execute(
        scratch.source,
        'CREATE TABLE q (id INT PRIMARY KEY, `say "hi"` INT NULL, `it\'s` VARCHAR(5) NULL, '
        "` lead` INT NULL, `bt``ick` INT NULL, at DATETIME NOT NULL)",
        "INSERT INTO q VALUES (1, 2, 'x', 4, 5, '2024-01-01'), (2, NULL, NULL, NULL, NULL, "
        "'2024-01-01')",
    )
    scratch.write_tables([{"table": "q", "primary_key": "id", "modifier": "at"}])
    runtime = runtime_factory()
    sync_table(runtime, "q")
    helpers.execute(scratch.source, "UPDATE q SET `it's` = 'y', `bt``ick` = 6, at = '2024-02-01'")

    result = run_sync(runtime, "q")

    assert result.status == "synced", result.error
    assert helpers.column_types(scratch.target, "q") == helpers.column_types(scratch.source, "q")
    assert helpers.exact_rows(scratch.target, "q") == helpers.exact_rows(scratch.source, "q")


WIDE_CHARSETS_DDL = (
    "CREATE TABLE cs (id INT PRIMARY KEY, "
    "a VARCHAR(10) CHARACTER SET utf16 NULL, b TEXT CHARACTER SET ucs2 NULL, "
    "c VARCHAR(10) CHARACTER SET utf32 NULL, d ENUM('x','ÿ') CHARACTER SET utf16 NULL, "
    "e VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, "
    "f CHAR(3) CHARACTER SET latin1 NULL, at DATETIME NOT NULL)"
)
WIDE_CHARSETS_ROWS = (
    "INSERT INTO cs VALUES (1, 'äö😀', 'ß€', '𝄞x', 'ÿ', 'e😀', 'é', '2024-01-01'), "
    "(2, NULL, '', NULL, 'x', NULL, NULL, '2024-01-01')"
)


def test_verify_compares_utf16_ucs2_and_utf32_columns(scratch, runtime_factory) -> None:
    helpers.execute(scratch.source, WIDE_CHARSETS_DDL, WIDE_CHARSETS_ROWS)
    scratch.write_tables([{"table": "cs", "primary_key": "id", "modifier": "at"}])
    runtime = runtime_factory()
    sync_table(runtime, "cs")

    same = helpers.run_dbsync(scratch.env(), "verify", "cs", cwd=scratch.tables_path.parent)
    helpers.execute(scratch.target, "UPDATE cs SET c = '𝄞y' WHERE id = 1")
    changed = verify_table(runtime, "cs")

    assert same.returncode == 0, same.stdout + same.stderr
    assert "cs: OK source=2 target=2" in same.stdout
    assert [m.lower for m in changed.mismatches] == [None] and not changed.error


def test_an_unchanged_utf16_table_is_recognised_as_unchanged(scratch, runtime_factory) -> None:
    helpers.execute(scratch.source, WIDE_CHARSETS_DDL, WIDE_CHARSETS_ROWS)
    scratch.write_tables([{"table": "cs", "primary_key": "id", "modifier": "at"}])
    runtime = runtime_factory()
    sync_table(runtime, "cs")

    again = run_sync(runtime, "cs")

    assert again.status == "synced", again.error
    assert again.rows_extracted == 0  # the window checksum matched: nothing was read
    assert helpers.exact_rows(scratch.target, "cs") == helpers.exact_rows(scratch.source, "cs")


def test_check_config_reports_an_emoji_table_name_and_checks_the_other_tables(scratch) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE good (id INT PRIMARY KEY, v INT NULL)",
        "CREATE TABLE also_good (id INT PRIMARY KEY, m DATETIME NOT NULL)",
    )
    scratch.write_tables(
        [
            {"table": "smile😀", "primary_key": "id"},
            {"table": "good", "primary_key": "id"},
            {"table": "nope", "primary_key": "id"},
            {"table": "also_good", "primary_key": "id", "modifier": "absent"},
        ]
    )

    done = helpers.run_dbsync(scratch.env(), "check-config", cwd=scratch.tables_path.parent)

    lines = [x for x in done.stderr.splitlines() if x.startswith("config error: ")]
    assert done.returncode == 2
    assert [x.split(": ")[1] for x in lines] == [
        "$[0].table",
        "$[2].table",
        "$[3].modifier",
    ], done.stderr
    assert "4-byte UTF-8 characters" in lines[0]
    assert "collation" not in done.stderr.lower() and "Traceback" not in done.stderr
