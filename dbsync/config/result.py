"""The summary of one table sync, as returned by the CLI and the Celery task."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["synced", "skipped", "failed"]
CREATED = "created"  # schema_changes of a run that created the target table


def utc_now() -> datetime:
    return datetime.now(UTC)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class SyncResult:
    table: str
    mode: str
    status: Status = "synced"
    rows_extracted: int = 0
    rows_loaded: int = 0
    rows_deleted: int = 0  # target rows removed because the source deleted them
    duration_s: float = 0.0
    started_at: datetime = field(default_factory=utc_now)
    finished_at: datetime | None = None
    worker: str = field(default_factory=worker_id)
    load_id: str | None = None
    error: str | None = None
    schema_changes: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step of the sync
    chunks: int = 0  # key-range chunks of a chunked full copy (0: copied in one piece)
    chunks_reused: int = 0  # chunks an earlier, interrupted run had already loaded
    workers: list[str] = field(default_factory=list)  # processes that loaded those chunks
    deletes_checked_at: datetime | None = None  # when this run compared keys for deletes
    rows_repaired: int = 0  # rows a row-content comparison found different and wrote
    repaired_inserted: int = 0
    repaired_updated: int = 0
    repaired_deleted: int = 0
    reconciled_at: datetime | None = None  # when this run compared row content
    # the cursor's safe point (dbsync.cursor_guard): every row this run's reads could not see
    # has a cursor value at or after it; the next run reads from it (None: none known)
    safe_point: str | None = None
    safe_point_cursor: str | None = None  # the cursor it belongs to ("name type")
    cursor_fallback: bool = False  # no safe point: reads start at MAX(cursor) minus a lag
    future_cursor_rows: int = 0  # rows whose cursor is ahead of the source's clock
    # while this process held the table's lock (None: it never did, e.g. skipped): the
    # interval no other sync of the table can overlap, narrower than started/finished
    held_from: datetime | None = None
    held_until: datetime | None = None
    # what the target's definition was left as (dbsync.migration.fingerprint): kept in the
    # status table to tell a target changed by hand; not part of the summary
    target_definition: str | None = field(default=None, repr=False)

    def finish(self, status: Status, error: str | None = None) -> SyncResult:
        self.status = status
        self.error = error
        self.finished_at = utc_now()
        self.duration_s = round((self.finished_at - self.started_at).total_seconds(), 3)
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (ISO 8601 UTC times)."""
        data = asdict(self)
        del data["target_definition"]
        data["started_at"] = self.started_at.isoformat()
        for moment in _OPTIONAL_MOMENTS:
            value = getattr(self, moment)
            data[moment] = value.isoformat() if value else None
        return data


# the summary's times that may be unset, written as ISO 8601 or None
_OPTIONAL_MOMENTS = (
    "finished_at", "deletes_checked_at", "reconciled_at", "held_from", "held_until"
)

_ATTRIBUTE = "dbsync_result"


def attach_result(exc: BaseException, result: SyncResult) -> BaseException:
    """Carry the failed sync's summary (rows so far, load id, timings) on its exception."""
    setattr(exc, _ATTRIBUTE, result)
    return exc


def result_of(exc: BaseException) -> SyncResult | None:
    """The summary attached by ``attach_result``, if any."""
    found = getattr(exc, _ATTRIBUTE, None)
    return found if isinstance(found, SyncResult) else None


def format_results(results: Sequence[SyncResult]) -> str:
    """The per-table summary ``dbsync sync`` and ``dbsync demo`` print."""
    header = (
        f"{'table':<24} {'mode':<13} {'status':<8} {'extracted':>10} {'loaded':>10} "
        f"{'seconds':>8} {'deleted':>8} {'repaired':>8}  error"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.table:<24} {r.mode:<13} {r.status:<8} {r.rows_extracted:>10} "
            f"{r.rows_loaded:>10} {r.duration_s:>8.2f} {r.rows_deleted:>8} "
            f"{r.rows_repaired:>8}  {r.error or ''}"
        )
    changes = [
        f"  {r.table}: {change}"
        for r in results
        for change in r.schema_changes
        if change != CREATED  # the first sync's full copy says enough
    ]
    if changes:
        lines += ["", "schema changes:", *changes]
    return "\n".join(lines)
