"""SQLAlchemy engines with independent pools, one pair per process (create after fork)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.config.settings import DatabaseSettings, Settings

# Both sides talk UTC so TIMESTAMP values travel as their stored instants, and the target
# accepts zero and invalid dates (as a permissive source stores them) while still refusing
# truncation. A fold's buckets come back packed in one GROUP_CONCAT (key_folds.read_folds):
# 65,536 buckets take ~2.3 MB of text, far past the 1 KB default.
SOURCE_INIT = "SET time_zone = '+00:00', group_concat_max_len = 33554432"
TARGET_INIT = (
    "SET time_zone = '+00:00', group_concat_max_len = 33554432, "
    "sql_mode = 'STRICT_ALL_TABLES,ALLOW_INVALID_DATES,NO_ENGINE_SUBSTITUTION', "
    "foreign_key_checks = 0, unique_checks = 1"
)


def target_init(settings: Settings) -> str:
    """The target's session settings. ``lock_wait_timeout`` bounds how long any statement of
    dbsync waits for a metadata lock: a DDL waiting in MariaDB's lock queue blocks every later
    reader of its table, so the wait itself must be short (TARGET_LOCK_WAIT_TIMEOUT)."""
    return f"{TARGET_INIT}, lock_wait_timeout = {int(settings.target_lock_wait_timeout)}"


def mysql_connect_args(
    db: DatabaseSettings, settings: Settings, init_command: str, local_infile: bool
) -> dict[str, Any]:
    """PyMySQL's arguments for one side: charset, session setup, TLS and timeouts."""
    args: dict[str, Any] = {
        "charset": "utf8mb4",
        "init_command": init_command,
        "local_infile": local_infile,
        "connect_timeout": settings.db_connect_timeout,
        # every wait for a reply of the server (the login handshake too); long enough for the
        # longest single statement (a LOAD DATA file, an index build, a merge). No write
        # timeout: PyMySQL's socket timeout on writes left a LOAD DATA LOCAL whose connection
        # the server killed blocked in sendall instead of failing
        "read_timeout": settings.db_read_timeout,
    }
    context = db.ssl_context()
    if context is not None:
        args["ssl"] = context
    elif db.ssl_mode == "disabled":
        args["ssl_disabled"] = True  # PyMySQL otherwise tries TLS whenever the server offers it
    return args


class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection, whose TLS context for ``preferred`` TLS without a CA or a
    certificate (the default) is built once per process: PyMySQL builds one for every
    connection, loading the system's CA store, about 20 ms each."""

    def _create_ssl_ctx(self, sslp: Any) -> Any:
        if sslp != {}:
            return super()._create_ssl_ctx(sslp)
        with _PREFERRED_GUARD:
            if not _PREFERRED:
                _PREFERRED.append(super()._create_ssl_ctx({}))
            return _PREFERRED[0]


_PREFERRED: list[Any] = []
_PREFERRED_GUARD = threading.Lock()


def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
    return _Connection(*cargs, **cparams)


def _share_tls_context(engine: Engine) -> None:
    if engine.dialect.driver == "pymysql":
        sa.event.listen(engine, "do_connect", _connect)


def create_engine(db: DatabaseSettings, settings: Settings, *, target: bool) -> Engine:
    """One engine (and pool) for one side, configured from the settings."""
    if not db.is_mysql:
        return _sqlite_engine(db, settings, target)
    init = target_init(settings) if target else SOURCE_INIT
    engine = sa.create_engine(
        db.url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=settings.pool_pre_ping,
        connect_args=mysql_connect_args(db, settings, init, local_infile=target),
        hide_parameters=True,
    )
    _share_tls_context(engine)
    return engine


def server_engine(db: DatabaseSettings, settings: Settings) -> Engine:
    """A pool-less engine on ``db``'s server without a default database (to create it)."""
    engine = sa.create_engine(
        db.url._replace(database=None),  # URL.set() cannot clear a field
        poolclass=sa.pool.NullPool,
        connect_args=mysql_connect_args(db, settings, target_init(settings), local_infile=False),
        hide_parameters=True,
    )
    _share_tls_context(engine)
    return engine


def uses_tls(engine: Engine) -> bool:
    """Whether the engine's connections really negotiated TLS with the server."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_cipher'").first()
    return bool(row and row[1])


def _sqlite_engine(db: DatabaseSettings, settings: Settings, target: bool) -> Engine:
    """SQLite (demo only): the target's connections see the staging file dlt writes."""
    from dbsync.backends.sqlite.dialect import SQLiteDialect

    engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool)
    if target and db.database:
        dialect = SQLiteDialect(settings)
        staging = dialect.staging_file(db.database)

        @sa.event.listens_for(engine, "connect")
        def _attach_staging(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"ATTACH DATABASE '{staging}' AS {dialect.staging_schema()}")

    return engine


@dataclass
class Engines:
    """The source and target engines of one process; whoever creates them disposes them."""

    source: Engine
    target: Engine

    @classmethod
    def create(cls, settings: Settings) -> Engines:
        return cls(
            source=create_engine(settings.source, settings, target=False),
            target=create_engine(settings.target, settings, target=True),
        )

    def dispose(self) -> None:
        self.source.dispose()
        self.target.dispose()


def ping(engine: Engine) -> None:
    """Ask the server the simplest question (``SELECT 1``); raises when it does not answer."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def pool_numbers(engine: Engine) -> dict[str, int]:
    """Everything an engine's pool tells about itself (zeros for pool-less engines)."""
    pool = engine.pool
    numbers: dict[str, int] = {}
    for name, attr in (
        ("size", "size"),
        ("checked_out", "checkedout"),
        ("checked_in", "checkedin"),
        ("overflow", "overflow"),
    ):
        method = getattr(pool, attr, None)
        numbers[name] = int(method()) if callable(method) else 0
    # QueuePool.overflow() counts down from -size while the pool fills: clamp it.
    numbers["overflow"] = max(numbers["overflow"], 0)
    numbers["max_overflow"] = int(getattr(pool, "_max_overflow", 0) or 0)
    return numbers


def has_room(engine: Engine, spare: int) -> bool:
    """True when the engine's pool could hand out ``spare`` more connections right now."""
    numbers = pool_numbers(engine)
    capacity = numbers["size"] + numbers["max_overflow"]
    return capacity - numbers["checked_out"] >= spare


def pool_status(engine: Engine) -> dict[str, int]:
    """Size and checked-out connections of an engine's pool, as health and metrics report."""
    numbers = pool_numbers(engine)
    return {"pool_size": numbers["size"], "checked_out": numbers["checked_out"]}


def fetch_all(engine: Engine, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows of one statement with DB-API parameters, on a pooled raw connection."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql, params)
        rows = [tuple(row) for row in cursor.fetchall()]
        cursor.close()
        return rows
    finally:
        raw.close()
