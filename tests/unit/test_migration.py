"""Migration rules: for each difference, the target follows in place or is rebuilt."""

from __future__ import annotations

import pytest

from dbsync.backends.mysql.migration import alter_sql, holding_sql
from dbsync.backends.mysql.schema import target_indexes
from dbsync.backends.mysql.types import widens
from dbsync.model import (
    AddColumn,
    AddIndex,
    Column,
    DropColumn,
    DropIndex,
    Index,
    ModifyColumn,
    TableCollation,
    TableSchema,
)
from dbsync.sync.migration import (
    Facts,
    Rules,
    facts_wanted,
    fingerprint,
    plan_migration,
    refusal,
)

UTF8 = {"charset": "utf8mb4", "collation": "utf8mb4_general_ci"}


def col(name: str, column_type: str = "int(11)", nullable: bool = False, **kw: str) -> Column:
    data_type = column_type.split("(")[0].split(" ")[0].lower()
    return Column(name, column_type, data_type, nullable, kw.get("charset"), kw.get("collation"))


ID, V, N, M = (
    col("id"),
    col("v", "varchar(200)", **UTF8),
    col("n", "int(11)", nullable=True),
    col("m", "datetime(6)"),
)


def table(
    *columns: Column,
    key: tuple[str, ...] = ("id",),
    indexes: tuple[Index, ...] = (),
    collation: str = "utf8mb4_general_ci",
) -> TableSchema:
    unique = tuple(i.columns for i in indexes if i.unique)
    return TableSchema(
        "t",
        columns,
        key,
        collation,
        tuple(tuple(c.strip("`") for c in u) for u in unique),
        indexes,
        tuple(f"`{k}`" for k in key),
    )


BASE = table(ID, V, N, M)
NO_FACTS = Facts()


def plan(source: TableSchema, target: TableSchema = BASE, facts: Facts = NO_FACTS, **kw):
    """The rules with MySQL's knowledge of types and indexes, as the dialect gives them."""
    indexes = tuple(target_indexes(source, kw.pop("cursor", None)))
    rules = Rules(widens, indexes, kw.pop("in_place", True))
    return plan_migration(source, target, kw.pop("key", ("id",)), rules, facts, **kw)


def test_identical_definitions_need_nothing() -> None:
    migration = plan(BASE)
    assert not migration.needed and migration.clauses == []


REBUILDS = {
    "int to varchar": col("n", "varchar(20)", nullable=True, **UTF8),
    "int to int unsigned": col("n", "int(10) unsigned", nullable=True),
    "enum member inserted mid-list": None,
    "cursor datetime to timestamp": col("m", "timestamp(6)"),
    "narrowed varchar": col("v", "varchar(40)", **UTF8),
    "charset narrowed": col("v", "varchar(200)", charset="latin1", collation="latin1_swedish_ci"),
}


@pytest.mark.parametrize("case", [c for c in REBUILDS if REBUILDS[c] is not None])
def test_a_change_in_place_could_not_keep_exactly_is_a_rebuild(case: str) -> None:
    changed = REBUILDS[case]
    source = table(*(changed if c.name == changed.name else c for c in BASE.columns))
    migration = plan(source)
    assert migration.rebuild and migration.clauses == []
    assert f"column '{changed.name}'" in migration.summary()


def test_an_enum_member_inserted_mid_list_is_a_rebuild() -> None:
    old, new = col("k", "enum('a','c')"), col("k", "enum('a','b','c')")
    assert plan(table(ID, new), table(ID, old)).rebuild
    assert not plan(table(ID, col("k", "enum('a','c','d')")), table(ID, old)).rebuild


def test_a_widened_column_is_modified_in_place_where_it_stands() -> None:
    source = table(ID, col("v", "varchar(300)", **UTF8), N, M)
    migration = plan(source)
    assert not migration.rebuild
    assert migration.clauses == [ModifyColumn(source.columns[1], "id")]
    assert migration.changes() == [
        "followed in place: the source changed: column 'v' widened from varchar(200) to "
        "varchar(300)"
    ]


def test_not_null_tightened_is_in_place_when_the_target_holds_no_null() -> None:
    source = table(ID, V, col("n", "int(11)"), M)
    assert facts_wanted(source, BASE, widens) == (["n"], [])
    assert plan(source).clauses == [ModifyColumn(source.columns[2], "v")]


def test_not_null_tightened_after_a_backfill_the_target_lacks_is_a_rebuild() -> None:
    source = table(ID, V, col("n", "int(11)"), M)
    migration = plan(source, facts=Facts(target_nulls=frozenset({"n"})))
    assert migration.rebuild
    assert "the target still holds NULLs the source has backfilled" in migration.changes()[0]


def test_not_null_loosened_is_in_place() -> None:
    source = table(ID, V, N, col("m", "datetime(6)", nullable=True))
    assert not plan(source).rebuild


def test_an_added_nullable_column_without_values_is_added_in_place() -> None:
    extra = col("note", "varchar(5)", nullable=True, **UTF8)
    source = table(ID, extra, V, N, M)
    assert facts_wanted(source, BASE, widens) == ([], ["note"])
    assert plan(source).clauses == [AddColumn(extra, "id")]


def test_an_added_column_the_source_holds_values_in_is_a_rebuild() -> None:
    extra = col("note", "varchar(5)", nullable=True, **UTF8)
    source = table(ID, V, N, M, extra)
    assert plan(source, facts=Facts(source_values=frozenset({"note"}))).rebuild
    assert plan(table(ID, V, N, M, col("score", "int(11)"))).rebuild  # NOT NULL


def test_a_dropped_column_is_dropped_in_place() -> None:
    migration = plan(table(ID, V, M))
    assert migration.clauses == [DropColumn("n")]
    assert migration.summary() == "column 'n' was dropped or renamed"


def test_a_moved_column_puts_every_column_in_source_order() -> None:
    source = table(M, ID, V, N)
    migration = plan(source)
    assert migration.summary() == "column order changed"
    assert migration.clauses == [
        ModifyColumn(M, None),
        ModifyColumn(ID, "m"),
        ModifyColumn(V, "id"),
        ModifyColumn(N, "v"),
    ]


def test_a_primary_key_change_is_a_rebuild() -> None:
    source = table(ID, V, N, M, key=("id", "m"))
    migration = plan(source, key=("id", "m"))
    assert migration.rebuild
    assert "primary key changed from ['id'] to ['id', 'm']" in migration.summary()


def test_a_unique_key_used_as_merge_key_is_the_targets_primary_key() -> None:
    source = table(ID, V, N, M, indexes=(Index("uv", ("`v`",), unique=True),))
    target = table(ID, V, N, M, key=("v",), indexes=(Index("uv", ("`v`",), unique=True),))
    assert not plan(source, target, key=("v",)).needed


def test_indexes_added_dropped_and_made_unique_follow_in_place() -> None:
    by_n, by_v = Index("by_n", ("`n`",)), Index("by_v", ("`v`(10)",))
    source = table(ID, V, N, M, indexes=(Index("by_n", ("`n`",), unique=True), by_v))
    target = table(ID, V, N, M, indexes=(by_n, Index("old", ("`m`",))))
    migration = plan(source, target, cursor="m")
    assert not migration.rebuild
    assert migration.clauses == [
        DropIndex("by_n"),
        DropIndex("old"),
        AddIndex(Index("by_n", ("`n`",), unique=True)),
        AddIndex(by_v),
        AddIndex(Index("dbsync_cursor", ("`m`",))),
    ]
    assert alter_sql("db", "t", migration.clauses) == (
        "ALTER TABLE `db`.`t` DROP KEY `by_n`, DROP KEY `old`, ADD UNIQUE KEY `by_n` (`n`), "
        "ADD KEY `by_v` (`v`(10)), ADD KEY `dbsync_cursor` (`m`)"
    )


def test_the_tables_default_collation_follows_in_place() -> None:
    source = table(ID, V, N, M, collation="utf8mb4_unicode_ci")
    migration = plan(source)
    assert migration.clauses == [TableCollation("utf8mb4_unicode_ci")]
    assert alter_sql("db", "t", migration.clauses) == (
        "ALTER TABLE `db`.`t` COLLATE utf8mb4_unicode_ci"
    )


def test_a_column_converted_to_utf8mb4_follows_in_place() -> None:
    latin = col("v", "varchar(200)", charset="latin1", collation="latin1_swedish_ci")
    migration = plan(BASE, table(ID, latin, N, M))
    assert not migration.rebuild and migration.clauses == [ModifyColumn(V, "id")]


def test_a_collation_change_on_a_key_column_is_a_rebuild() -> None:
    key = col("v", "varchar(200)", charset="utf8mb4", collation="utf8mb4_bin")
    source = table(ID, key, N, M, key=("v",))
    assert plan(source, table(ID, V, N, M, key=("v",)), key=("v",)).rebuild
    assert not plan(table(ID, key, N, M)).rebuild  # not a key column: in place


def test_a_target_changed_by_hand_is_named_as_such() -> None:
    hand_made = table(ID, V, N, M, col("mine", "int(11)", nullable=True))
    migration = plan(BASE, hand_made, target_changed=True)
    assert migration.changes() == [
        "repaired in place: the TARGET table was changed since the last sync (not by dbsync): "
        "column 'mine' exists only in the target"
    ]


def test_a_refusal_is_one_line_naming_the_difference_and_the_remedy() -> None:
    source = table(ID, V, col("n", "varchar(20)", nullable=True, **UTF8), M)
    line = refusal(plan(source))
    assert "\n" not in line
    assert "column 'n' changed from int(11) to varchar(20)" in line
    assert "dbsync sync t --full-refresh" in line and '"fail"' in line


def test_without_alter_in_place_every_difference_is_a_rebuild() -> None:
    assert plan(table(ID, V, N, M, col("x", "int(11)", nullable=True)), in_place=False).rebuild


def test_the_fingerprint_sees_uniqueness_and_order() -> None:
    plain = table(ID, V, indexes=(Index("u", ("`v`",)),))
    unique = table(ID, V, indexes=(Index("u", ("`v`",), unique=True),))
    assert fingerprint(plain) != fingerprint(unique)
    assert fingerprint(table(ID, V)) != fingerprint(table(V, ID))
    assert fingerprint(plain) == fingerprint(table(ID, V, indexes=(Index("u", ("`v`",)),)))


def test_column_renders_with_position_and_probes_stop_at_the_first_row() -> None:
    assert alter_sql("db", "t", [AddColumn(N, None), DropColumn("x")]) == (
        "ALTER TABLE `db`.`t` ADD COLUMN `n` int(11) NULL FIRST, DROP COLUMN `x`"
    )
    assert holding_sql("db", "t", ["n"], nulls=True) == (
        "SELECT EXISTS(SELECT 1 FROM `db`.`t` WHERE `n` IS NULL LIMIT 1)"
    )
