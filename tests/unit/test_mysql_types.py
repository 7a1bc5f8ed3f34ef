"""MySQL type knowledge in one place: extraction and loading agree on every type set."""

from __future__ import annotations

import pytest

from dbsync.backends.mysql import types as mysql_types
from dbsync.model import Column


def column(data_type: str, charset: str | None = None) -> Column:
    return Column(
        name="c", column_type=data_type, data_type=data_type, nullable=True, charset=charset
    )


@pytest.mark.parametrize("data_type", sorted(mysql_types.TEXTUAL))
def test_textual_values_are_read_as_they_are_and_escaped_on_load(data_type: str) -> None:
    col = column(data_type, "utf8mb4")
    assert mysql_types.text_expression(col, "`c`") == "`c`"
    assert mysql_types.needs_escaping(col)
    assert mysql_types.load_expression(col, "@v0") is None


@pytest.mark.parametrize(("data_type", "charset"), [("blob", None), ("varchar", "binary")])
def test_bytes_travel_as_hex_both_ways(data_type: str, charset: str | None) -> None:
    col = column(data_type, charset)
    assert mysql_types.text_expression(col, "`c`") == "HEX(`c`)"
    assert mysql_types.load_expression(col, "@v0") == "UNHEX(@v0)"


def test_bit_travels_as_its_number_both_ways() -> None:
    col = column("bit")
    assert mysql_types.text_expression(col, "`c`") == "CAST(CAST(`c` AS UNSIGNED) AS CHAR)"
    assert mysql_types.load_expression(col, "@v0") == "CAST(@v0 AS UNSIGNED)"


def test_numbers_and_dates_need_no_escaping() -> None:
    for data_type in ("int", "decimal", "double", "float", "datetime", "date", "time", "year"):
        assert not mysql_types.needs_escaping(column(data_type))
