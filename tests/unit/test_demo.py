"""The embedded demo runs the real sync path end to end on SQLite (no services)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dbsync.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str], Path]:
    directory = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    code = run_demo(str(directory), say=lines.append)
    return code, lines, directory


def test_demo_syncs_changes_and_verifies(demo: tuple[int, list[str], Path]) -> None:
    code, lines, _ = demo
    assert code == 0
    assert "all tables synced and verified" in lines[-1]


def test_demo_target_has_the_column_added_in_the_source(demo: tuple[int, list[str], Path]) -> None:
    with sqlite3.connect(demo[2] / "target.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(customers)")]
        tiers = {row[0] for row in conn.execute("SELECT tier FROM customers")}
    assert columns[-1] == "tier"
    assert tiers == {"basic"}


def test_demo_incremental_table_moves_only_changed_rows(demo: tuple[int, list[str], Path]) -> None:
    lines = demo[1]
    second = lines[lines.index("\nsecond sync:") + 1]
    order_lines = next(line for line in second.splitlines() if line.startswith("order_lines"))
    assert order_lines.split()[1:5] == ["incremental", "synced", "6", "6"]


def test_demo_incremental_table_propagates_a_delete(demo: tuple[int, list[str], Path]) -> None:
    lines = demo[1]
    second = lines[lines.index("\nsecond sync:") + 1]
    order_lines = next(line for line in second.splitlines() if line.startswith("order_lines"))
    with sqlite3.connect(demo[2] / "target.db") as conn:
        gone = conn.execute("SELECT COUNT(*) FROM order_lines WHERE order_id = 9 AND line_no = 2")
        assert gone.fetchone() == (0,)
    assert order_lines.split()[6] == "1"


def test_demo_full_refresh_propagates_deletes(demo: tuple[int, list[str], Path]) -> None:
    with sqlite3.connect(demo[2] / "target.db") as conn:
        codes = {row[0] for row in conn.execute("SELECT code FROM countries")}
    assert codes == {"DE", "JP", "BR", "NZ"}


def test_demo_rerun_in_the_same_directory_starts_fresh(tmp_path: Path) -> None:
    assert run_demo(str(tmp_path), say=lambda _line: None) == 0
    assert run_demo(str(tmp_path), say=lambda _line: None) == 0


def test_demo_keyless_table_keeps_its_duplicate_rows_and_no_key(
    demo: tuple[int, list[str], Path],
) -> None:
    rows = {}
    for name in ("source", "target"):
        with sqlite3.connect(demo[2] / f"{name}.db") as conn:
            keys = [row[1] for row in conn.execute("PRAGMA table_info(page_views)") if row[5]]
            content = sorted(conn.execute("SELECT path, day FROM page_views"))
        rows[name] = (keys, content)
    assert rows["target"] == rows["source"]
    assert rows["target"][0] == []
    assert len(set(rows["target"][1])) < len(rows["target"][1])  # duplicates really there
