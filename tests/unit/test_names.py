"""Names derived for dlt and staging: safe for dlt, unique per table, readable."""

from __future__ import annotations

import pytest
from dlt.common.storages import FileStorage

from dbsync.config.names import pipeline_name, staging_table


def test_a_plain_table_name_is_its_own_staging_name() -> None:
    assert staging_table("order_lines") == "order_lines"


@pytest.mark.parametrize("name", ["a.b", "x|y", 'say "hi"', "Order-Lines", "ünï", "a/b\\c"])
def test_an_odd_table_name_becomes_a_sanitized_name_with_a_hash(name: str) -> None:
    derived = staging_table(name)
    FileStorage.validate_file_name_component(derived)
    assert derived.replace("_", "").isalnum() and derived.isascii()


def test_names_that_sanitize_alike_stay_distinct() -> None:
    assert staging_table("a.b") != staging_table("a|b") != staging_table("a_b")


def test_a_name_like_dlts_own_tables_is_hashed() -> None:
    assert staging_table("_dlt_loads") != "_dlt_loads"
    assert not staging_table("_dlt_loads").startswith("_dlt")


def test_a_long_name_fits_mysqls_64_characters() -> None:
    assert len(staging_table("x" * 64)) <= 64
    assert len(staging_table("é" * 64)) <= 64


def test_pipeline_names_are_valid_file_names() -> None:
    for database, table in [("shop", "a.b"), ("shop", 'q"'), ("x" * 64, "y" * 64)]:
        FileStorage.validate_file_name_component(pipeline_name(database, table))
    assert pipeline_name("shop", "orders") == "dbsync__shop__orders"


@pytest.mark.parametrize("column", ['say "hi"', "it's", " lead", "bt`ick", "a\nb", "ünï"])
def test_dlt_keeps_column_names_exactly(column: str) -> None:
    from dbsync.sync.pipeline import ExactNames

    assert ExactNames().normalize_identifier(column) == column
