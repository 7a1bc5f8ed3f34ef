"""tables.json validation: every problem reported, each with its JSON path and a plain message."""

from __future__ import annotations

import json

import pytest

from dbsync.config.errors import ConfigError
from dbsync.config.tables import load_tables, parse_tables

KEY_REQUIRED = (
    "is required for an incremental table (one with a modifier); "
    "without modifier the table is copied whole"
)
FOUR_BYTES = (
    "MySQL/MariaDB names cannot contain 4-byte UTF-8 characters (such as emoji), "
    "so no such table or column exists"
)


def _problems(entries: object) -> list[str]:
    return [str(p) for p in parse_tables(json.dumps(entries)).problems]


def test_a_valid_file_has_tables_and_no_problems() -> None:
    parsed = parse_tables(
        json.dumps(
            [
                {"table": "a", "primary_key": "id"},
                {"table": "b", "primary_key": ["x", "y"], "modifier": "m", "lag_seconds": 2.5},
            ]
        )
    )
    assert parsed.problems == []
    assert [t.table for t in parsed.tables] == ["a", "b"]
    assert parsed.get("a").primary_key == ("id",)  # a single name becomes a one-column key
    assert parsed.get("b").primary_key == ("x", "y")
    assert (parsed.get("a").mode, parsed.get("b").mode) == ("full_refresh", "incremental")
    assert parsed.get("b").lag_seconds == 2.5
    assert parsed.get("missing") is None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"table": "t", "modifier": "m"}, f"$[1].primary_key: {KEY_REQUIRED}"),
        ({"table": "t", "primary_key": []}, "$[1].primary_key: must not be an empty list"),
        ({"table": "t", "primary_key": "id", "colour": "red"}, "$[1].colour: unknown key"),
        ({"primary_key": "id"}, "$[1].table: is required"),
        ({"table": "  ", "primary_key": "id"}, "$[1].table: must not be blank"),
        ({"table": "t", "primary_key": ["a", "a"]}, "$[1].primary_key: lists a column twice"),
        (
            {"table": "t", "primary_key": ["a", ""]},
            "$[1].primary_key: every key column must be a non-blank string",
        ),
        (
            {"table": "t", "primary_key": 5},
            "$[1].primary_key: must be a column name or a non-empty list of column names",
        ),
        ({"table": "t", "primary_key": "id", "modifier": " "}, "$[1].modifier: must not be blank"),
        ("not an object", "$[1]: must be an object"),
    ],
)
def test_each_problem_names_its_path(entry: object, expected: str) -> None:
    assert _problems([{"table": "ok", "primary_key": "id"}, entry]) == [expected]


@pytest.mark.parametrize(
    ("field", "value"),
    [("lag_seconds", -1), ("interval", 0), ("interval", "300"), ("table", "x" * 65)],
)
def test_out_of_range_or_mistyped_values_are_problems(field: str, value: object) -> None:
    problems = _problems([{"table": "t", "primary_key": "id", field: value}])
    assert len(problems) == 1
    assert problems[0].startswith(f"$[0].{field}: ")


def test_good_entries_survive_bad_ones_and_all_problems_are_reported() -> None:
    parsed = parse_tables(
        json.dumps(
            [
                {"table": "a", "primary_key": "id"},
                {"table": "b", "modifier": "m"},
                {"table": "c", "primary_key": "id", "bogus": 1},
                {"table": "d", "primary_key": "id"},
            ]
        )
    )
    assert [t.table for t in parsed.tables] == ["a", "d"]
    assert [str(p) for p in parsed.problems] == [
        f"$[1].primary_key: {KEY_REQUIRED}",
        "$[2].bogus: unknown key",
    ]
    assert parsed.positions == {"a": 0, "d": 3}


def test_a_duplicate_table_is_a_problem_pointing_at_the_first() -> None:
    assert _problems([{"table": "a", "primary_key": "id"}, {"table": "a", "primary_key": "k"}]) == [
        "$[1].table: duplicate of $[0] (a)"
    ]


def test_invalid_json_is_a_config_error_with_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tables('[\n  {"table": "a",}\n]')
    (problem,) = caught.value.problems
    assert problem.path == "$"
    assert problem.message.startswith("invalid JSON: ")
    assert "(line 2, column" in problem.message


def test_a_non_array_document_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tables('{"table": "a", "primary_key": "id"}')
    assert [str(p) for p in caught.value.problems] == ["$: must be a JSON array of table objects"]


def test_an_unreadable_file_is_a_config_error_naming_the_path(tmp_path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        load_tables(missing)
    (problem,) = caught.value.problems
    assert problem.path == str(missing)
    assert problem.message.startswith("cannot read: ")


def test_deletes_default_to_propagate_for_incremental_tables() -> None:
    parsed = parse_tables(
        json.dumps(
            [
                {"table": "a", "primary_key": "id", "modifier": "m"},
                {"table": "b", "primary_key": "id", "modifier": "m", "deletes": "ignore"},
                {"table": "c", "primary_key": "id"},
            ]
        )
    )
    flags = [parsed.get(name).propagates_deletes for name in ("a", "b", "c")]
    assert flags == [True, False, False]  # a full refresh mirrors deletes by its swap


def test_delete_settings_have_their_defaults() -> None:
    table = parse_tables(json.dumps([{"table": "a", "primary_key": "id"}])).tables[0]
    assert (table.deletes, table.max_delete_fraction, table.delete_check_interval) == (
        "propagate",
        0.5,
        0,
    )


def test_an_unknown_deletes_value_is_one_problem_with_its_path() -> None:
    problems = _problems([{"table": "t", "primary_key": "id", "deletes": "mirror"}])
    assert problems == ["$[0].deletes: Input should be 'propagate' or 'ignore'"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_delete_fraction", 1.5),
        ("max_delete_fraction", -0.1),
        ("max_delete_fraction", "half"),
        ("delete_check_interval", -1),
        ("deletes", True),
    ],
)
def test_out_of_range_delete_settings_are_problems(field: str, value: object) -> None:
    problems = _problems([{"table": "t", "primary_key": "id", field: value}])
    assert len(problems) == 1
    assert problems[0].startswith(f"$[0].{field}: ")


def test_a_full_refresh_table_may_omit_its_key() -> None:
    parsed = parse_tables(json.dumps([{"table": "log"}]))
    assert parsed.problems == []
    assert parsed.get("log").primary_key == ()
    assert parsed.get("log").mode == "full_refresh"


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"table": "smile😀", "primary_key": "id"}, "$[0].table"),
        ({"table": "t", "primary_key": ["id", "😀"]}, "$[0].primary_key"),
        ({"table": "t", "primary_key": "id", "modifier": "at😀"}, "$[0].modifier"),
    ],
)
def test_a_name_with_4_byte_characters_is_a_problem(entry: dict, path: str) -> None:
    assert _problems([entry]) == [f"{path}: {FOUR_BYTES}"]


def test_a_name_with_3_byte_characters_is_fine() -> None:
    assert _problems([{"table": "表€", "primary_key": "ключ"}]) == []


def test_schema_changes_are_followed_unless_the_table_says_fail() -> None:
    parsed = parse_tables(
        json.dumps(
            [
                {"table": "a", "primary_key": "id"},
                {"table": "b", "primary_key": "id", "on_schema_change": "fail"},
            ]
        )
    )
    assert [t.on_schema_change for t in parsed.tables] == ["follow", "fail"]


def test_an_unknown_on_schema_change_is_one_problem_with_its_path() -> None:
    problems = _problems([{"table": "t", "primary_key": "id", "on_schema_change": "evolve"}])
    assert problems == ["$[0].on_schema_change: Input should be 'follow' or 'fail'"]
