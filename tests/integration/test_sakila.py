"""Sakila end to end through the CLI: a real schema (ENUM, SET, YEAR, BLOB, GEOMETRY, composite
keys, triggers, foreign keys) syncs losslessly, then follows updates, ties and a new column."""

from __future__ import annotations

import re

import pytest

from tests import helpers

pytestmark = pytest.mark.skipif(
    not (helpers.SAKILA / "sakila-schema.sql").exists(),
    reason=f"Sakila data set not found at {helpers.SAKILA} (shared/datasets/sakila)",
)

# the tables changed after the first sync (the second sync is limited to them, for time)
CHANGED = ("film", "staff", "actor", "film_actor", "customer")
COMPOSITE_KEYS = {
    "film_actor": ["actor_id", "film_id"],
    "film_category": ["film_id", "category_id"],
}


def _tables_json(source: str) -> list[dict]:
    entries = []
    for table in helpers.sakila_base_tables(source):
        key = helpers.primary_key(source, table)
        entry: dict = {"table": table, "primary_key": key}
        if table != "film_text":
            entry["modifier"] = "last_update"
        entries.append(entry)
    return entries


def _assert_same_definitions(scratch, tables: list[str]) -> None:
    for table in tables:
        assert helpers.column_types(scratch.target, table) == helpers.column_types(
            scratch.source, table
        ), table
        assert helpers.primary_key(scratch.target, table) == helpers.primary_key(
            scratch.source, table
        ), table


def test_sakila_syncs_losslessly_and_follows_changes(scratch) -> None:
    helpers.load_sakila(scratch.source)
    entries = _tables_json(scratch.source)
    tables = [e["table"] for e in entries]
    assert len(tables) == 16
    assert {
        t: e["primary_key"] for e in entries if len(e["primary_key"]) > 1 for t in [e["table"]]
    } == COMPOSITE_KEYS
    scratch.write_tables(entries)
    env, cwd = scratch.env(), scratch.tables_path.parent

    first = helpers.run_dbsync(env, "sync", cwd=cwd)

    assert first.returncode == 0, first.stdout + first.stderr
    for table in tables:
        assert any(
            line.split()[:1] == [table] and " synced " in line for line in first.stdout.splitlines()
        ), table
    verified = helpers.run_dbsync(env, "verify", cwd=cwd)
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.count(": OK ") == 16
    _assert_same_definitions(scratch, tables)
    assert helpers.exact_rows(scratch.target, "address") == helpers.exact_rows(
        scratch.source, "address"
    )  # GEOMETRY location, compared as bytes

    helpers.execute(
        scratch.source,
        "UPDATE film SET rental_rate = rental_rate + 1, special_features = 'Trailers' "
        "WHERE film_id IN (1, 2, 3)",
        "UPDATE staff SET picture = 0x00FF5C0A09 WHERE staff_id = 1",
        "INSERT INTO actor (first_name, last_name, last_update) "
        "SELECT 'TIE', 'BOUNDARY', MAX(last_update) FROM actor",
        "INSERT INTO film_actor (actor_id, film_id, last_update) "
        "SELECT 1, 999, MAX(last_update) FROM film_actor",
        "ALTER TABLE customer ADD COLUMN loyalty_tier VARCHAR(10) NOT NULL DEFAULT 'bronze'",
        "UPDATE customer SET loyalty_tier = 'gold' WHERE customer_id <= 3",
    )

    second = helpers.run_dbsync(env, "sync", *CHANGED, cwd=cwd)

    assert second.returncode == 0, second.stdout + second.stderr
    assert re.search(r"^customer\s+full_refresh\s+synced", second.stdout, re.M)  # backfilled
    verified = helpers.run_dbsync(env, "verify", *CHANGED, cwd=cwd)
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.count(": OK ") == len(CHANGED)
    _assert_same_definitions(scratch, tables)
    assert helpers.query(
        scratch.target, "SELECT COUNT(*) FROM actor WHERE last_name = 'BOUNDARY'"
    ) == [(1,)]
    assert helpers.query(
        scratch.target, "SELECT loyalty_tier, COUNT(*) FROM customer GROUP BY 1 ORDER BY 1"
    ) == [
        ("bronze", 596),
        ("gold", 3),
    ]
    for table in CHANGED:
        assert helpers.exact_rows(scratch.target, table) == helpers.exact_rows(
            scratch.source, table
        ), table


def test_sakila_copied_in_chunks_arrives_identical(scratch) -> None:
    """Every Sakila table over 500 rows is copied in key ranges (two threads): values of
    every type, composite keys and keyless-listed tables arrive exactly as one-piece
    copies bring them."""
    helpers.load_sakila(scratch.source)
    entries = _tables_json(scratch.source)
    tables = [e["table"] for e in entries]
    scratch.write_tables(entries)
    env, cwd = {**scratch.env(), "CHUNK_ROWS": "500"}, scratch.tables_path.parent

    done = helpers.run_dbsync(env, "sync", "--full-refresh", "--parallel", "2", cwd=cwd)

    assert done.returncode == 0, done.stdout + done.stderr
    chunked = helpers.query(
        scratch.target,
        "SELECT table_name, COUNT(*) FROM _dbsync_copy_chunks GROUP BY 1 ORDER BY 1",
    )
    assert {t for t, _n in chunked} == {
        "address", "city", "customer", "film", "film_actor", "film_category", "film_text",
        "inventory", "payment", "rental",
    }
    assert dict(chunked)["payment"] >= 30
    _assert_same_definitions(scratch, tables)
    for table in tables:
        assert helpers.exact_rows(scratch.target, table) == helpers.exact_rows(
            scratch.source, table
        ), table
