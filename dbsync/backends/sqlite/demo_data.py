"""The demo's source database (SQLite): its tables, its rows, and the changes made between
two syncs (``dbsync demo``, :mod:`dbsync.demo`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

_SCHEMA = """
CREATE TABLE customers (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, email TEXT,
  balance NUMERIC, updated_at TEXT NOT NULL);
CREATE TABLE order_lines (order_id INTEGER NOT NULL, line_no INTEGER NOT NULL, sku TEXT NOT NULL,
  qty INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (order_id, line_no));
CREATE TABLE countries (code TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE page_views (path TEXT NOT NULL, day TEXT NOT NULL);
"""

T1 = "2026-01-02 00:00:00.000000"


def _stamp(second: int) -> str:
    """Distinct cursor values on the first day, one second apart."""
    return f"2026-01-01 {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}.000000"


def seed_source(conn: sqlite3.Connection) -> None:
    """The demo's source tables and their first rows."""
    conn.executescript(_SCHEMA)
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
        [
            (i, f"customer {i} ✓", f"c{i}@example.com", f"{i * 10}.50", _stamp(i))
            for i in range(1, 501)
        ],
    )
    conn.executemany(
        "INSERT INTO order_lines VALUES (?, ?, ?, ?, ?)",
        [(o, n, f"SKU-{o}-{n}", n, _stamp(o * 3 + n)) for o in range(1, 201) for n in range(1, 4)],
    )
    conn.executemany(
        "INSERT INTO countries VALUES (?, ?)",
        [("DE", "Germany"), ("FR", "France"), ("JP", "Japan"), ("BR", "Brazil")],
    )
    conn.executemany(
        "INSERT INTO page_views VALUES (?, ?)",
        [(f"/p/{i % 7}", f"2026-01-0{1 + i % 3}") for i in range(60)],  # rows repeat
    )


def change_source(conn: sqlite3.Connection) -> list[str]:
    """Changes a real source sees between two syncs; returns what was done."""
    # a row committed after the first sync but carrying the highest cursor value it saw
    boundary = conn.execute("SELECT MAX(updated_at) FROM order_lines").fetchone()
    conn.execute("INSERT INTO order_lines VALUES (200, 4, 'SKU-200-4', 1, ?)", boundary)
    conn.execute(
        "UPDATE customers SET email = 'new@example.com', updated_at = ? WHERE id <= 5", (T1,)
    )
    conn.execute("INSERT INTO customers VALUES (501, 'newcomer 😀', NULL, '0.01', ?)", (T1,))
    conn.execute("ALTER TABLE customers ADD COLUMN tier TEXT DEFAULT 'basic'")
    conn.execute("UPDATE order_lines SET qty = qty + 100, updated_at = ? WHERE order_id = 7", (T1,))
    conn.execute("INSERT INTO order_lines VALUES (7, 4, 'SKU-7-4', 1, ?)", (T1,))
    conn.execute("DELETE FROM order_lines WHERE order_id = 9 AND line_no = 2")
    conn.execute("DELETE FROM countries WHERE code = 'FR'")
    conn.execute("INSERT INTO countries VALUES ('NZ', 'New Zealand')")
    conn.execute("INSERT INTO page_views VALUES ('/p/1', '2026-01-02'), ('/new', '2026-01-04')")
    conn.execute("DELETE FROM page_views WHERE path = '/p/6'")
    return [
        "customers: 5 rows updated, 1 inserted, column 'tier' added (rebuilt to backfill it)",
        "order_lines: 3 rows updated, 2 inserted, one carrying an already-synced cursor value; "
        "1 deleted (propagated by key comparison)",
        "countries: 1 row deleted, 1 inserted (full refresh)",
        "page_views (no key): 1 duplicate and 1 new row inserted, 8 rows deleted",
    ]


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection to a demo database file."""
    return sqlite3.connect(path)
