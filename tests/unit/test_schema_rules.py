"""Schema rules: which type changes keep every value, and the CREATE TABLE a target gets."""

from __future__ import annotations

import pytest

from dbsync.backends.mysql.schema import add_indexes_sql, create_table_sql
from dbsync.backends.mysql.types import widens as _widens
from dbsync.model import Column, Index, TableSchema

WIDENINGS = [
    ("varchar(50)", "varchar(10)"),
    ("varchar(10)", "varchar(10)"),
    ("bigint(20)", "int(11)"),
    ("int(10) unsigned", "smallint(5) unsigned"),
    ("bigint(20)", "int(10) unsigned"),
    ("INT(11)", "TINYINT(4)"),
    ("enum('a','b','c')", "enum('a','b')"),
    ("set('x','y','z')", "set('x','y')"),
    ("decimal(12,4)", "decimal(10,2)"),
    ("double", "float"),
    ("varchar(10)", "char(10)"),
    ("text", "varchar(100)"),
    ("mediumtext", "text"),
    ("longblob", "blob"),
    ("blob", "varbinary(10)"),
    ("varbinary(20)", "binary(10)"),
    ("datetime(6)", "datetime"),
    ("time(3)", "time(1)"),
    ("timestamp(6)", "timestamp(3)"),
]

NOT_WIDENINGS = [
    ("varchar(10)", "varchar(50)"),
    ("int(11)", "bigint(20)"),
    ("int(11)", "int(10) unsigned"),  # same size, cannot hold the unsigned top half
    ("int(10) unsigned", "int(11)"),  # cannot hold negatives
    ("bigint(20) unsigned", "tinyint(4)"),
    ("enum('a','c','b')", "enum('a','b')"),  # members reordered: stored indexes change
    ("enum('a')", "enum('a','b')"),
    ("enum('A','b')", "enum('a','b')"),  # members are case-sensitive
    ("set('x')", "set('x','y')"),
    ("decimal(10,2)", "decimal(10,4)"),  # fewer decimals
    ("decimal(10,4)", "decimal(10,2)"),  # fewer integer digits
    ("decimal(12,2) unsigned", "decimal(10,2)"),
    ("char(10)", "varchar(10)"),  # CHAR would strip trailing spaces
    ("float", "double"),
    ("datetime", "datetime(6)"),
    ("date", "datetime"),
    ("varchar(10)", "int(11)"),
    ("text", "mediumtext"),
    ("varbinary(10)", "varchar(10)"),
    ("blob", "text"),
]


@pytest.mark.parametrize(("new", "old"), WIDENINGS)
def test_widening_is_allowed(new: str, old: str) -> None:
    assert _widens(new, old)


@pytest.mark.parametrize(("new", "old"), NOT_WIDENINGS)
def test_narrowing_or_reinterpreting_is_refused(new: str, old: str) -> None:
    assert not _widens(new, old)


def test_varchar_longer_than_255_bytes_does_not_widen_to_tinytext() -> None:
    assert not _widens("tinytext", "varchar(100)")


def col(name: str, column_type: str = "int(11)", nullable: bool = False, **kw: str) -> Column:
    data_type = column_type.split("(")[0].split(" ")[0].lower()
    return Column(name, column_type, data_type, nullable, kw.get("charset"), kw.get("collation"))


VARCHAR = {"charset": "utf8mb4", "collation": "utf8mb4_general_ci"}


def table(*columns: Column, key: tuple[str, ...] = ("id",)) -> TableSchema:
    return TableSchema(
        name="t",
        columns=columns,
        primary_key=key,
        rendered_primary_key=tuple(f"`{k}`" for k in key),
    )


BASE = (col("id"), col("v", "varchar(10)", **VARCHAR), col("m", "datetime", nullable=True))


def test_created_table_mirrors_columns_key_and_adds_a_cursor_index() -> None:
    sql = create_table_sql(table(*BASE), "stage", "t", ("id",), "m")
    assert sql == (
        "CREATE TABLE `stage`.`t` (\n"
        "  `id` int(11) NOT NULL,\n"
        "  `v` varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NOT NULL,\n"
        "  `m` datetime NULL,\n"
        "  PRIMARY KEY (`id`),\n"
        "  KEY `dbsync_cursor` (`m`)\n"
        ") ENGINE=InnoDB"
    )


@pytest.mark.parametrize(
    ("new", "old", "widens"),
    [
        ("tinytext", "varchar(63)", True),  # 63 characters x 4 bytes fit in 255 bytes
        ("tinytext", "char(255)", False),
        ("text", "varchar(16383)", True),
        ("tinyblob", "varbinary(255)", True),
        ("tinyblob", "varbinary(256)", False),
    ],
)
def test_tiny_text_and_blob_hold_only_255_bytes(new: str, old: str, widens: bool) -> None:
    assert _widens(new, old) is widens


def test_a_keyless_source_gives_a_table_without_a_primary_key() -> None:
    sql = create_table_sql(table(*BASE, key=()), "stage", "t", (), None)
    assert "PRIMARY KEY" not in sql
    assert sql.startswith("CREATE TABLE `stage`.`t` (\n  `id` int(11) NOT NULL,")


def test_an_omitted_key_takes_the_sources_own_primary_key() -> None:
    sql = create_table_sql(table(*BASE, key=("v", "id")), "stage", "t", (), None)
    assert "  PRIMARY KEY (`v`, `id`)\n" in sql


def test_unique_indexes_are_created_unique_unless_asked_otherwise() -> None:
    source = TableSchema(
        "t",
        BASE,
        ("id",),
        indexes=(Index("u", ("`v`",), unique=True),),
        rendered_primary_key=("`id`",),
    )
    assert "  UNIQUE KEY `u` (`v`)" in create_table_sql(source, "s", "t", ("id",), None)
    plain = create_table_sql(source, "s", "t", ("id",), None, unique_indexes=False)
    assert "  KEY `u` (`v`)" in plain and "UNIQUE" not in plain


def test_a_plain_index_that_should_be_unique_is_made_unique() -> None:
    unique = Index("u", ("`v`",), unique=True)
    source = TableSchema("t", BASE, ("id",), indexes=(unique,))
    present = [Index("u", ("`v`",)), Index("dbsync_cursor", ("`m`",))]
    assert add_indexes_sql(source, "s", "t", "m", present) == (
        "ALTER TABLE `s`.`t` DROP KEY `u`, ADD UNIQUE KEY `u` (`v`)"
    )
    assert add_indexes_sql(source, "s", "t", "m", present, unique=False) is None
