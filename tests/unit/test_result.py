"""The per-table summary says what happened to each table's schema, and why."""

from __future__ import annotations

from dbsync.config.result import SyncResult, format_results


def test_the_summary_lists_each_tables_schema_changes_below_the_table() -> None:
    result = SyncResult(table="orders", mode="full_refresh", target_definition="abc")
    result.schema_changes.append("rebuilt: the source changed: column 'n' changed")
    created = SyncResult(table="items", mode="full_refresh", schema_changes=["created"])
    lines = format_results([result.finish("synced"), created.finish("synced")]).splitlines()
    assert lines[-3:] == [
        "",
        "schema changes:",
        "  orders: rebuilt: the source changed: column 'n' changed",
    ]


def test_the_remembered_target_definition_is_not_part_of_the_summary() -> None:
    result = SyncResult(table="orders", mode="incremental", target_definition="abc")
    assert "target_definition" not in result.finish("synced").to_dict()
