"""The SQL behind the cursor's safe point (MySQL/MariaDB): the source's clock, its oldest
running statement and oldest open transaction, a time converted into the writers' zone, and
rows whose cursor is ahead of the clock. Policy lives in :mod:`dbsync.sync.cursor_guard`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.backends.mysql.schema import quote
from dbsync.config.errors import SafePointUnavailable, mysql_error_code
from dbsync.model import Column

ACCESS_DENIED = (1227, 1044, 1142)  # needs PROCESS; no access to a database or table
MISSING = (1054, 1109)  # a server without these columns or tables

# Read first: the clock and the start of every statement running now. A statement's NOW()
# (and ON UPDATE CURRENT_TIMESTAMP) is its start time, fixed before InnoDB registers its
# transaction; a statement still running shows here even before that (waiting on a lock).
# Plain SELECTs write nothing (long reads, chunked copies, reports hold nothing back).
_CLOCK_AND_STATEMENTS = (
    "SELECT CAST(NOW(6) AS CHAR), "
    "CAST(MIN(NOW(6) - INTERVAL TIME SECOND) AS CHAR) "  # TIME: whole seconds (MySQL too)
    "FROM information_schema.PROCESSLIST "
    "WHERE ID <> CONNECTION_ID() AND COMMAND IN ('Query', 'Execute') "
    "AND TRIM(COALESCE(INFO, '')) NOT LIKE 'select%'"
)
# Read second: every transaction open now that has written a row. One whose statements ended
# before the first read has registered by then, so it is here unless it committed (then the
# snapshot sees it). One that wrote nothing yet has stamped nothing: whatever it writes later
# is stamped later (read-only snapshots, other syncs and reports, hold nothing back).
_OLDEST_TRANSACTION = (
    "SELECT CAST(MIN(trx_started) AS CHAR) FROM information_schema.INNODB_TRX "
    "WHERE trx_mysql_thread_id <> CONNECTION_ID() AND trx_rows_modified > 0"
)
_CURRENT_USER = "SELECT CURRENT_USER()"
_WRITER_ZONE = "COALESCE(:zone, @@global.time_zone)"


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def grant_for(conn: sa.Connection) -> str:
    """The statement that lets the current user read the transaction list."""
    user, _, host = str(conn.execute(sa.text(_CURRENT_USER)).scalar_one()).rpartition("@")
    return f"GRANT PROCESS ON *.* TO '{user}'@'{host}'"


def oldest_activity(engine: Engine) -> datetime:
    """The source's clock (UTC session), lowered to the start of its oldest running
    statement and its oldest open transaction (other connections only), in UTC.

    Raises SafePointUnavailable when the user may not read the transaction list."""
    with engine.connect() as conn:
        try:
            now, statement = conn.execute(sa.text(_CLOCK_AND_STATEMENTS)).one()
            transaction = conn.execute(sa.text(_OLDEST_TRANSACTION)).scalar()
        except sa.exc.DBAPIError as exc:
            code = mysql_error_code(exc)
            if code in MISSING:
                raise SafePointUnavailable(
                    f"the source server does not list its transactions: {exc.orig}"
                ) from None
            if code not in ACCESS_DENIED:
                raise
            raise SafePointUnavailable(
                "the source user may not read information_schema.INNODB_TRX (it needs the "
                f"PROCESS privilege: {grant_for(conn)})"
            ) from None
    moments = [m for m in (_moment(now), _moment(statement), _moment(transaction)) if m]
    return min(moments)


def in_writer_zone(engine: Engine, moment: datetime, zone: str | None) -> datetime:
    """``moment`` (UTC) as a DATETIME written by a session in ``zone`` (default: the
    server's global time zone); SafePointUnavailable when the server cannot convert (a zone
    name without the server's time zone tables)."""
    sql = f"SELECT CAST(CONVERT_TZ(:moment, '+00:00', {_WRITER_ZONE}) AS CHAR)"
    with engine.connect() as conn:
        text = conn.execute(sa.text(sql), {"moment": moment, "zone": zone}).scalar()
    local = _moment(text)
    if local is None:
        raise SafePointUnavailable(
            f"the source cannot convert UTC to time zone {zone or '@@global.time_zone'!r} "
            "(load its time zone tables, or set CURSOR_TIME_ZONE to an offset)"
        )
    return local


def future_rows_sql(table: str, cursor: Column) -> str:
    """Rows of ``table`` whose cursor is more than a second ahead of the source's clock
    (TIMESTAMP: compared as instants in the UTC session; DATETIME/DATE: in the writers'
    zone)."""
    now = "NOW(6)"
    if cursor.data_type != "timestamp":
        now = f"CONVERT_TZ(NOW(6), '+00:00', {_WRITER_ZONE})"
    return f"SELECT COUNT(*) FROM {table} WHERE {quote(cursor.name)} > {now} + INTERVAL 1 SECOND"


def future_rows(engine: Engine, table: str, cursor: Column, zone: str | None) -> int:
    sql = future_rows_sql(table, cursor)
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), {"zone": zone}).scalar() or 0)
