"""Results: one record per measured run, the printed table, the goals and the JSON file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
NOTE_WIDTH = 100  # the full note is in the JSON
OK, INVALID, FAILED, UNAVAILABLE, TIMED_OUT = "ok", "INVALID", "failed", "n/a", "timed out"


@dataclass
class Run:
    """One measured run. ``rows`` is what the step had to move: the whole table for a full
    copy, the changed rows for an incremental one (rows/s = rows / wall)."""

    scenario: str
    label: str
    table_rows: int
    rows: int
    repeat: int
    status: str = OK
    wall_s: float | None = None
    task_s: float | None = None
    rss_mb: float | None = None
    extracted: int | None = None
    note: str = ""
    unverified_wall_s: float | None = None  # kept for diagnosis when the content differed

    @property
    def rows_per_s(self) -> float | None:
        if self.wall_s is None or not self.rows or self.wall_s <= 0:
            return None
        return self.rows / self.wall_s


@dataclass
class Goal:
    text: str
    measured: str
    met: bool | None  # None: not measured in this run


@dataclass
class Report:
    args: dict[str, Any]
    server_version: str
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    runs: list[Run] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)


def median(runs: Sequence[Run], scenario: str, attr: str = "wall_s") -> float | None:
    values = [
        getattr(r, attr) for r in runs
        if r.scenario == scenario and r.status == OK and getattr(r, attr) is not None
    ]
    return statistics.median(values) if values else None


def _scaled(factor: float, value: float | None) -> float | None:
    return None if value is None else factor * value


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_table(runs: Sequence[Run]) -> str:
    base = median(runs, "baseline")
    header = (
        f"{'what':<44} {'rows':>9} {'wall s':>8} {'task s':>7} {'rows/s':>10} "
        f"{'RSS MB':>7} {'x base':>7}  note"
    )
    lines = [header, "-" * len(header)]
    for r in runs:
        ratio = r.wall_s / base if base and r.wall_s is not None else None
        status = "" if r.status == OK else f"{r.status}: "
        extracted = f"extracted {r.extracted:,}; " if r.extracted is not None else ""
        note = f"{status}{extracted}{r.note}"
        note = note if len(note) <= NOTE_WIDTH else note[: NOTE_WIDTH - 3] + "..."
        lines.append(
            f"{r.label + f' #{r.repeat}':<44} {r.rows:>9,} {_fmt(r.wall_s):>8} "
            f"{_fmt(r.task_s):>7} {_fmt(r.rows_per_s, 0):>10} {_fmt(r.rss_mb, 0):>7} "
            f"{_fmt(ratio):>7}  {note}".rstrip()
        )
    return "\n".join(lines)


def _goal(text: str, value: float | None, limit: float | None, unit: str) -> Goal:
    if value is None or limit is None:
        return Goal(text, "not measured", None)
    return Goal(text, f"{value:.2f}{unit} (limit {limit:.2f}{unit})", value <= limit)


def evaluate_goals(runs: Sequence[Run], rows: int, small: int) -> list[Goal]:
    """Issue 5's goals, from the medians of the valid runs of this run."""
    base = median(runs, "baseline")
    full = median(runs, "dbsync_full")
    inc_large = median(runs, "dbsync_warm_large", "task_s")
    inc_small = median(runs, "dbsync_warm_small", "task_s")
    big, little = f"{rows:,}", f"{small:,}"
    return [
        _goal(f"full refresh of {big} rows <= 1.5x mysqldump|mysql wall", full,
              1.5 * base if base else None, " s"),
        _goal(f"incremental, 1,000 changed rows into {big}: task time in a running worker <= 1 s",
              inc_large, 1.0, " s"),
        _goal(f"incremental, 1,000 changed rows into {big}: whole process <= 5 s",
              median(runs, "dbsync_incr_large"), 5.0, " s"),
        _goal(f"incremental into {big} <= 1.5x the same into {little} (running-worker task time)",
              inc_large, 1.5 * inc_small if inc_small else None, " s"),
        _goal(f"incremental into {big} <= 1.5x the same into {little} (whole dbsync sync "
              "process, issue 17)", median(runs, "dbsync_incr_large"),
              _scaled(1.5, median(runs, "dbsync_incr_small")), " s"),
        _goal(f"full refresh peak RSS at {big} rows <= 500 MB",
              median(runs, "dbsync_full", "rss_mb"), 500.0, " MB"),
        _goal("sync with nothing to do: task time well under 1 s (< 1 s)",
              median(runs, "dbsync_noop_large", "task_s"), 1.0, " s"),
        _goal(f"chunked full refresh of {big} rows on the fleet <= 0.7x mysqldump|mysql wall",
              median(runs, "dbsync_fleet"), 0.7 * base if base else None, " s"),
        _goal(f"chunked full refresh of {big} rows, --parallel 1 <= 1.1x mysqldump|mysql wall",
              median(runs, "dbsync_full_p1"), 1.1 * base if base else None, " s"),
        *delete_goals(runs, big),
        *boundary_goals(runs, little),
        *many_goals(runs),
        _goal(f"rebuild after a type change of {big} rows <= 1.1x --full-refresh of it",
              _ratio(runs, "dbsync_rebuild", "dbsync_full")[0], 1.1, "x"),
    ]


def many_goals(runs: Sequence[Run]) -> list[Goal]:
    """Issue 20's goals: small syncs of many small tables cost milliseconds."""
    one_row = median(runs, "many_one_row", "task_s")
    nothing = median(runs, "many_nothing", "task_s")
    fleet = median(runs, "many_fleet")
    alone = median(runs, "many_one_row")
    goals = [
        _goal("many small tables, one row changed in each: whole dbsync sync per table <= 50 ms",
              one_row * 1000 if one_row else None, 50.0, " ms"),
        _goal("many small tables, nothing changed: whole dbsync sync per table <= 25 ms",
              nothing * 1000 if nothing else None, 25.0, " ms"),
    ]
    if one_row and nothing:
        goals.append(Goal("one row changed / nothing changed, per table",
                          f"x{one_row / nothing:.2f}", None))
    if fleet and alone:
        goals.append(Goal("the same round through 4 workers: round time (vs one process)",
                          f"{fleet:.1f} s vs {alone:.1f} s, x{fleet / alone:.2f}", None))
    return goals


def _ratio(runs: Sequence[Run], scenario: str, reference: str) -> tuple[float | None, ...]:
    value, base = median(runs, scenario), median(runs, reference)
    return (value / base if value and base else None), base


def delete_goals(runs: Sequence[Run], big: str) -> list[Goal]:
    """Issue 9's goals: 1,000 deletes + 1,000 updates propagated into the large table."""
    deletes = median(runs, "dbsync_del_large")
    vs_updates, _ = _ratio(runs, "dbsync_del_large", "dbsync_upd_large")
    vs_full, _ = _ratio(runs, "dbsync_del_large", "dbsync_delfull_large")
    what = f"1,000 deletes + 1,000 updates into {big}"
    return [
        _goal(f"{what}: whole dbsync sync process <= 3 s", deletes, 3.0, " s"),
        _goal(f"{what} <= 1.6x the updates-only incremental sync", vs_updates, 1.6, "x"),
        _goal(f"{what} <= 0.3x a full refresh of the table", vs_full, 0.3, "x"),
    ]


def boundary_goals(runs: Sequence[Run], little: str) -> list[Goal]:
    """Issue 17's goal: 100 changes among rows sharing one cursor value cost about what 100
    changes cost in an ordinary table of the same size (whole dbsync sync processes)."""
    goals = []
    for scenario, what in (
        ("dbsync_bnd_shared", "server-stamped"),
        ("dbsync_bnd_shared_app", "app-set, window = whole table"),
    ):
        ratio, _ = _ratio(runs, scenario, "dbsync_bnd_ordinary")
        goals.append(_goal(f"100 chg in {little} rows sharing one cursor value ({what}) <= 1.5x "
                           "an ordinary 100-row incremental", ratio, 1.5, "x"))
    return goals


def format_goals(goals: Sequence[Goal], runs: Sequence[Run]) -> str:
    lines = ["Goals (medians of valid runs):"]
    for g in goals:
        verdict = {True: "MET", False: "NOT MET", None: "n/a"}[g.met]
        lines.append(f"  [{verdict:^7}] {g.text}: {g.measured}")
    rss_large = median(runs, "dbsync_full", "rss_mb")
    rss_small = median(runs, "dbsync_full_small", "rss_mb")
    if rss_large and rss_small:
        lines.append(
            f"  (full refresh peak RSS growth, small -> large table: "
            f"{rss_small:.0f} -> {rss_large:.0f} MB, x{rss_large / rss_small:.2f})"
        )
    fleet, killed = median(runs, "dbsync_fleet"), median(runs, "dbsync_fleet_killed")
    if fleet and killed:
        lines.append(f"  (fleet copy with a helper killed halfway: {killed - fleet:+.1f} s)")
    return "\n".join(lines)


def write_json(report: Report, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}.json"
    data = asdict(report)
    for run, record in zip(report.runs, data["runs"], strict=True):
        record["rows_per_s"] = run.rows_per_s
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path
