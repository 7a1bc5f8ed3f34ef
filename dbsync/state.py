"""Sync status kept in the target database (table ``_dbsync_status``): no Redis needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.result import SyncResult
from dbsync.schema import qualified

STATUS_TABLE = "_dbsync_status"

_DDL = """CREATE TABLE IF NOT EXISTS {table} (
  table_name VARCHAR(64) NOT NULL PRIMARY KEY,
  status VARCHAR(16) NOT NULL,
  mode VARCHAR(16) NOT NULL,
  last_started_at DATETIME(6) NULL,
  last_finished_at DATETIME(6) NULL,
  last_success_at DATETIME(6) NULL,
  rows_extracted BIGINT NOT NULL DEFAULT 0,
  rows_loaded BIGINT NOT NULL DEFAULT 0,
  duration_s DOUBLE NOT NULL DEFAULT 0,
  last_error TEXT NULL,
  load_id VARCHAR(64) NULL,
  worker VARCHAR(255) NULL,
  consecutive_failures INT NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

_UPSERT = """INSERT INTO {table} (table_name, status, mode, last_started_at, last_finished_at,
  last_success_at, rows_extracted, rows_loaded, duration_s, last_error, load_id, worker,
  consecutive_failures)
VALUES (:table_name, :status, :mode, :started, :finished, :success, :extracted, :loaded,
  :duration, :error, :load_id, :worker, :failures)
ON DUPLICATE KEY UPDATE status = VALUES(status), mode = VALUES(mode),
  last_started_at = VALUES(last_started_at), last_finished_at = VALUES(last_finished_at),
  last_success_at = COALESCE(VALUES(last_success_at), last_success_at),
  rows_extracted = VALUES(rows_extracted), rows_loaded = VALUES(rows_loaded),
  duration_s = VALUES(duration_s), last_error = VALUES(last_error),
  load_id = COALESCE(VALUES(load_id), load_id), worker = VALUES(worker),
  consecutive_failures = IF(VALUES(status) = 'failed', consecutive_failures + 1, 0)"""


@dataclass(frozen=True)
class TableStatus:
    table: str
    status: str
    mode: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_success_at: datetime | None
    rows_extracted: int
    rows_loaded: int
    duration_s: float
    last_error: str | None
    load_id: str | None
    worker: str | None
    consecutive_failures: int

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the last successful sync (None if there never was one)."""
        if self.last_success_at is None:
            return None
        now = now or datetime.now(UTC)
        return (now - self.last_success_at.replace(tzinfo=UTC)).total_seconds()


def _naive(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


def ensure_status_table(engine: Engine, database: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(_DDL.format(table=qualified(database, STATUS_TABLE))))


def record_result(engine: Engine, database: str, result: SyncResult) -> None:
    """Upsert the outcome of one sync (skipped syncs are not recorded: nothing happened)."""
    if result.status == "skipped":
        return
    ensure_status_table(engine, database)
    params = {
        "table_name": result.table,
        "status": result.status,
        "mode": result.mode,
        "started": _naive(result.started_at),
        "finished": _naive(result.finished_at),
        "success": _naive(result.finished_at) if result.status == "synced" else None,
        "extracted": result.rows_extracted,
        "loaded": result.rows_loaded,
        "duration": result.duration_s,
        "error": result.error,
        "load_id": result.load_id,
        "worker": result.worker,
        "failures": 1 if result.status == "failed" else 0,
    }
    with engine.begin() as conn:
        conn.execute(sa.text(_UPSERT.format(table=qualified(database, STATUS_TABLE))), params)


def read_status(engine: Engine, database: str) -> list[TableStatus]:
    """Every table's last recorded sync, ordered by table name."""
    ensure_status_table(engine, database)
    sql = (
        "SELECT table_name, status, mode, last_started_at, last_finished_at, last_success_at, "
        "rows_extracted, rows_loaded, duration_s, last_error, load_id, worker, "
        f"consecutive_failures FROM {qualified(database, STATUS_TABLE)} ORDER BY table_name"
    )
    with engine.connect() as conn:
        return [TableStatus(*row) for row in conn.execute(sa.text(sql))]
