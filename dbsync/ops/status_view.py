"""``dbsync status``: the sync status of every table as a terminal table, or as JSON records
(``dbsync status --json``) with the same fields.

Example (columns abridged)::

    TABLE        STATUS  MODE          LAST SYNC (UTC)      AGE    ROWS  FAILS  LAST ERROR
    countries    synced  full_refresh  2026-11-27 09:55:48  4m12s   250      0  -
    order_items  never   -             -                    -         -      -  -
    orders       failed  incremental   2026-11-27 09:50:47  9m13s     0      3  MySQL error 2003...

``LAST SYNC`` and ``AGE`` refer to the last *successful* sync; ``STATUS`` is the outcome of
the last attempt; ``ROWS`` are the rows loaded by the last attempt; ``FAILS`` counts failed
attempts since the last success. A table listed in tables.json but never synced shows
``never``; a synced table whose last success is older than the staleness rule allows
(:class:`dbsync.ops.health.Staleness`, the rule of the health endpoint) shows ``stale``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from dbsync.model import Progress, RunningCopy, TableStatus
from dbsync.ops.health import Staleness, iso_utc
from dbsync.ops.logs import redact

COLUMNS = (
    "TABLE",
    "STATUS",
    "MODE",
    "LAST SYNC (UTC)",
    "AGE",
    "ROWS",
    "DELETED",
    "REPAIRED",
    "DURATION",
    "FAILS",
    "CURSOR",
    "LAST ERROR",
)
RIGHT_ALIGNED = frozenset({"AGE", "ROWS", "DELETED", "REPAIRED", "DURATION", "FAILS"})
DEFAULT_ERROR_WIDTH = 60


def format_age(seconds: float | None) -> str:
    """``45s``, ``4m12s``, ``2h03m``, ``3d04h``; ``-`` for unknown."""
    if seconds is None:
        return "-"
    total = int(max(seconds, 0))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return format_age(seconds)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _one_line(text: str | None, width: int) -> str:
    if not text:
        return "-"
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= width else flat[: max(width - 3, 1)] + "..."


def cursor_guard_label(row: TableStatus) -> str:
    """How the table's incremental reads are guarded: ``safe`` (a safe point), ``fallback``
    (a lag), ``-`` (no cursor), and how many rows are ahead of the source's clock."""
    label = "fallback" if row.cursor_fallback else "safe" if row.safe_point else "-"
    if row.future_cursor_rows:
        label += f", {row.future_cursor_rows} ahead"
    return label


def _status(row: TableStatus, now: datetime, staleness: Staleness | None) -> str:
    if row.status == "synced" and staleness is not None:
        return "stale" if staleness.is_stale(row.table, row.age_seconds(now)) else "synced"
    return row.status


def status_records(
    rows: Sequence[TableStatus],
    now: datetime | None = None,
    *,
    configured: Iterable[str] = (),
    staleness: Staleness | None = None,
    copies: Sequence[RunningCopy] = (),
) -> list[dict[str, Any]]:
    """One JSON-ready dict per table (for ``dbsync status --json``), same rules as the table;
    ``copy`` is the table's chunked copy in progress (see :func:`copy_records`), or None."""
    now = _aware(now)
    records: list[dict[str, Any]] = []
    seen = set()
    for row in rows:
        seen.add(row.table)
        age = row.age_seconds(now)
        records.append(
            {
                "table": row.table,
                "status": _status(row, now, staleness),
                "mode": row.mode,
                "last_success_at": iso_utc(row.last_success_at),
                "last_finished_at": iso_utc(row.last_finished_at),
                "age_seconds": round(age, 1) if age is not None else None,
                "rows_extracted": row.rows_extracted,
                "rows_loaded": row.rows_loaded,
                "rows_deleted": row.rows_deleted,
                "rows_repaired": row.rows_repaired,
                "repaired": {
                    "inserted": row.repaired_inserted,
                    "updated": row.repaired_updated,
                    "deleted": row.repaired_deleted,
                },
                "last_reconcile_at": iso_utc(row.last_reconcile_at),
                "duration_s": row.duration_s,
                "consecutive_failures": row.consecutive_failures,
                "last_error": redact(row.last_error) if row.last_error else None,
                "worker": row.worker,
                "safe_point": row.safe_point,
                "cursor_fallback": row.cursor_fallback,
                "future_cursor_rows": row.future_cursor_rows,
            }
        )
    for name in configured:
        if name not in seen:
            records.append(
                {
                    "table": name,
                    "status": "never",
                    "mode": None,
                    "last_success_at": None,
                    "last_finished_at": None,
                    "age_seconds": None,
                    "rows_extracted": None,
                    "rows_loaded": None,
                    "rows_deleted": None,
                    "rows_repaired": None,
                    "repaired": None,
                    "last_reconcile_at": None,
                    "duration_s": None,
                    "consecutive_failures": None,
                    "last_error": None,
                    "worker": None,
                    "safe_point": None,
                    "cursor_fallback": None,
                    "future_cursor_rows": None,
                }
            )
    running = copy_records(copies)
    for record in records:
        record["copy"] = running.get(record["table"])
    return sorted(records, key=lambda r: r["table"])


def _aware(now: datetime | None) -> datetime:
    """``now`` as an aware UTC time (naive values are taken as UTC, like the status table)."""
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def render_status(
    rows: Sequence[TableStatus],
    now: datetime | None = None,
    *,
    configured: Iterable[str] = (),
    staleness: Staleness | None = None,
    error_width: int = DEFAULT_ERROR_WIDTH,
) -> str:
    """The status of every table as an aligned plain-text table (no trailing newline).

    ``configured``: table names from tables.json, so that never-synced tables show up.
    ``staleness``: show ``stale`` for synced tables the rule finds stale.
    """
    now = _aware(now)
    by_name = {row.table: row for row in rows}
    names = sorted(set(by_name) | set(configured))
    if not names:
        return "no table has been synced yet (and none is configured)"
    body: list[list[str]] = []
    for name in names:
        row = by_name.get(name)
        if row is None:
            body.append([name, "never", *["-"] * (len(COLUMNS) - 2)])
            continue
        body.append(
            [
                row.table,
                _status(row, now, staleness),
                row.mode,
                _when(row.last_success_at),
                format_age(row.age_seconds(now)),
                f"{row.rows_loaded:,}",
                f"{row.rows_deleted:,}",
                f"{row.rows_repaired:,}",
                format_duration(row.duration_s),
                str(row.consecutive_failures),
                cursor_guard_label(row),
                _one_line(row.last_error, error_width),
            ]
        )
    widths = [max(len(COLUMNS[i]), *(len(r[i]) for r in body)) for i in range(len(COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if COLUMNS[i] in RIGHT_ALIGNED else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(COLUMNS), *(line(r) for r in body)])


def render_copies(copies: Sequence[RunningCopy]) -> str:
    """One line per chunked copy in progress: chunks, rows, elapsed time and an estimate."""
    lines = []
    for table, _started, elapsed_s, progress in copies:
        left_s = seconds_left(elapsed_s, progress)
        left = "-" if left_s is None else format_duration(left_s)
        lines.append(
            f"copying {table}: {progress.done}/{progress.shown_total} chunks done "
            f"({progress.running} running), {progress.rows:,} rows, "
            f"elapsed {format_duration(elapsed_s)}, about {left} left"
            + (f", workers: {', '.join(progress.workers)}" if progress.workers else "")
        )
    return "\n".join(lines)


def seconds_left(elapsed_s: float, progress: Progress) -> float | None:
    """A copy's time left at the pace of its chunks so far (None before the first is done)."""
    total = progress.expected_total
    if not 0 < progress.done < total:
        return None
    return elapsed_s * (total - progress.done) / progress.done


def copy_records(copies: Sequence[RunningCopy]) -> dict[str, dict[str, Any]]:
    """The chunked copies in progress, by table, for ``dbsync status --json``."""
    records: dict[str, dict[str, Any]] = {}
    for table, started, elapsed_s, progress in copies:
        left_s = seconds_left(elapsed_s, progress)
        records[table] = {
            "started_at": started.isoformat(),
            "chunks_done": progress.done,
            "chunks_running": progress.running,
            "chunks_total": progress.expected_total,
            "chunks_total_exact": progress.planned,
            "rows": progress.rows,
            "elapsed_s": round(elapsed_s, 3),
            "seconds_left": None if left_s is None else round(left_s, 1),
            "workers": list(progress.workers),
        }
    return records
