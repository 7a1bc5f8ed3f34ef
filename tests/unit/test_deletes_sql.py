"""Statements and the safety valve of delete propagation (dbsync.compare.deletes),
without a server."""

from __future__ import annotations

import pytest

from dbsync.backends.mysql.rows import exists_sql
from dbsync.compare.deletes import check_fraction
from dbsync.config.errors import TooManyDeletes
from dbsync.config.tables import TableConfig


def _config(**fields: object) -> TableConfig:
    return TableConfig.model_validate(
        {"table": "t", "primary_key": "id", "modifier": "m", **fields}
    )


def test_exists_probes_one_flag_per_key_with_the_server_comparison() -> None:
    sql, params = exists_sql("`db`.`t`", ["a", "b"], [(1, "x"), (2, "y")], "%s")
    probe = "EXISTS(SELECT 1 FROM `db`.`t` WHERE `a` = %s AND `b` = %s)"
    assert (sql, params) == (f"SELECT {probe}, {probe}", [1, "x", 2, "y"])


def test_valve_refuses_more_than_the_fraction_and_names_both_numbers() -> None:
    with pytest.raises(TooManyDeletes) as refused:
        check_fraction(_config(), 600, 1000, "")
    assert "600 of the target's 1000 rows (60.0%)" in str(refused.value)
    assert "max_delete_fraction 0.5" in str(refused.value)


def test_valve_allows_up_to_the_fraction() -> None:
    check_fraction(_config(), 500, 1000, "")


def test_valve_at_one_allows_deleting_everything() -> None:
    check_fraction(_config(max_delete_fraction=1.0), 1000, 1000, "")


def test_valve_ignores_an_empty_target() -> None:
    check_fraction(_config(), 0, 0, "")
