"""verify's key-range predicates select exactly ``lower <= key < upper`` (lexicographic).

The generated SQL is evaluated by SQLite (stdlib; it accepts MySQL's backtick quoting) over a
grid of keys and compared with Python's tuple ordering.
"""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from dbsync.backends.mysql.checksum import row_hash_sql
from dbsync.backends.mysql.key_ranges import range_predicate
from dbsync.model import Column, TableSchema


def _selected(key: list[str], lower, upper, rows: list[tuple]) -> list[tuple]:
    where, params = range_predicate(key, lower, upper, placeholder="?")
    db = sqlite3.connect(":memory:")
    columns = ", ".join(f"`{k}`" for k in key)
    db.execute(f"CREATE TABLE t ({columns})")
    db.executemany(f"INSERT INTO t VALUES ({', '.join('?' for _ in key)})", rows)
    return db.execute(
        f"SELECT {columns} FROM t WHERE {where} ORDER BY {columns}", params
    ).fetchall()


def test_open_range_is_everything() -> None:
    assert range_predicate(["id"], None, None) == ("1=1", [])


def test_single_column_range_is_half_open() -> None:
    rows = [(i,) for i in range(10)]
    assert _selected(["id"], (3,), (7,), rows) == [(3,), (4,), (5,), (6,)]
    assert _selected(["id"], None, (2,), rows) == [(0,), (1,)]
    assert _selected(["id"], (8,), None, rows) == [(8,), (9,)]


GRID = list(itertools.product(range(3), "abc", range(3)))


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ((1, "b", 1), (2, "a", 2)),
        ((0, "a", 0), (0, "a", 1)),
        (None, (1, "a", 0)),
        ((1, "c", 2), None),
        ((1, "b", 1), (1, "b", 1)),  # empty
        ((0, "c", 2), (2, "a", 0)),
    ],
)
def test_composite_key_range_follows_tuple_order(lower, upper) -> None:
    key = ["a", "b", "c"]
    expected = [
        row for row in GRID if (lower is None or row >= lower) and (upper is None or row < upper)
    ]
    assert _selected(key, lower, upper, GRID) == expected


def test_adjacent_ranges_partition_the_keys() -> None:
    key = ["a", "b", "c"]
    bounds = [None, (0, "b", 2), (1, "a", 0), (1, "c", 1), (2, "b", 0), None]
    seen: list[tuple] = []
    for lower, upper in itertools.pairwise(bounds):
        seen += _selected(key, lower, upper, GRID)
    assert seen == sorted(GRID)


def test_predicate_uses_the_placeholder_and_orders_parameters() -> None:
    where, params = range_predicate(["a", "b"], (1, 2), None)
    assert where == "((`a` > %s) OR (`a` = %s AND `b` >= %s))"
    assert params == [1, 1, 2]


def test_row_hash_keeps_null_and_empty_apart() -> None:
    schema = TableSchema(
        name="t",
        columns=(
            Column("id", "int(11)", "int", False),
            Column("v", "varchar(5)", "varchar", True, "utf8mb4", "utf8mb4_general_ci"),
            Column("b", "blob", "blob", True),
        ),
        primary_key=("id",),
    )
    sql = row_hash_sql(schema, ["id", "v", "b"])
    assert "ISNULL(`v`)" in sql and "ISNULL(`b`)" in sql  # the NULL map
    assert "HEX(`b`)" in sql  # bytes hashed as hex, never as text


def test_row_hash_converts_text_of_other_character_sets_to_utf8mb4() -> None:
    schema = TableSchema(
        name="t",
        columns=(
            Column("u8", "varchar(5)", "varchar", True, "utf8mb4", "utf8mb4_bin"),
            Column("u16", "varchar(5)", "varchar", True, "utf16", "utf16_general_ci"),
            Column("e32", "enum('a')", "enum", True, "utf32", "utf32_general_ci"),
            Column("bin", "varchar(5)", "varchar", True, "binary", "binary"),
        ),
        primary_key=(),
    )
    sql = row_hash_sql(schema, ["u8", "u16", "e32", "bin"])
    assert "CONVERT(`u16` USING utf8mb4)" in sql and "CONVERT(`e32` USING utf8mb4)" in sql
    assert "CONVERT(`u8`" not in sql and "HEX(`bin`)" in sql and "CONVERT(HEX" not in sql
