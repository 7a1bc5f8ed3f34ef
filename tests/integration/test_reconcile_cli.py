"""``dbsync sync --reconcile``, ``dbsync verify`` and ``dbsync status`` around a repair, as a
user runs them (the console script, real MariaDB)."""

from __future__ import annotations

import json

from tests import helpers


def _run(scratch, *args: str):
    return helpers.run_dbsync(scratch.env(), *args, cwd=scratch.tables_path.parent)


def _table(scratch, modifier: bool = True) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, a INT NULL, b VARCHAR(10) NULL, "
        "m DATETIME NULL)",
        "INSERT INTO t SELECT seq, seq, CONCAT('b', seq), '2024-01-01' + INTERVAL seq SECOND "
        "FROM seq_1_to_50",
    )
    entry = {"table": "t", "primary_key": "id"}
    scratch.write_tables([{**entry, "modifier": "m"} if modifier else entry])


def test_verify_after_a_column_moved_in_the_source_finds_no_difference(scratch) -> None:
    _table(scratch)
    _run(scratch, "sync")
    helpers.execute(scratch.source, "ALTER TABLE t MODIFY b VARCHAR(10) NULL FIRST")

    verified = _run(scratch, "verify")

    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_verify_names_the_reconcile_as_the_fix_and_the_reconcile_fixes_it(scratch) -> None:
    _table(scratch)
    _run(scratch, "sync")
    helpers.execute(scratch.target, "UPDATE t SET a = -1 WHERE id = 3")
    found = _run(scratch, "verify")

    repaired = _run(scratch, "sync", "--reconcile", "t")
    again = _run(scratch, "verify")

    assert "dbsync sync --reconcile t" in found.stdout, found.stdout
    assert (repaired.returncode, again.returncode) == (0, 0), repaired.stdout + repaired.stderr


def test_the_sync_summary_and_status_show_the_rows_repaired(scratch) -> None:
    _table(scratch, modifier=False)
    _run(scratch, "sync")
    helpers.execute(scratch.target, "DELETE FROM t WHERE id <= 3")

    done = _run(scratch, "sync")
    status = json.loads(_run(scratch, "status", "--json").stdout)

    cells = done.stdout.splitlines()[2].split()
    assert cells[1:5] + cells[6:8] == ["diff", "synced", "3", "3", "0", "3"]
    assert (status[0]["rows_repaired"], status[0]["repaired"]["inserted"]) == (3, 3)
