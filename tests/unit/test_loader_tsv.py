"""LOAD DATA text: every value survives the tab-separated, backslash-escaped encoding."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dbsync.backends.mysql.loader import load_data_sql, to_tsv
from dbsync.model import Column

NULL = object()  # what LOAD DATA reads for a bare \N field


def parse_load_data(data: bytes, columns: int) -> list[tuple]:
    """Read ``data`` as LOAD DATA does with FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\'
    LINES TERMINATED BY '\\n' (MySQL manual, LOAD DATA: field and line handling)."""
    text = data.decode("utf-8")
    unescape = {"t": "\t", "n": "\n", "r": "\r", "0": "\x00", "\\": "\\", "Z": "\x1a"}
    rows: list[tuple] = []
    fields: list[object] = []
    field: list[str] = []
    raw_field: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            escaped = text[i + 1]
            field.append(unescape.get(escaped, escaped))
            raw_field.append(char + escaped)
            i += 2
            continue
        if char in "\t\n":
            fields.append(NULL if "".join(raw_field) == "\\N" else "".join(field))
            field, raw_field = [], []
            if char == "\n":
                assert len(fields) == columns, fields
                rows.append(tuple(fields))
                fields = []
        else:
            field.append(char)
            raw_field.append(char)
        i += 1
    assert not field and not fields, "data must end with a complete line"
    return rows


TRICKY = [
    "plain",
    "",
    None,
    "tab\there",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash",
    "\\N",
    "\\",
    "NULL",
    "nul\x00byte",
    "ends with backslash\\",
    "😀 𝄞 中文",
    "\t\n\\\x00",
]


def _batch(*columns: list) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(c, type=pa.string()) for c in columns],
        names=[f"c{i}" for i in range(len(columns))],
    )


def _expected(*columns: list) -> list[tuple]:
    return [tuple(NULL if v is None else v for v in row) for row in zip(*columns, strict=True)]


def test_tricky_text_round_trips_in_a_single_column() -> None:
    assert parse_load_data(to_tsv(_batch(TRICKY)), 1) == _expected(TRICKY)


def test_tricky_text_round_trips_across_several_columns() -> None:
    other = list(reversed(TRICKY))
    numbers = [str(i) if i % 3 else None for i in range(len(TRICKY))]
    data = to_tsv(_batch(numbers, TRICKY, other))
    assert parse_load_data(data, 3) == _expected(numbers, TRICKY, other)


def test_one_line_per_row_each_ending_in_a_newline() -> None:
    data = to_tsv(_batch(["a", "b", None], ["x", None, ""]))
    assert data == b"a\tx\nb\t\\N\n\\N\t\n"


def test_a_table_of_several_batches_is_their_concatenation() -> None:
    first, second = _batch(["a\tb", None]), _batch(["c\\d"])
    table = pa.Table.from_batches([first, second])
    assert to_tsv(table) == to_tsv(first) + to_tsv(second)
    assert parse_load_data(to_tsv(table), 1) == [("a\tb",), (NULL,), ("c\\d",)]


def test_no_rows_give_no_bytes() -> None:
    assert to_tsv(_batch([])) == b""


def test_values_from_a_sliced_batch_are_its_own() -> None:
    batch = _batch(["skip", "keep\tme", "and\\me"]).slice(1)
    assert parse_load_data(to_tsv(batch), 1) == [("keep\tme",), ("and\\me",)]


def column(name: str, data_type: str, charset: str | None = None) -> Column:
    return Column(name, data_type, data_type, True, charset, None)


def test_load_data_statement_names_columns_in_order() -> None:
    sql = load_data_sql("/tmp/x.tsv", "stage", "t", [column("id", "int"), column("v", "varchar")])
    assert sql == (
        "LOAD DATA LOCAL INFILE '/tmp/x.tsv' INTO TABLE `stage`.`t` CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`id`, `v`)"
    )


@pytest.mark.parametrize(
    ("data_type", "charset", "assignment"),
    [
        ("blob", None, "`c` = UNHEX(@v1)"),
        ("geometry", None, "`c` = UNHEX(@v1)"),
        ("varchar", "binary", "`c` = UNHEX(@v1)"),
        ("bit", None, "`c` = CAST(@v1 AS UNSIGNED)"),
    ],
)
def test_bytes_and_bits_are_assigned_through_a_variable(
    data_type: str, charset: str | None, assignment: str
) -> None:
    sql = load_data_sql("/f", "s", "t", [column("id", "int"), column("c", data_type, charset)])
    assert sql.endswith(f"(`id`, @v1) SET {assignment}")


def test_path_quotes_and_backslashes_are_escaped_in_the_literal() -> None:
    sql = load_data_sql("/tmp/it's\\x.tsv", "s", "t", [column("id", "int")])
    assert "INFILE '/tmp/it\\'s\\\\x.tsv' INTO" in sql


def test_identifiers_with_backticks_are_quoted() -> None:
    sql = load_data_sql("/f", "s", "we`ird", [column("a`b", "int")])
    assert "INTO TABLE `s`.`we``ird`" in sql and "(`a``b`)" in sql
