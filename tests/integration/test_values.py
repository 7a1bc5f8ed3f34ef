"""Values arrive unchanged: every column compared in an exact text form on both sides.

One wide table (a column per kind of value, a few rows of edge values each) is created and
synced once for the module; each test compares one column. The exact form is the stored
bytes (HEX) for strings, bytes and bits, the exact double for FLOAT, and CAST AS CHAR in a
UTC session otherwise (tests.helpers.exact_expression).
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from dbsync.compare.verify import verify_table
from dbsync.config.result import SyncResult
from dbsync.sync.run import run_sync
from tests import helpers
from tests.integration.conftest import Scratch

# name -> (column definition, SQL literals for rows 1..n; missing rows are NULL)
CASES: dict[str, tuple[str, list[str]]] = {
    "zero_date": ("DATE NULL", ["'0000-00-00'", "'2024-02-29'", "'1000-01-01'", "'9999-12-31'"]),
    "zero_datetime": (
        "DATETIME NULL",
        ["'0000-00-00 00:00:00'", "'2024-01-00 12:00:00'", "'9999-12-31 23:59:59'"],
    ),
    "emoji": (
        "VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL",
        ["'😀 smile 𝄞 clef'", "'中文 ✓'", "'🏳️‍🌈'"],
    ),
    "blob_bytes": (
        "BLOB NULL",
        ["0x00090A5C0D27221A", "X''", "0x5C4E", "0xFF00FE0A0900", "0x0A"],
    ),
    "varbinary_bytes": ("VARBINARY(16) NULL", ["0x00", "0x5C5C09", "X''"]),
    "text_escapes": (
        "TEXT NULL",
        [
            "'tab\\there'",
            "'line\\nbreak\\r\\n'",
            "'back\\\\slash'",
            "'\\\\N'",
            "'NULL'",
            "CONCAT('nul', CHAR(0), 'byte')",
        ],
    ),
    "decimal_65_30": (
        "DECIMAL(65,30) NULL",
        [
            "'12345678901234567890123456789012345.123456789012345678901234567890'",
            "'-99999999999999999999999999999999999.999999999999999999999999999999'",
            "'0.000000000000000000000000000001'",
            "0",
        ],
    ),
    "datetime_6": (
        "DATETIME(6) NULL",
        ["'2024-05-06 07:08:09.123456'", "'1970-01-01 00:00:00.000001'", "'0000-00-00'"],
    ),
    "time_6": ("TIME(6) NULL", ["'-838:59:59.000000'", "'838:59:59'", "'12:34:56.000789'"]),
    "timestamp_6": (
        "TIMESTAMP(6) NULL",
        ["'2038-01-19 03:14:07.999999'", "'1970-01-01 00:00:01.000001'", "'0000-00-00 00:00:00'"],
    ),
    "bigint_unsigned": ("BIGINT UNSIGNED NULL", ["18446744073709551615", "0", "9007199254740993"]),
    "bigint_signed": ("BIGINT NULL", ["-9223372036854775808", "9223372036854775807", "-1"]),
    "set_values": ("SET('a','b','c d') NULL", ["''", "'a,c d'", "'a,b,c d'", "'b'"]),
    "enum_values": ("ENUM('x','y z','É','') NULL", ["'y z'", "'É'", "''"]),
    "null_vs_empty": ("VARCHAR(10) NULL", ["''", "NULL", "' '", "'NULL'", "'a  '"]),
    "char_null_vs_empty": ("CHAR(5) NULL", ["''", "NULL", "'ab'"]),
    "double_extremes": (
        "DOUBLE NULL",
        [
            "1.7976931348623157e308",
            "-2.2250738585072014e-308",
            "4.9e-324",
            "0.1",
            "123456789.12345679",
        ],
    ),
    "float_extremes": (
        "FLOAT NULL",
        ["1.2345678", "3.4028234e38", "-1.17549435e-38", "16777216", "1.4e-45"],
    ),
    "bit_10": ("BIT(10) NULL", ["b'1111111111'", "b'0'", "b'1000000001'"]),
    "bit_64": ("BIT(64) NULL", ["b'" + "1" * 64 + "'", "b'1'"]),
    "year_values": ("YEAR NULL", ["0000", "1901", "2155"]),
    "json_doc": (
        "JSON NULL",
        ['\'{"a": [1, 2.50, "x\\\\ty"], "b": null, "é": "😀"}\'', "'[]'", "'\"\"'"],
    ),
    "geometry_value": (
        "GEOMETRY NULL",
        [
            "ST_GeomFromText('POINT(1.5 -2.25)')",
            "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))')",
            "ST_GeomFromText('POINT(1 2)', 4326)",
        ],
    ),
    "latin1_char": (
        "CHAR(12) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL",
        ["'Ærø ñ ü ß'", "'€ œ Ÿ'", "'ÿ'"],
    ),
    "utf8mb3_bin_text": (
        "VARCHAR(20) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin NULL",
        ["'Straße'", "'a'", "'A'", "'ǅ'"],
    ),
}

# FLOAT's own text form keeps 6 significant digits (CAST(1.2345678e0 AS FLOAT) AS CHAR ->
# '1.23457', 16777216 -> '16777200'), and that text is what dbsync extracts and loads.
XFAIL: dict[str, str] = {}


def _literal_rows() -> list[list[str]]:
    depth = max(len(values) for _, values in CASES.values())
    return [
        [values[i] if i < len(values) else "NULL" for _, values in CASES.values()]
        for i in range(depth)
    ]


@pytest.fixture(scope="module")
def values_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Scratch, dict]]:
    name = helpers.unique_name("dbsync_v")
    pair = Scratch(
        source=f"{name}_src",
        target=f"{name}_tgt",
        tables_path=tmp_path_factory.mktemp("values") / "tables.json",
    )
    helpers.execute(None, f"CREATE DATABASE `{pair.source}`", f"CREATE DATABASE `{pair.target}`")
    try:
        columns = ", ".join(f"`{name}` {ddl}" for name, (ddl, _) in CASES.items())
        with helpers.connect(pair.source) as conn, conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")  # zero dates, as legacy sources have them
            cur.execute(f"CREATE TABLE vals (id INT NOT NULL PRIMARY KEY, {columns})")
            for index, row in enumerate(_literal_rows(), start=1):
                cur.execute(f"INSERT INTO vals VALUES ({index}, {', '.join(row)})")
            cur.execute("INSERT INTO vals (id) VALUES (99)")  # a row of NULLs
            # the out-of-range ENUM value non-strict mode stores (index 0, text '')
            cur.execute("CREATE TABLE bad_enum (id INT PRIMARY KEY, e ENUM('x','y') NOT NULL)")
            cur.execute("INSERT INTO bad_enum VALUES (1, 'x'), (2, 'not-a-member')")
            assert cur.rowcount == 2
            # dates a source running with ALLOW_INVALID_DATES stores as given
            cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
            cur.execute("CREATE TABLE odd_dates (id INT PRIMARY KEY, d DATE, dt DATETIME)")
            cur.execute("INSERT INTO odd_dates VALUES (1, '2024-02-31', '2023-04-31 10:00:00')")
        pair.write_tables(
            [
                {"table": "vals", "primary_key": ["id"]},
                {"table": "bad_enum", "primary_key": ["id"]},
                {"table": "odd_dates", "primary_key": ["id"]},
            ]
        )
        runtime = pair.runtime()
        try:
            results = {
                table: run_sync(runtime, table) for table in ("vals", "bad_enum", "odd_dates")
            }
        finally:
            runtime.dispose()
        yield pair, results
    finally:
        for database in (pair.source, pair.target, pair.staging):
            helpers.execute(None, f"DROP DATABASE IF EXISTS `{database}`")


def _column(database: str, table: str, column: str) -> list[tuple]:
    data_type = helpers.query(
        "information_schema",
        "SELECT DATA_TYPE FROM COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND COLUMN_NAME=%s",
        (database, table, column),
    )[0][0]
    expression = helpers.exact_expression(column, data_type.lower())
    return helpers.query(database, f"SELECT id, {expression} FROM `{table}` ORDER BY id")


def test_the_values_table_syncs(values_pair: tuple[Scratch, dict[str, SyncResult]]) -> None:
    pair, results = values_pair
    assert results["vals"].status == "synced", results["vals"].error
    assert helpers.count(pair.target, "vals") == helpers.count(pair.source, "vals") == 7


@pytest.mark.parametrize(
    "column",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=XFAIL[c])) if c in XFAIL else c
        for c in CASES
    ],
)
def test_value_arrives_unchanged(values_pair, column: str) -> None:
    pair, _ = values_pair
    source = _column(pair.source, "vals", column)
    assert any(value is not None for _, value in source)  # the case really has data
    assert _column(pair.target, "vals", column) == source


def test_column_types_are_mirrored_exactly(values_pair) -> None:
    pair, _ = values_pair
    assert helpers.column_types(pair.target, "vals") == helpers.column_types(pair.source, "vals")


def test_dbsync_verify_reports_the_values_table_ok(values_pair) -> None:
    pair, _ = values_pair
    done = helpers.run_dbsync(pair.env(), "verify", "vals", cwd=pair.tables_path.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vals: OK source=7 target=7" in done.stdout


def test_out_of_range_enum_value_arrives_unchanged(values_pair) -> None:
    pair, results = values_pair
    assert results["bad_enum"].status == "synced", results["bad_enum"].error
    assert helpers.query(pair.target, "SELECT id, e, e + 0 FROM bad_enum ORDER BY id") == [
        (1, "x", 1),
        (2, "", 0),
    ]


def test_dates_valid_under_allow_invalid_dates_arrive_unchanged(values_pair) -> None:
    pair, results = values_pair
    assert results["odd_dates"].status == "synced", results["odd_dates"].error
    assert helpers.exact_rows(pair.target, "odd_dates") == [
        ("1", "2024-02-31", "2023-04-31 10:00:00")
    ]


# --- verify detects differences ------------------------------------------------------------


def _copied_table(scratch, ddl: str, *inserts: str) -> None:
    """A source table and an identical target copy made with SQL (no sync involved)."""
    helpers.execute(scratch.source, ddl, *inserts)
    helpers.execute(
        scratch.target,
        f"CREATE TABLE w LIKE `{scratch.source}`.w",
        f"INSERT INTO w SELECT * FROM `{scratch.source}`.w",
    )
    scratch.write_tables([{"table": "w", "primary_key": ["id"]}])


W_DDL = "CREATE TABLE w (id INT PRIMARY KEY, a VARCHAR(10) NULL, b VARCHAR(10) NULL, f FLOAT)"
W_ROWS = "INSERT INTO w SELECT seq, CONCAT('a', seq), CONCAT('b', seq), seq / 7 FROM seq_1_to_50"


def test_verify_passes_an_identical_copy(scratch, runtime_factory) -> None:
    _copied_table(scratch, W_DDL, W_ROWS)
    report = verify_table(runtime_factory(), "w", chunk_rows=10)
    assert report.ok
    assert (report.source_rows, report.target_rows, report.chunks) == (50, 50, 5)


@pytest.mark.parametrize(
    ("change", "source_rows", "target_rows"),
    [
        ("UPDATE w SET b = 'B23' WHERE id = 23", 50, 50),
        ("UPDATE w SET a = '' WHERE id = 7", 50, 50),
        ("DELETE FROM w WHERE id = 31", 50, 49),
        ("INSERT INTO w VALUES (1000, 'x', 'y', 1)", 50, 51),
    ],
    ids=["changed-value", "null-map", "missing-row", "extra-row-past-the-end"],
)
def test_verify_finds_a_difference(
    scratch, runtime_factory, change: str, source_rows: int, target_rows: int
) -> None:
    _copied_table(scratch, W_DDL, W_ROWS, "UPDATE w SET a = NULL WHERE id = 7")
    helpers.execute(scratch.target, change)
    report = verify_table(runtime_factory(), "w", chunk_rows=10)
    assert not report.ok
    assert len(report.mismatches) == 1
    assert (report.source_rows, report.target_rows) == (source_rows, target_rows)


def test_verify_finds_text_moved_across_the_column_separator(scratch, runtime_factory) -> None:
    _copied_table(scratch, W_DDL, W_ROWS, "UPDATE w SET a = 'x#', b = 'y' WHERE id = 5")
    helpers.execute(scratch.target, "UPDATE w SET a = 'x', b = '#y' WHERE id = 5")
    assert not verify_table(runtime_factory(), "w").ok


def test_verify_finds_a_float_that_differs_in_the_seventh_digit(scratch, runtime_factory) -> None:
    _copied_table(scratch, W_DDL, W_ROWS, "UPDATE w SET f = 1.2345678 WHERE id = 5")
    helpers.execute(scratch.target, "UPDATE w SET f = 1.2345679 WHERE id = 5")
    assert helpers.query(
        scratch.target,
        f"SELECT t.f <> s.f FROM w t JOIN `{scratch.source}`.w s USING (id) WHERE id = 5",
    ) == [(1,)]
    assert not verify_table(runtime_factory(), "w").ok


def test_four_byte_utf8_round_trips_through_pymysql(values_pair) -> None:
    """The emoji case really holds 4-byte characters (guards against a utf8mb3 fixture)."""
    pair, _ = values_pair
    with helpers.connect(pair.target) as conn, conn.cursor() as cur:
        cur.execute("SELECT emoji FROM vals WHERE id = 1")
        assert cur.fetchone() == ("😀 smile 𝄞 clef",)
    assert isinstance(conn, pymysql.Connection)


def test_every_value_arrives_unchanged_through_a_chunked_copy(values_pair) -> None:
    pair, _ = values_pair
    chunked = Scratch(source=pair.source, target=f"{pair.target}_c", tables_path=pair.tables_path)
    runtime = chunked.runtime(chunk_rows=2, chunk_workers=2)
    try:
        result = run_sync(runtime, "vals", full_refresh=True)

        assert (result.status, result.error, result.chunks) == ("synced", None, 4)
        for column in CASES:
            assert _column(chunked.target, "vals", column) == _column(
                pair.source, "vals", column
            ), column
    finally:
        runtime.dispose()
        for database in (chunked.target, chunked.staging):
            helpers.execute(None, f"DROP DATABASE IF EXISTS `{database}`")
