"""The read-ahead's statements: which index it goes through, and how keys are bound."""

from __future__ import annotations

from dbsync.backends.mysql.read_ahead import cursor_index, read_ahead_sql
from dbsync.model import Column, Index, TableSchema


def _schema(*indexes: Index) -> TableSchema:
    columns = (
        Column("id", "int", "int", False),
        Column("m", "datetime(6)", "datetime", True),
        Column("name", "varchar(40)", "varchar", False),
    )
    return TableSchema("t", columns, ("id",), indexes=indexes)


def test_the_index_led_by_the_cursor_is_chosen() -> None:
    schema = _schema(Index("by_name", ("`name`",)), Index("by_m", ("`m`", "`name`")))

    assert cursor_index(schema, "m") == Index("by_m", ("`m`", "`name`"))


def test_an_index_with_a_prefix_length_part_is_not_used() -> None:
    schema = _schema(Index("by_m", ("`m`", "`name`(10)")))

    assert cursor_index(schema, "m") is None


def test_without_a_cursor_index_only_rows_are_read_through_the_primary_key() -> None:
    sql = read_ahead_sql("`db`.`t`", ("id",), None, 3)

    assert sql == (
        "SELECT COUNT(*) FROM `db`.`t` AS x FORCE INDEX (PRIMARY) "
        "WHERE (x.`id`) IN ((%s), (%s), (%s))"
    )


def test_the_cursor_index_entry_is_joined_on_all_its_columns_and_the_key() -> None:
    sql = read_ahead_sql("`db`.`t`", ("a", "b"), Index("by_m", ("`m`",)), 2)

    assert sql == (
        "SELECT COUNT(*) FROM `db`.`t` AS x FORCE INDEX (PRIMARY) "
        "JOIN `db`.`t` AS y FORCE INDEX (`by_m`) "
        "ON y.`m` <=> x.`m` AND y.`a` <=> x.`a` AND y.`b` <=> x.`b` "
        "WHERE (x.`a`, x.`b`) IN ((%s, %s), (%s, %s))"
    )
