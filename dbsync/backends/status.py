"""Sync status kept in the target database (table ``_dbsync_status``): no Redis needed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.backends.mysql.schema import qualified
from dbsync.backends.registry import dialect_class
from dbsync.config.errors import Outcome, classify
from dbsync.config.result import SyncResult
from dbsync.config.retry import STATUS_BACKOFF_BASE, STATUS_BACKOFF_MAX, STATUS_RETRIES, retrying
from dbsync.dialect import Dialect
from dbsync.model import TableStatus

STATUS_TABLE = "_dbsync_status"
_T = TypeVar("_T")

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
  consecutive_failures INT NOT NULL DEFAULT 0,
  rows_deleted BIGINT NOT NULL DEFAULT 0,
  last_delete_check_at DATETIME(6) NULL,
  rows_repaired BIGINT NOT NULL DEFAULT 0,
  repaired_inserted BIGINT NOT NULL DEFAULT 0,
  repaired_updated BIGINT NOT NULL DEFAULT 0,
  repaired_deleted BIGINT NOT NULL DEFAULT 0,
  last_reconcile_at DATETIME(6) NULL,
  safe_point VARCHAR(64) NULL,
  safe_point_cursor VARCHAR(200) NULL,
  cursor_fallback TINYINT NOT NULL DEFAULT 0,
  future_cursor_rows BIGINT NOT NULL DEFAULT 0,
  target_definition VARCHAR(64) NULL
)"""

# columns added after the first release: (name, definition), added to older status tables
_ADDED_COLUMNS = (
    ("rows_deleted", "BIGINT NOT NULL DEFAULT 0"),
    ("last_delete_check_at", "DATETIME(6) NULL"),
    ("rows_repaired", "BIGINT NOT NULL DEFAULT 0"),
    ("repaired_inserted", "BIGINT NOT NULL DEFAULT 0"),
    ("repaired_updated", "BIGINT NOT NULL DEFAULT 0"),
    ("repaired_deleted", "BIGINT NOT NULL DEFAULT 0"),
    ("last_reconcile_at", "DATETIME(6) NULL"),
    ("safe_point", "VARCHAR(64) NULL"),
    ("safe_point_cursor", "VARCHAR(200) NULL"),
    ("cursor_fallback", "TINYINT NOT NULL DEFAULT 0"),
    ("future_cursor_rows", "BIGINT NOT NULL DEFAULT 0"),
    ("target_definition", "VARCHAR(64) NULL"),
)
# what the cursor's last successful sync learned (dbsync.sync.cursor_guard): a failed sync
# keeps it
_CURSOR_FIELDS = ("safe_point", "safe_point_cursor", "cursor_fallback", "future_cursor_rows")

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
    "rows_deleted",
    "last_delete_check_at",
    "rows_repaired",
    "repaired_inserted",
    "repaired_updated",
    "repaired_deleted",
    "last_reconcile_at",
    *_CURSOR_FIELDS,
    "target_definition",
]

_KEPT = ("last_delete_check_at", "last_reconcile_at", "target_definition")  # kept when not set


def _naive(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


def _moment(value: datetime | str | None) -> datetime | None:
    """SQLite hands datetimes back as text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _dialect(engine: Engine) -> type[Dialect]:
    """The status table's statements come from the engine's dialect (static members)."""
    return dialect_class(engine.dialect.name)


def _schema(engine: Engine, database: str) -> str:
    return _dialect(engine).status_schema(database)


def _table(engine: Engine, database: str) -> str:
    return qualified(_schema(engine, database), STATUS_TABLE)


def ensure_status_table(engine: Engine, database: str) -> None:
    """Create the status table, or add the columns an older release did not have."""
    ddl = f"CREATE TABLE IF NOT EXISTS {_table(engine, database)} {_COLUMNS}"
    with engine.begin() as conn:
        conn.execute(sa.text(ddl + _dialect(engine).table_options()))
    _add_missing_columns(engine, database)
    _ENSURED.add(_status_key(engine, database))


# the status tables this process made sure of: each sync reads and writes its row, and
# checking the table's definition every time cost more than the row
_ENSURED: set[tuple[str, str]] = set()


def _status_key(engine: Engine, database: str) -> tuple[str, str]:
    return (engine.url.render_as_string(hide_password=True), database)


def _on_status_table(engine: Engine, database: str, action: Callable[[], _T]) -> _T:
    """Run ``action`` on the status table, made sure of once per process (again, and the
    action retried, when it fails on a table dropped or changed since)."""
    if _status_key(engine, database) not in _ENSURED:
        ensure_status_table(engine, database)
        return action()
    try:
        return action()
    except sa.exc.DBAPIError:
        _ENSURED.discard(_status_key(engine, database))
        ensure_status_table(engine, database)
        return action()


def _add_missing_columns(engine: Engine, database: str) -> None:
    columns = sa.inspect(engine).get_columns(STATUS_TABLE, schema=_schema(engine, database))
    present = {c["name"] for c in columns}
    table = _table(engine, database)
    with engine.begin() as conn:
        for name, definition in _ADDED_COLUMNS:
            if name not in present:
                conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} {definition}"))


def _upsert_sql(engine: Engine, database: str) -> str:
    d = _dialect(engine)
    new = d.excluded
    updates = {
        **{
            f: new(f)
            for f in _FIELDS[1:]
            if f not in ("last_success_at", "load_id", "consecutive_failures", *_KEPT)
            and f not in _CURSOR_FIELDS
        },
        **{
            f: f"CASE WHEN {new('status')} = 'synced' THEN {new(f)} ELSE {f} END"
            for f in _CURSOR_FIELDS
        },
        "last_success_at": f"COALESCE({new('last_success_at')}, last_success_at)",
        "load_id": f"COALESCE({new('load_id')}, load_id)",
        "consecutive_failures": (
            f"CASE WHEN {new('status')} = 'failed' THEN consecutive_failures + 1 ELSE 0 END"
        ),
        **{f: f"COALESCE({new(f)}, {f})" for f in _KEPT},
    }
    return (
        f"INSERT INTO {_table(engine, database)} ({', '.join(_FIELDS)}) "
        f"VALUES ({', '.join(':' + f for f in _FIELDS)}) {d.upsert_clause('table_name')} "
        + ", ".join(f"{f} = {expr}" for f, expr in updates.items())
    )


def record_result(engine: Engine, database: str, result: SyncResult) -> None:
    """Upsert the outcome of one sync (skipped syncs are not recorded: nothing happened).

    A transient failure is retried (STATUS_RETRIES): a sync that failed because the target's
    connections were lost is recorded as failed on fresh ones once the target answers.
    """
    if result.status == "skipped":
        return
    retrying(
        lambda: _upsert_result(engine, database, result),
        retryable=lambda exc: classify(exc) is Outcome.TRANSIENT,
        retries=STATUS_RETRIES,
        base=STATUS_BACKOFF_BASE,
        maximum=STATUS_BACKOFF_MAX,
    )


def _upsert_result(engine: Engine, database: str, result: SyncResult) -> None:
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
        "rows_deleted": result.rows_deleted,
        "last_delete_check_at": _naive(result.deletes_checked_at),
        "rows_repaired": result.rows_repaired,
        "repaired_inserted": result.repaired_inserted,
        "repaired_updated": result.repaired_updated,
        "repaired_deleted": result.repaired_deleted,
        "last_reconcile_at": _naive(result.reconciled_at),
        "safe_point": result.safe_point,
        "safe_point_cursor": result.safe_point_cursor,
        "cursor_fallback": int(result.cursor_fallback),
        "future_cursor_rows": result.future_cursor_rows,
        "target_definition": result.target_definition,
    }

    def upsert() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(_upsert_sql(engine, database)), params)

    _on_status_table(engine, database, upsert)


def read_status(engine: Engine, database: str, table: str | None = None) -> list[TableStatus]:
    """Every table's last recorded sync, ordered by table name."""
    where = " WHERE table_name = :t" if table is not None else ""
    sql = f"SELECT {', '.join(_FIELDS)} FROM {_table(engine, database)}{where} ORDER BY table_name"
    rows = _on_status_table(engine, database, lambda: _fetch(engine, sql, {"t": table}))
    return [
        TableStatus(
            *row[:3],
            *(_moment(v) for v in row[3:6]),
            *row[6:14],
            _moment(row[14]),
            *row[15:19],
            _moment(row[19]),
            row[20],
            row[21],
            bool(row[22]),
            int(row[23]),
        )
        for row in rows
    ]


def table_status(engine: Engine, database: str, table: str) -> TableStatus | None:
    """The table's recorded status (its cursor's safe point among it), None if never synced."""
    return next(iter(read_status(engine, database, table)), None)


def last_delete_check(engine: Engine, database: str, table: str) -> datetime | None:
    """When the table's keys were last compared for deletes (None: never), in UTC."""
    return _last(engine, database, table, "last_delete_check_at")


def last_reconcile(engine: Engine, database: str, table: str) -> datetime | None:
    """When the table's row content was last compared (None: never), in UTC."""
    return _last(engine, database, table, "last_reconcile_at")


def _last(engine: Engine, database: str, table: str, column: str) -> datetime | None:
    sql = f"SELECT {column} FROM {_table(engine, database)} WHERE table_name = :t"
    rows = _on_status_table(engine, database, lambda: _fetch(engine, sql, {"t": table}))
    found = _moment(rows[0][0]) if rows else None
    return found.replace(tzinfo=UTC) if found else None


def last_diff_repaired(engine: Engine, database: str, table: str) -> bool:
    """Whether the table's last sync was a diff that repaired rows (its rows change between
    syncs: a whole-table checksum would most likely differ again)."""
    sql = (
        f"SELECT 1 FROM {_table(engine, database)} WHERE table_name = :t AND mode = 'diff' "
        "AND status = 'synced' AND rows_repaired > 0"
    )
    return bool(_on_status_table(engine, database, lambda: _fetch(engine, sql, {"t": table})))


def _fetch(engine: Engine, sql: str, params: dict[str, Any]) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def last_target_definition(engine: Engine, database: str, table: str) -> str | None:
    """The fingerprint of the target table's definition as the last sync left it (None:
    never recorded)."""
    sql = f"SELECT target_definition FROM {_table(engine, database)} WHERE table_name = :t"
    rows = _on_status_table(engine, database, lambda: _fetch(engine, sql, {"t": table}))
    return rows[0][0] if rows else None
