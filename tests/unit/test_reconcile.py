"""Row-content comparison and reconcile policy without a server (dbsync.rowdiff,
dbsync.rowdiff_sql, dbsync.reconcile)."""

from __future__ import annotations

import pytest

from dbsync.backends.mysql.checksum import row_hash_sql
from dbsync.backends.mysql.rowdiff import (
    Fingerprint,
    fingerprint_sql,
    plan_fingerprint,
    read_rows_sql,
    row_text_sql,
    upsert_sql,
)
from dbsync.compare import reconcile, rowdiff
from dbsync.config.tables import TableConfig
from dbsync.model import Column, TableSchema

ID = Column("id", "int(11)", "int", False)
V = Column("v", "varchar(5)", "varchar", True, "utf8mb4", "utf8mb4_general_ci")
B = Column("b", "blob", "blob", True)
F = Column("f", "float", "float", True)


def _schema(*columns: Column) -> TableSchema:
    return TableSchema(name="t", columns=columns, primary_key=("id",))


def test_matching_rows_by_identity_sorts_them_into_missing_changed_and_only_in_target() -> None:
    diff = rowdiff.RowDiff()
    source = [("1", 10, 1), ("2", 20, 2), ("3", 30, 3)]
    target = [("1", 10, 1), ("2", 21, 2), ("4", 40, 4)]
    rowdiff._match(source, target, diff)
    assert (diff.missing, diff.changed, diff.only_in_target) == ([(3,)], [(2,)], [(4,)])


def test_a_key_spelled_differently_is_missing_on_one_side_and_extra_on_the_other() -> None:
    diff = rowdiff.RowDiff()
    rowdiff._match([("a", 1, "a")], [("A", 1, "A")], diff)
    assert (diff.missing, diff.only_in_target) == ([("a",)], [("A",)])


def test_the_first_fold_expects_one_difference_in_a_thousand_rows_or_the_count_gap() -> None:
    hints = [rowdiff.differences_hint(*c) for c in ((0, 0), (1_000_000, 1_000_000), (10, 5000))]
    assert hints == [1, 1000, 4990]


@pytest.mark.parametrize(
    ("rows", "limit"), [(1000, 10_000), (1_000_000, 20_000), (100_000_000, 200_000)]
)
def test_the_diff_limit_is_a_share_of_the_rows_within_bounds(rows: int, limit: int) -> None:
    assert reconcile.diff_limit(rows) == limit


def test_a_moved_column_is_not_the_same_layout_for_the_engines_checksum() -> None:
    assert not reconcile.same_layout(_schema(ID, V), _schema(V, ID))
    assert reconcile.same_layout(_schema(ID, V), _schema(ID, V))


def test_the_fingerprint_takes_columns_by_name_in_the_order_given() -> None:
    plan = Fingerprint(("id", "v"), frozenset({"v"}))
    assert fingerprint_sql(_schema(ID, V), plan) == fingerprint_sql(_schema(V, ID), plan)


def test_the_fingerprint_takes_text_and_bytes_as_their_own_crc32_and_keeps_nulls_apart() -> None:
    plan = Fingerprint(("id", "v", "b", "f"), frozenset({"v", "b", "f"}))
    sql = fingerprint_sql(_schema(ID, V, B, F), plan)
    assert "CRC32(`b`)" in sql and "CRC32(`v`)" in sql and "LENGTH(" not in sql
    assert "ISNULL(`v`)" in sql and "CAST(CAST(`f` AS DOUBLE) AS CHAR)" in sql
    assert "ISNULL(`id`)" not in sql  # NOT NULL on both sides: no flag


def test_the_row_text_prefixes_text_and_bytes_with_their_length() -> None:
    plan = Fingerprint(("id", "v", "b"), frozenset({"v", "b"}))
    sql = row_text_sql(_schema(ID, V, B), plan)
    assert "LENGTH(`v`), ':', `v`" in sql and "LENGTH(`b`), ':', `b`" in sql


def test_floats_enter_the_fingerprint_as_shortest_double_text_where_both_servers_can() -> None:
    plan = Fingerprint(("id", "f"), frozenset({"f"}), short_floats=True)
    sql = fingerprint_sql(_schema(ID, F), plan)
    assert "SFORMAT('{}', CAST(`f` AS DOUBLE))" in sql


def test_a_column_nullable_on_one_side_only_is_flagged_on_both() -> None:
    from dbsync.model import KeySet

    strict = Column("v", "varchar(5)", "varchar", False, "utf8mb4", "utf8mb4_general_ci")
    source = KeySet(None, "s", _schema(ID, strict), ("id",))  # type: ignore[arg-type]
    target = KeySet(None, "t", _schema(ID, V), ("id",))  # type: ignore[arg-type]
    plan = plan_fingerprint(source, target, ["id", "v"])
    assert plan.nullable == {"v"} and not plan.short_floats
    assert fingerprint_sql(source.schema, plan) == fingerprint_sql(target.schema, plan)


def test_verify_hashes_columns_by_name_so_a_moved_column_hashes_alike() -> None:
    assert row_hash_sql(_schema(ID, V), ["id", "v"]) == row_hash_sql(_schema(V, ID), ["id", "v"])


def test_repaired_rows_are_upserted_from_their_text_with_bytes_unhexed() -> None:
    sql = upsert_sql(_schema(ID, B), "`d`.`t`", 2, "%s")
    assert sql.count("(%s, UNHEX(%s))") == 2 and "`b` = VALUES(`b`)" in sql


def test_an_incremental_reread_leaves_rows_newer_than_the_cap_to_the_next_read() -> None:
    sql = read_rows_sql(_schema(ID, V), "`s`.`t`", ["id"], 3, "%s", cursor_cap="m")
    assert sql.endswith("WHERE `id` IN (%s, %s, %s) AND (`m` <= %s OR `m` IS NULL)")


def test_strategy_and_reconcile_interval_are_validated() -> None:
    config = TableConfig.model_validate({"table": "t", "strategy": "replace"})
    assert (config.strategy, config.reconcile_interval) == ("replace", 86_400)
    with pytest.raises(ValueError, match="strategy"):
        TableConfig.model_validate({"table": "t", "strategy": "merge"})


def _ranged(low: int, high: int):
    from dbsync.backends.mysql.rowdiff import RangeRowSide
    from dbsync.model import KeySet

    keys = KeySet(None, "d", _schema(ID, V), ("id",))  # type: ignore[arg-type]
    return RangeRowSide(keys, Fingerprint(("id", "v"), frozenset({"v"})), low, high)


def test_range_buckets_read_only_their_key_ranges() -> None:
    from dbsync.model import Buckets

    side = _ranged(100, 100 + 1023)  # 10 bits of offsets
    where = side.where(Buckets(4, (2, (1, 2))))  # depth 2: quarters of 256 keys
    assert where == " WHERE (`id` >= 356 AND `id` < 868)"


def test_range_buckets_deeper_than_the_keys_are_single_keys() -> None:
    from dbsync.model import Buckets

    side = _ranged(0, 7)  # 3 bits
    assert (side.bucket_sql(5), side.where(Buckets(5, (5, (4,))))) == (
        "((`id` - 0) >> 0)",
        " WHERE (`id` >= 4 AND `id` < 5)",
    )


def test_the_whole_table_is_folded_in_key_ranges_cut_at_bucket_boundaries_open_at_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dbsync.backends.mysql import rowdiff as sql

    monkeypatch.setattr(sql, "FOLD_PIECES", 4)
    side = _ranged(100, 100 + 1023)  # 10 bits of offsets: 16 buckets of 64 keys at 4 bits
    assert side._pieces(4) == [
        " WHERE `id` < 356",
        " WHERE `id` >= 356 AND `id` < 612",
        " WHERE `id` >= 612 AND `id` < 868",
        " WHERE `id` >= 868",
    ]
    assert side._pieces(1) == [" WHERE `id` < 612", " WHERE `id` >= 612"]


@pytest.mark.parametrize(
    ("written", "last_repaired", "pay"),
    [(True, False, False), (False, True, True), (None, True, False), (None, False, True)],
)
def test_checksums_first_unless_a_change_was_noted_or_without_a_note_the_last_diff_repaired(
    written: bool | None, last_repaired: bool, pay: bool
) -> None:
    assert reconcile.checksums_pay(written, lambda: last_repaired) is pay


def test_enums_and_timestamps_of_the_same_type_on_both_sides_enter_as_numbers() -> None:
    from dbsync.model import KeySet

    e = Column("e", "enum('a','b')", "enum", True, "utf8mb4", "utf8mb4_general_ci")
    t = Column("t", "timestamp(6)", "timestamp", True)
    wider = Column("e", "enum('a','b','c')", "enum", True, "utf8mb4", "utf8mb4_general_ci")
    source = KeySet(None, "s", _schema(ID, e, t), ("id",))  # type: ignore[arg-type]
    same = plan_fingerprint(source, source, ["id", "e", "t"])
    other = plan_fingerprint(
        source, KeySet(None, "t", _schema(ID, wider, t), ("id",)), ["id", "e", "t"]  # type: ignore[arg-type]
    )
    assert "`e` + 0" in fingerprint_sql(source.schema, same)
    assert "UNIX_TIMESTAMP(`t`)" in fingerprint_sql(source.schema, same)
    assert "CRC32(`e`)" in fingerprint_sql(source.schema, other)  # members differ: its text
