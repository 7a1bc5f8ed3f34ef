"""``dbsync demo``: the whole sync path on embedded SQLite databases, no server needed.

It builds a source with four kinds of table (incremental, composite key, full refresh, and
a full-refresh table without any key that holds duplicate rows),
syncs them into a target through the same ``run_sync`` the CLI and the Celery task use,
changes the source (updates, inserts at the boundary timestamp, a new column, deletes in an
incremental and a full-refresh table),
syncs again and verifies every table.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from dbsync.compare.verify import VerifyReport, verify_table
from dbsync.config.result import format_results
from dbsync.config.settings import load_settings
from dbsync.config.tables import load_tables
from dbsync.sync.run import run_sync
from dbsync.sync.runtime import Runtime

TABLES = [
    {"table": "customers", "primary_key": "id", "modifier": "updated_at"},
    {"table": "order_lines", "primary_key": ["order_id", "line_no"], "modifier": "updated_at"},
    {"table": "countries", "primary_key": "code"},
    {"table": "page_views"},  # no key at all: copied whole by full refresh
]

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


def _seed(conn: sqlite3.Connection) -> None:
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


def _change(conn: sqlite3.Connection) -> list[str]:
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


def _verify_lines(reports: list[VerifyReport]) -> list[str]:
    return [
        f"{r.table:<12} {'verified' if r.ok else 'MISMATCH'}: source {r.source_rows} rows, "
        f"target {r.target_rows} rows, {r.chunks} chunk(s)" + (f" ({r.error})" if r.error else "")
        for r in reports
    ]


def run_demo(directory: str | None = None, say: Callable[[str], None] = print) -> int:
    """Run the demo in ``directory`` (a fresh temporary one by default); 0 when all verified."""
    base = Path(directory or tempfile.mkdtemp(prefix="dbsync-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    source, target = base / "source.db", base / "target.db"
    for path in base.glob("*.db*"):
        path.unlink()
    tables_path = base / "tables.json"
    tables_path.write_text(json.dumps(TABLES, indent=2), encoding="utf-8")
    with sqlite3.connect(source) as conn:
        _seed(conn)
    settings = load_settings(
        source_db_url=f"sqlite:///{source}",
        target_db_url=f"sqlite:///{target}",
        tables_config=str(tables_path),
        work_dir=str(base),
    )
    runtime = Runtime.create(settings, load_tables(tables_path))
    try:
        say(f"dbsync demo in {base} (embedded SQLite source and target)\n")
        say("first sync:")
        say(format_results([run_sync(runtime, t["table"]) for t in TABLES]))
        with sqlite3.connect(source) as conn:
            changes = _change(conn)
        say("\nsource changed:\n  " + "\n  ".join(changes))
        say("\nsecond sync:")
        second = [run_sync(runtime, t["table"]) for t in TABLES]
        say(format_results(second))
        reports = [verify_table(runtime, t["table"]) for t in TABLES]
        say("\nverify:\n  " + "\n  ".join(_verify_lines(reports)))
    finally:
        runtime.dispose()
    ok = all(r.status == "synced" for r in second) and all(r.ok for r in reports)
    say("\nresult: " + ("all tables synced and verified" if ok else "FAILED"))
    return 0 if ok else 1
