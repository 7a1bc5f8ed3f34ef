"""MySQL and MariaDB behind the :class:`dbsync.dialect.Dialect` protocol."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pymysql.cursors
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dbsync.backends.engines import server_engine, uses_tls
from dbsync.backends.key_folds import ServerSide
from dbsync.backends.mysql import (
    checksum,
    extract,
    key_ranges,
    migration,
    privileges,
    read_slots,
    rowdiff,
)
from dbsync.backends.mysql import cursor as safe_point
from dbsync.backends.mysql import read_ahead as read_ahead_sql
from dbsync.backends.mysql import rows as row_reads
from dbsync.backends.mysql import target as tgt
from dbsync.backends.mysql import types as mysql_types
from dbsync.backends.mysql import window as window_sql
from dbsync.backends.mysql.copy_progress import CopyProgress, Holder
from dbsync.backends.mysql.key_ranges import range_predicate
from dbsync.backends.mysql.loader import LoadFile, dbsync_sqlalchemy
from dbsync.backends.mysql.lock import TableLock, lock_name
from dbsync.backends.mysql.schema import (
    add_indexes_sql,
    column_definition,
    create_table_sql,
    qualified,
    quote,
    read_table,
    require_source_table,
    target_indexes,
)
from dbsync.config.errors import ConfigProblem, mysql_error_code
from dbsync.config.names import staging_table
from dbsync.config.settings import Settings
from dbsync.model import (
    AddIndex,
    Buckets,
    Clause,
    Column,
    HeldLock,
    Index,
    Key,
    KeySet,
    Read,
    RowSet,
    RowSide,
    Side,
    SlotUsage,
    TableSchema,
    Window,
    WindowRows,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from dbsync.dialect import ChunkHolder, ChunkLoad, CopyProgressStore

DUPLICATE_ENTRY = 1062  # MySQL: a unique index would hold a value twice


class MySQLDialect:
    """MySQL and MariaDB: the production dialect."""

    name: ClassVar[str] = "mysql"
    placeholder: ClassVar[str] = "%s"
    reads_ahead: ClassVar[bool] = True  # warm the target's pages before a merge
    copies_in_chunks: ClassVar[bool] = True  # large full copies in key ranges
    alters_in_place: ClassVar[bool] = True
    compares_rows: ClassVar[bool] = True  # reconcile and diff syncs (dbsync.compare.reconcile)
    syncs_side_by_side: ClassVar[bool] = True  # groups of tables share a dlt run (sync.many)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._target_ready = False

    # --- names ------------------------------------------------------------------------
    def source_schema(self) -> str:
        return self.settings.source.database

    def target_schema(self) -> str:
        return self.settings.target.database

    def staging_schema(self) -> str:
        return self.settings.staging_database

    @staticmethod
    def staging_table(table: str) -> str:
        """The staging table dlt loads for ``table`` (see dbsync.config.names)."""
        return staging_table(table)

    @staticmethod
    def qualified(schema: str, table: str) -> str:
        return qualified(schema, table)

    # --- reading ----------------------------------------------------------------------
    def read_table(self, conn: Connection, schema: str, table: str) -> TableSchema | None:
        return read_table(conn, schema, table)

    def require_source_table(
        self,
        conn: Connection,
        database: str,
        table: str,
        key: tuple[str, ...],
        modifier: str | None,
    ) -> TableSchema:
        return require_source_table(conn, database, table, key, modifier, read=self.read_table)

    def text_expression(self, column: Column) -> str:
        return mysql_types.text_expression(column, quote(column.name))

    def range_predicate(
        self, key: Sequence[str], lower: Key | None, upper: Key | None
    ) -> tuple[str, list]:
        return range_predicate(key, lower, upper, self.placeholder)

    def key_boundaries(
        self, engine: Engine, database: str, table: str, key: Sequence[str], every: int
    ) -> list[Key]:
        return row_reads.key_boundaries(self, engine, database, table, key, every)

    def named_param(self, name: str) -> str:
        return f"%({name})s"

    def arrow_reader_url(self, engine: Engine) -> str | None:
        """connectorx URL for fast arrow extraction; None to read through PyMySQL.

        connectorx cannot speak TLS, so PyMySQL reads whenever the source connection really
        uses TLS: TLS is required by the settings, or ``preferred`` (the default) and the
        server offered it. PyMySQL also reads when ``DBSYNC_EXTRACTOR=pymysql`` or when
        connectorx is not installed.
        """
        source = self.settings.source
        if os.environ.get("DBSYNC_EXTRACTOR", "").lower() == "pymysql":
            return None
        if source.ssl_context() is not None or not source.is_mysql:
            return None
        if importlib.util.find_spec("connectorx") is None:
            return None
        if source.ssl_mode != "disabled" and uses_tls(engine):
            return None
        timeouts = {"tcp_connect_timeout_ms": str(int(self.settings.db_connect_timeout * 1000))}
        url = source.url.set(drivername="mysql", query=timeouts)
        return url.render_as_string(hide_password=False)

    def begin_snapshot(self, raw: Any) -> Any:
        """An unbuffered cursor inside a read-only, consistent-snapshot transaction."""
        cursor = raw.cursor(pymysql.cursors.SSCursor)
        cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        return cursor

    def key_side(self, keys: KeySet) -> Side:
        """Where a table's keys are folded for the delete comparison: on the server."""
        return ServerSide(keys)

    def oldest_activity(self, engine: Engine) -> datetime:
        return safe_point.oldest_activity(engine)

    def in_writer_zone(self, engine: Engine, moment: datetime, zone: str | None) -> datetime:
        return safe_point.in_writer_zone(engine, moment, zone)

    def future_cursor_rows(
        self, engine: Engine, table: str, cursor: Column, zone: str | None
    ) -> int:
        source = qualified(self.source_schema(), table)
        return safe_point.future_rows(engine, source, cursor, zone)

    def window_rows(
        self,
        engines: tuple[Engine, Engine],
        source: TableSchema,
        target: TableSchema,
        window: Window,
    ) -> WindowRows | None:
        return window_sql.window_rows(self, engines, source, target, window)

    def window_sides(
        self, engines: tuple[Engine, Engine], rows: tuple[RowSet, RowSet], key: Sequence[str]
    ) -> tuple[Side, Side] | None:
        source = KeySet(engines[0], self.source_schema(), rows[0].schema, tuple(key))
        target = KeySet(engines[1], self.target_schema(), rows[1].schema, tuple(key))
        plan = rowdiff.plan_fingerprint(source, target, rows[0].columns)
        return (
            window_sql.WindowSide(rows[0], engines[0], key, plan),
            window_sql.WindowSide(rows[1], engines[1], key, plan),
        )

    def bucket_predicate(self, schema: TableSchema, key: Sequence[str], buckets: Buckets) -> str:
        return window_sql.in_buckets(schema, key, buckets)

    def lower_bound_sql(self, schema: str, table: str, cursor: Column, lag_seconds: float) -> str:
        column = quote(cursor.name)
        expression = f"MAX({column})"
        if mysql_types.is_temporal(cursor.data_type) and lag_seconds > 0:
            micros = int(lag_seconds * 1_000_000)
            expression = f"MAX({column}) - INTERVAL {micros} MICROSECOND"
        return f"SELECT CAST({expression} AS CHAR) FROM {qualified(schema, table)}"

    def highest_cursor(
        self, engine: Engine, schema: str, table: str, cursor: Column, lag_seconds: float
    ) -> str | None:
        return extract.highest_cursor(self, engine, schema, table, cursor, lag_seconds)

    def stream_rows(self, read: Read) -> Iterator[pa.Table]:
        return extract.stream_rows(read)

    def aggregate(self, engine: Engine, rows: RowSet) -> tuple[int, int, int]:
        """Computed by the server: only three numbers cross the network."""
        return checksum.fold_on_server(engine, rows)

    def row_digests(self, engine: Engine, rows: RowSet, key: Sequence[str]) -> dict[object, object]:
        return checksum.digests_on_server(engine, rows, key)

    # --- read-ahead ---------------------------------------------------------------------
    def cursor_index(self, schema: TableSchema, cursor: str) -> Index | None:
        return read_ahead_sql.cursor_index(schema, cursor)

    def window_keys(
        self, engine: Engine, table: str, key: Sequence[str], window: Window, limit: int
    ) -> list[Key]:
        return read_ahead_sql.window_keys(engine, table, key, window, limit)

    def read_ahead_rows(
        self,
        engine: Engine,
        table: str,
        key: Sequence[str],
        index: Index | None,
        keys: Sequence[Key],
    ) -> None:
        read_ahead_sql.read_rows(engine, table, key, index, keys)

    # --- writing ----------------------------------------------------------------------
    def ensure_staging(self, engine: Engine) -> None:
        tgt.ensure_database(engine, self.staging_schema())

    def ensure_target(self) -> None:
        """Create the target database on first use (once per process), if it is missing.

        The target engine cannot connect to a database that does not exist, so this goes
        through a connection without a default database.
        """
        if self._target_ready:
            return
        engine = server_engine(self.settings.target, self.settings)
        try:
            tgt.ensure_database(engine, self.target_schema(), "set TARGET_DB_NAME")
        finally:
            engine.dispose()
        self._target_ready = True

    def is_empty(self, engine: Engine, schema: str, table: str) -> bool:
        return tgt.is_empty(engine, schema, table)

    def count_rows(self, engine: Engine, schema: str, table: str) -> int:
        return tgt.count_rows(engine, schema, table)

    def create_staging(
        self,
        engine: Engine,
        source: TableSchema,
        key: tuple[str, ...],
        cursor: str | None,
        *,
        with_indexes: bool = False,
    ) -> None:
        """An empty staging table for a full copy: primary key only (indexes come later,
        sorted), unless ``with_indexes``."""
        staged = self.staging_table(source.name)
        tgt.drop_table(engine, self.staging_schema(), staged)
        sql = create_table_sql(
            source,
            self.staging_schema(),
            staged,
            key,
            cursor,
            secondary_indexes=with_indexes,
            unique_indexes=False,  # chunks load from several snapshots: see index_staging
        )
        tgt.execute_ddl(engine, qualified(self.staging_schema(), staged), sql)

    def index_staging(self, engine: Engine, source: TableSchema, cursor: str | None) -> None:
        """Build the secondary indexes a fully loaded staging table lacks (one sorted pass),
        and make unique those a chunked copy kept plain while loading. Rows copied in chunks
        come from several snapshots and may hold a unique value twice until the next merge:
        then those indexes stay plain and the next sync makes them unique."""
        staged = self.staging_table(source.name)
        name = qualified(self.staging_schema(), staged)
        with engine.connect() as conn:
            current = read_table(conn, self.staging_schema(), staged)
        present = current.indexes if current is not None else ()
        sql = add_indexes_sql(source, self.staging_schema(), staged, cursor, present)
        if not sql:
            return
        try:
            tgt.execute_ddl(engine, name, sql)
        except sa.exc.DBAPIError as exc:
            if mysql_error_code(exc) != DUPLICATE_ENTRY:
                raise
            plain = add_indexes_sql(source, self.staging_schema(), staged, cursor, present, False)
            if plain:
                tgt.execute_ddl(engine, name, plain)

    # --- schema migrations ------------------------------------------------------------
    @staticmethod
    def widens(new: str, old: str) -> bool:
        return mysql_types.widens(new, old)

    @staticmethod
    def secondary_indexes(source: TableSchema, cursor: str | None) -> list[Index]:
        return target_indexes(source, cursor)

    def alter_table(
        self, engine: Engine, schema: str, table: str, clauses: Sequence[Clause]
    ) -> list[str]:
        name = qualified(schema, table)
        try:
            tgt.execute_ddl(engine, name, migration.alter_sql(schema, table, clauses))
        except sa.exc.DBAPIError as exc:
            unique = [c.index.name for c in clauses if isinstance(c, AddIndex) and c.index.unique]
            if mysql_error_code(exc) != DUPLICATE_ENTRY or not unique:
                raise
            tgt.execute_ddl(engine, name, migration.alter_sql(schema, table, clauses, False))
            return unique
        return []

    def columns_holding(
        self, engine: Engine, schema: str, table: str, columns: Sequence[str], *, nulls: bool
    ) -> set[str]:
        return migration.columns_holding(engine, schema, table, columns, nulls)

    def table_footprint(self, engine: Engine, schema: str, table: str) -> tuple[int, int]:
        """From ``information_schema.TABLES`` (InnoDB's statistics: estimates, maybe stale)."""
        sql = (
            "SELECT COALESCE(TABLE_ROWS, 0), COALESCE(INDEX_LENGTH, 0) "
            "FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t"
        )
        with engine.connect() as conn:
            row = conn.execute(sa.text(sql), {"s": schema, "t": table}).first()
        return (int(row[0]), int(row[1])) if row is not None else (0, 0)

    def index_memory(self, engine: Engine) -> int:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT @@innodb_buffer_pool_size")).scalar() or 0)

    def stage_like_target(self, engine: Engine, current: TableSchema, key: tuple[str, ...]) -> None:
        """The staging table the table's last merge emptied, if it still fits
        (:func:`tgt.reusable_staging`); else a new one."""
        staging = (self.staging_schema(), self.staging_table(current.name))
        like = (self.target_schema(), current.name)
        if not tgt.reusable_staging(engine, staging, like):
            tgt.recreate_like(engine, *staging, qualified(*like))

    def swap_into_place(self, engine: Engine, schema: TableSchema, target_exists: bool) -> None:
        staging = (self.staging_schema(), self.staging_table(schema.name))
        tgt.swap_into_place(engine, staging, self.target_schema(), schema.name, target_exists)

    def merge(self, engine: Engine, schema: TableSchema, key: tuple[str, ...]) -> None:
        staging = (self.staging_schema(), self.staging_table(schema.name))
        try:
            emptied = tgt.merge_and_empty(
                engine, tgt.merge_sql(schema, staging, self.target_schema()), staging
            )
        except sa.exc.DBAPIError as exc:
            if not schema.unique_keys or mysql_error_code(exc) != DUPLICATE_ENTRY:
                raise
            # unique values moved between rows: see target.replace_sql
            emptied = tgt.merge_and_empty(
                engine, tgt.replace_sql(schema, staging, self.target_schema()), staging
            )
        if not emptied:
            tgt.drop_table(engine, *staging)

    @contextmanager
    def first_run_guard(self, engine: Engine) -> Iterator[None]:
        """Serialize the very first dlt runs on a staging database: dlt creates its own
        tables there (``_dlt_version``, ``_dlt_loads`` …) without IF NOT EXISTS."""
        with engine.connect() as conn:
            ready = conn.execute(
                sa.text(
                    "SELECT 1 FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = :d AND TABLE_NAME = '_dlt_pipeline_state'"
                ),
                {"d": self.staging_schema()},
            ).first()
            if ready:
                yield
                return
            name = lock_name(self.staging_schema(), "_dlt_init")
            conn.execute(sa.text("SELECT GET_LOCK(:n, 120)"), {"n": name})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})

    def table_lock(self, engine: Engine, table: str) -> HeldLock:
        s = self.settings
        return TableLock(
            engine, self.target_schema(), table, s.lock_heartbeat_seconds, s.lock_stale_seconds
        )

    def read_slot(self, engine: Engine, table: str) -> AbstractContextManager[None]:
        s = self.settings
        return read_slots.read_slot(
            engine,
            self.source_schema(),
            table,
            s.source_max_concurrent_reads,
            s.source_read_wait_seconds,
        )

    def read_slot_usage(self, engine: Engine, tables: Sequence[str]) -> SlotUsage | None:
        slots = self.settings.source_max_concurrent_reads
        if slots <= 0:
            return None
        return read_slots.slot_usage(engine, self.source_schema(), tables, slots)

    # --- chunked copies -------------------------------------------------------------------
    def walk_split_points(
        self,
        engine: Engine,
        database: str,
        table: str,
        key: Sequence[str],
        every: int,
        after: Key | None = None,
    ) -> Generator[Key, None, None]:
        return key_ranges.walk_split_points(engine, database, table, key, every, after)

    def range_sql(self, key: Sequence[str], lower: Key | None, upper: Key | None) -> str:
        return key_ranges.range_sql(key, lower, upper)

    def table_exists(self, engine: Engine, schema: str, table: str) -> bool:
        return tgt.table_exists(engine, schema, table)

    def target_indexes(self, source: TableSchema, cursor: str | None) -> list[Index]:
        return target_indexes(source, cursor)

    @staticmethod
    def column_definition(column: Column) -> str:
        return column_definition(column)

    def copy_progress(self, engine: Engine, database: str) -> CopyProgressStore:
        return CopyProgress(engine, database)

    def chunk_holder(self, engine: Engine) -> ChunkHolder:
        return Holder(engine)

    def load_file(
        self, engine: Engine, schema: str, table: str, batches: Iterable[pa.RecordBatch]
    ) -> ChunkLoad:
        return LoadFile(engine, schema, table, batches)

    def clear_range(self, cursor: Any, table: str, key_range: str) -> None:
        tgt.clear_range(cursor, table, key_range)

    # --- privileges -----------------------------------------------------------------------
    def select_problems(
        self, engine: Engine, database: str, tables: list[str]
    ) -> list[ConfigProblem]:
        return privileges.select_problems(engine, database, tables)

    def database_problems(
        self, conn: Connection, databases: tuple[str, ...]
    ) -> list[ConfigProblem]:
        return privileges.database_problems(conn, databases)

    @staticmethod
    def status_schema(database: str) -> str:
        return database

    @staticmethod
    def excluded(column: str) -> str:
        return f"VALUES({column})"

    @staticmethod
    def upsert_clause(key: str) -> str:
        return "ON DUPLICATE KEY UPDATE"

    @staticmethod
    def table_options() -> str:
        return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    def source_has_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> list[bool]:
        qualified_table = qualified(self.source_schema(), table)
        return row_reads.keys_present(engine, qualified_table, key, keys, self.placeholder)

    def row_sides(
        self, source: KeySet, target: KeySet, columns: Sequence[str]
    ) -> tuple[RowSide, RowSide]:
        """Rows folded by content on each server, by one fingerprint."""
        plan = rowdiff.plan_fingerprint(source, target, columns)
        return rowdiff.ServerRowSide(source, plan), rowdiff.ServerRowSide(target, plan)

    def table_checksum(self, engine: Engine, schema: str, table: str) -> int | None:
        return rowdiff.table_checksum(engine, qualified(schema, table))

    def written_within(
        self, engine: Engine, schema: str, table: str, seconds: float
    ) -> bool | None:
        return rowdiff.written_within(engine, schema, table, seconds)

    def read_source_rows(
        self,
        engine: Engine,
        schema: TableSchema,
        key: Sequence[str],
        keys: Sequence[Key],
        cursor_cap: tuple[str, str] | None,
    ) -> list[tuple[Any, ...]]:
        table = qualified(self.source_schema(), schema.name)
        return rowdiff.read_rows(engine, schema, table, key, keys, cursor_cap)

    def write_target_rows(
        self,
        engine: Engine,
        schema: TableSchema,
        key: Sequence[str],
        rows: Sequence[Sequence[Any]],
        gone: Sequence[Key],
    ) -> int:
        table = qualified(self.target_schema(), schema.name)
        return rowdiff.write_rows(engine, schema, table, key, rows, gone)

    def delete_target_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> int:
        qualified_table = qualified(self.target_schema(), table)
        return tgt.delete_keys(engine, qualified_table, key, keys, self.placeholder)

    def dlt_destination(self, engine: Engine) -> Any:
        """dbsync's sqlalchemy destination, whose load job is LOAD DATA LOCAL INFILE on MySQL."""
        return dbsync_sqlalchemy(credentials=self.destination_engine(engine))

    def destination_engine(self, engine: Engine) -> Engine:
        return engine
