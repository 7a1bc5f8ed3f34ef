"""The ``dbsync`` command as operators run it: config errors, partial failures, the summary."""

from __future__ import annotations

import json
import re

import pytest

from tests import helpers

GOOD = {"table": "good", "primary_key": ["id"]}


def _source_tables(scratch) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE good (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL, n INT NOT NULL)",
        "INSERT INTO good SELECT seq, 'g', seq FROM seq_1_to_30",
        "CREATE TABLE also_good (id INT PRIMARY KEY, m DATETIME NOT NULL)",
        "INSERT INTO also_good SELECT seq, '2024-01-01' + INTERVAL seq DAY FROM seq_1_to_12",
    )


def _run(scratch, *args: str, env: dict[str, str] | None = None):
    return helpers.run_dbsync(
        scratch.env() if env is None else env, *args, cwd=scratch.tables_path.parent
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("config error: ")]


BROKEN_TABLES = {
    "missing-primary-key": (
        [GOOD, {"table": "good2", "modifier": "m"}],
        r"\$\[1\]\.primary_key: is required for an incremental table",
    ),
    "empty-key-list": (
        [GOOD, {"table": "good2", "primary_key": []}],
        r"\$\[1\]\.primary_key: .*empty",
    ),
    "unknown-key": (
        [GOOD, {"table": "good2", "primary_key": "id", "colour": "red"}],
        r"\$\[1\]\.colour: unknown key",
    ),
    "invalid-json": ('[{"table": "good", "primary_key": "id"},]', r"\$: invalid JSON: .*line 1"),
    "table-absent-from-source": (
        [GOOD, {"table": "nope", "primary_key": "id"}],
        r"\$\[1\]\.table: table 'nope' not found in source database",
    ),
    "key-column-absent": (
        [GOOD, {"table": "also_good", "primary_key": "nope"}],
        r"\$\[1\]\.primary_key: column 'nope' not found in source table 'also_good'",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_TABLES))
def test_check_config_prints_one_line_per_problem_with_its_path(scratch, case: str) -> None:
    _source_tables(scratch)
    content, expected = BROKEN_TABLES[case]
    scratch.tables_path.write_text(
        content if isinstance(content, str) else json.dumps(content), encoding="utf-8"
    )

    done = _run(scratch, "check-config")

    assert done.returncode == 2
    lines = _error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_check_config_accepts_a_good_configuration(scratch) -> None:
    _source_tables(scratch)
    scratch.write_tables([GOOD, {"table": "also_good", "primary_key": "id", "modifier": "m"}])

    done = _run(scratch, "check-config")

    assert (done.returncode, done.stderr) == (0, "")
    assert "configuration OK: 2 table(s)" in done.stdout


def test_check_config_reports_problems_of_every_table(scratch) -> None:
    _source_tables(scratch)
    scratch.write_tables(
        [
            {"table": "good", "primary_key": "missing_col"},
            {"table": "also_good", "primary_key": "m"},  # not a primary or unique key
        ]
    )

    done = _run(scratch, "check-config")

    lines = _error_lines(done.stderr)
    assert any(line.startswith("config error: $[0].primary_key") for line in lines), lines
    assert any(line.startswith("config error: $[1].primary_key") for line in lines), lines


def test_sync_syncs_the_good_tables_when_one_is_bad(scratch) -> None:
    _source_tables(scratch)
    scratch.write_tables(
        [
            GOOD,
            {"table": "nope", "primary_key": "id"},  # absent from the source
            {"table": "broken", "modifier": "m"},  # invalid entry
            {"table": "also_good", "primary_key": "id", "modifier": "m"},
        ]
    )

    done = _run(scratch, "sync")

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert helpers.count(scratch.target, "good") == 30
    assert helpers.count(scratch.target, "also_good") == 12
    assert "nope" not in helpers.table_names(scratch.target)
    assert re.search(r"^nope\s+\S+\s+failed\b.*does not exist", done.stdout, re.M), done.stdout
    verified = _run(scratch, "verify", "good", "also_good")
    assert verified.returncode == 0, verified.stdout


def test_sync_summary_lists_mode_rows_seconds_and_status_per_table(scratch) -> None:
    _source_tables(scratch)
    scratch.write_tables([GOOD, {"table": "also_good", "primary_key": "id", "modifier": "m"}])

    done = _run(scratch, "sync")

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    header = lines[0].split()
    assert header[:6] == ["table", "mode", "status", "extracted", "loaded", "seconds"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"good", "also_good"}
    assert rows["good"][1:5] == ["full_refresh", "synced", "30", "30"]
    # an incremental table's first sync copies it whole, and says so
    assert rows["also_good"][1:5] == ["full_refresh", "synced", "12", "12"]
    for row in rows.values():
        assert float(row[5]) > 0


def test_sync_summary_lists_rows_deleted_per_table(scratch) -> None:
    _source_tables(scratch)
    scratch.write_tables([{"table": "also_good", "primary_key": "id", "modifier": "m"}])
    _run(scratch, "sync")
    helpers.execute(scratch.source, "DELETE FROM also_good WHERE id IN (1, 2)")

    done = _run(scratch, "sync")

    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[6] == "deleted"
    assert lines[2].split()[6] == "2"


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"SOURCE_DB_PORT": "notanumber"}, "SOURCE_DB_PORT"),
        ({"TARGET_DB_NAME": None}, "TARGET_DB_NAME"),
    ],
    ids=["port-not-a-number", "missing-target-name"],
)
@pytest.mark.parametrize("command", ["check-config", "sync"])
def test_bad_settings_give_one_line_each_and_exit_2(
    scratch, change: dict, variable: str, command: str
) -> None:
    scratch.write_tables([GOOD])
    env = {k: v for k, v in {**scratch.env(), **change}.items() if v is not None}

    done = _run(scratch, command, env=env)

    assert done.returncode == 2
    lines = _error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert variable in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_check_config_rejects_a_nullable_unique_key(scratch) -> None:
    helpers.execute(
        scratch.source,
        "CREATE TABLE u (id INT PRIMARY KEY, code VARCHAR(10) NULL UNIQUE)",
        "INSERT INTO u VALUES (1, 'a'), (2, NULL)",
    )
    scratch.write_tables([{"table": "u", "primary_key": "code"}])

    done = _run(scratch, "check-config")

    assert done.returncode == 2
    (line,) = _error_lines(done.stderr)
    assert line.startswith("config error: $[0].primary_key: ")
