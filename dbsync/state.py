"""Sync status kept in the target database (table ``_dbsync_status``): no Redis needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.dialects import Dialect, dialect_class
from dbsync.result import SyncResult
from dbsync.schema import qualified

STATUS_TABLE = "_dbsync_status"

_COLUMNS = """(
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
)"""

_FIELDS = [
    "table_name",
    "status",
    "mode",
    "last_started_at",
    "last_finished_at",
    "last_success_at",
    "rows_extracted",
    "rows_loaded",
    "duration_s",
    "last_error",
    "load_id",
    "worker",
    "consecutive_failures",
]


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


def _moment(value: datetime | str | None) -> datetime | None:
    """SQLite hands datetimes back as text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _dialect(engine: Engine) -> type[Dialect]:
    """The status table's statements come from the engine's dialect (static members)."""
    return dialect_class(engine.dialect.name)


def _table(engine: Engine, database: str) -> str:
    return qualified(_dialect(engine).status_schema(database), STATUS_TABLE)


def ensure_status_table(engine: Engine, database: str) -> None:
    ddl = f"CREATE TABLE IF NOT EXISTS {_table(engine, database)} {_COLUMNS}"
    with engine.begin() as conn:
        conn.execute(sa.text(ddl + _dialect(engine).table_options()))


def _upsert_sql(engine: Engine, database: str) -> str:
    d = _dialect(engine)
    new = d.excluded
    updates = {
        **{
            f: new(f)
            for f in _FIELDS[1:]
            if f not in ("last_success_at", "load_id", "consecutive_failures")
        },
        "last_success_at": f"COALESCE({new('last_success_at')}, last_success_at)",
        "load_id": f"COALESCE({new('load_id')}, load_id)",
        "consecutive_failures": (
            f"CASE WHEN {new('status')} = 'failed' THEN consecutive_failures + 1 ELSE 0 END"
        ),
    }
    return (
        f"INSERT INTO {_table(engine, database)} ({', '.join(_FIELDS)}) "
        f"VALUES ({', '.join(':' + f for f in _FIELDS)}) {d.upsert_clause('table_name')} "
        + ", ".join(f"{f} = {expr}" for f, expr in updates.items())
    )


def record_result(engine: Engine, database: str, result: SyncResult) -> None:
    """Upsert the outcome of one sync (skipped syncs are not recorded: nothing happened)."""
    if result.status == "skipped":
        return
    ensure_status_table(engine, database)
    params = {
        "table_name": result.table,
        "status": result.status,
        "mode": result.mode,
        "last_started_at": _naive(result.started_at),
        "last_finished_at": _naive(result.finished_at),
        "last_success_at": _naive(result.finished_at) if result.status == "synced" else None,
        "rows_extracted": result.rows_extracted,
        "rows_loaded": result.rows_loaded,
        "duration_s": result.duration_s,
        "last_error": result.error,
        "load_id": result.load_id,
        "worker": result.worker,
        "consecutive_failures": 1 if result.status == "failed" else 0,
    }
    with engine.begin() as conn:
        conn.execute(sa.text(_upsert_sql(engine, database)), params)


def read_status(engine: Engine, database: str) -> list[TableStatus]:
    """Every table's last recorded sync, ordered by table name."""
    ensure_status_table(engine, database)
    sql = f"SELECT {', '.join(_FIELDS)} FROM {_table(engine, database)} ORDER BY table_name"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql)).all()
    return [TableStatus(*row[:3], *(_moment(v) for v in row[3:6]), *row[6:]) for row in rows]
