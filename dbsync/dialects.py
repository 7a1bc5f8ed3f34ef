"""What differs between database kinds, written down as one interface: :class:`Dialect`.

MySQL/MariaDB is the product; SQLite exists so ``dbsync demo`` runs the very same sync path
on a machine without any database server. Everything the sync engine says to a database that
is not plain, portable SQL goes through a ``Dialect``; :class:`MySQLDialect` and
:class:`SQLiteDialect` are siblings behind it, and :func:`dialect_class` is the one place
that maps a backend name to its dialect. A new capability is a new member of
:class:`Dialect`, documented there and implemented by both.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pymysql.cursors
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dbsync import checksum, migration_sql, mysql_types
from dbsync import target as tgt
from dbsync.checksum import RowSet
from dbsync.engines import server_engine, uses_tls
from dbsync.errors import mysql_error_code
from dbsync.keydiff import KeySet, LocalSide, ServerSide, Side
from dbsync.lock import FileLock, HeldLock, TableLock, lock_name
from dbsync.migration import AddIndex, Clause
from dbsync.names import staging_table
from dbsync.schema import (
    Column,
    TableSchema,
    add_indexes_sql,
    create_table_sql,
    qualified,
    quote,
    read_table,
)
from dbsync.settings import Settings

DUPLICATE_ENTRY = 1062  # MySQL: a unique index would hold a value twice


class Dialect(Protocol):
    """The extension points of a database kind, in the order a sync meets them.

    Capabilities (class attributes):

    - ``name``: the backend, as SQLAlchemy names it (``mysql``, ``sqlite``).
    - ``placeholder``: the DB-API positional parameter marker (``%s``, ``?``).
    - ``reads_ahead``: whether warming the target's pages before a merge pays off
      (:mod:`dbsync.read_ahead`); off where storage is local.
    - ``copies_in_chunks``: whether a full copy of a table over ``CHUNK_ROWS`` is split into
      key ranges copied side by side (:mod:`dbsync.chunked_copy`); off for the demo's SQLite.
    - ``alters_in_place``: whether a table whose definition differs from the source's can
      follow it with ``ALTER TABLE`` (:mod:`dbsync.migration`); otherwise it is rebuilt.

    Names: :meth:`source_schema`, :meth:`target_schema`, :meth:`staging_schema` are the
    schemas (databases) tables are read from, merged into and staged in;
    :meth:`staging_table` the name a table is staged under.

    Reading the source: :meth:`read_table` (a table's definition, or None),
    :meth:`text_expression` (a column's exact text form in a SELECT), :meth:`named_param`,
    :meth:`arrow_reader_url` (a connectorx URL, or None to read through the driver),
    :meth:`begin_snapshot` (a cursor inside a consistent read), :meth:`lower_bound_sql`
    (where an incremental read starts), and where checksums and key folds are computed:
    :meth:`aggregate` (row count and checksum of a set of rows), :meth:`row_digests` (per
    row) and :meth:`key_side` (key-set folds for delete propagation).

    Writing the target: :meth:`ensure_target`, :meth:`ensure_staging`, :meth:`create_staging`,
    :meth:`index_staging`, :meth:`stage_like_target`, :meth:`swap_into_place` (full copy),
    :meth:`merge` (incremental), :meth:`first_run_guard` (around dlt's first run),
    :meth:`destination_engine` (the engine dlt loads through) and :meth:`table_lock` (one
    sync per table at a time; a :class:`dbsync.lock.HeldLock`).

    Statements without settings (static, for :mod:`dbsync.state`'s status table):
    :meth:`status_schema`, :meth:`excluded`, :meth:`upsert_clause`, :meth:`table_options`.
    """

    name: ClassVar[str]
    placeholder: ClassVar[str]
    reads_ahead: ClassVar[bool]
    copies_in_chunks: ClassVar[bool]
    alters_in_place: ClassVar[bool]
    settings: Settings

    # --- names ------------------------------------------------------------------------
    def source_schema(self) -> str:
        """The schema the source tables are read from."""

    def target_schema(self) -> str:
        """The schema the target tables live in."""

    def staging_schema(self) -> str:
        """The schema dlt stages loads in before they reach the target."""

    @staticmethod
    def staging_table(table: str) -> str:
        """The staging table dlt loads for ``table`` (a name dlt can take)."""

    # --- reading ----------------------------------------------------------------------
    def read_table(self, conn: Connection, schema: str, table: str) -> TableSchema | None:
        """The table's definition, or None if it does not exist."""

    def text_expression(self, column: Column) -> str:
        """SELECT expression giving the column's exact value as text."""

    def named_param(self, name: str) -> str:
        """A named parameter marker in SQL passed to the driver."""

    def arrow_reader_url(self, engine: Engine) -> str | None:
        """connectorx URL for fast arrow extraction from the source ``engine`` reads; None to
        read through the driver."""

    def begin_snapshot(self, raw: Any) -> Any:
        """A cursor of the raw DB-API connection inside a consistent, read-only read."""

    def lower_bound_sql(self, schema: str, table: str, cursor: Column, lag_seconds: float) -> str:
        """SELECT giving where the next incremental read starts (the highest cursor value
        in the target, minus the lag where the cursor type allows)."""

    def aggregate(self, engine: Engine, rows: RowSet) -> tuple[int, int, int]:
        """(row count, sums of the rows' MD5 halves) of ``rows``: see :mod:`dbsync.checksum`."""

    def row_digests(
        self, engine: Engine, rows: RowSet, key: Sequence[str]
    ) -> dict[object, object]:
        """Each row's key identity and content digest (a mismatching chunk, row by row)."""

    def key_side(self, keys: KeySet) -> Side:
        """Where a table's keys are folded for the delete comparison (:mod:`dbsync.keydiff`)."""

    # --- writing ----------------------------------------------------------------------
    def ensure_target(self) -> None:
        """Make the target database exist (once per process)."""

    def ensure_staging(self, engine: Engine) -> None:
        """Make the staging schema exist."""

    def create_staging(
        self,
        engine: Engine,
        source: TableSchema,
        key: tuple[str, ...],
        cursor: str | None,
        *,
        with_indexes: bool = False,
    ) -> None:
        """An empty staging table for a full copy of ``source``: primary key only (indexes
        built after the load), or ``with_indexes`` (kept up while chunks load)."""

    def index_staging(self, engine: Engine, source: TableSchema, cursor: str | None) -> None:
        """Build the secondary indexes a fully loaded staging table still lacks."""

    def alter_table(
        self, engine: Engine, schema: str, table: str, clauses: Sequence[Clause]
    ) -> list[str]:
        """Apply in-place migration steps in one statement; returns the unique indexes that
        had to be added as plain ones because the table holds duplicates in them (a chunked
        copy's rows from several snapshots, set right by the next merge)."""

    def columns_holding(
        self, engine: Engine, schema: str, table: str, columns: Sequence[str], *, nulls: bool
    ) -> set[str]:
        """Those of ``columns`` in which some row holds a NULL (``nulls``) or a value."""

    def table_footprint(self, engine: Engine, schema: str, table: str) -> tuple[int, int]:
        """(rows, bytes of secondary indexes) of a table, as the server estimates them
        (0, 0 when it keeps no estimate)."""

    def index_memory(self, engine: Engine) -> int:
        """Bytes of the server's cache for index pages (InnoDB's buffer pool); 0: unknown."""

    def stage_like_target(self, engine: Engine, current: TableSchema, key: tuple[str, ...]) -> None:
        """An empty staging table shaped like the current target table (incremental)."""

    def swap_into_place(self, engine: Engine, schema: TableSchema, target_exists: bool) -> None:
        """Replace the target table by the staged one; readers see old rows or new rows."""

    def merge(self, engine: Engine, schema: TableSchema, key: tuple[str, ...]) -> None:
        """Upsert the staged rows into the target by ``key`` and drop the staging table."""

    def first_run_guard(self, engine: Engine) -> AbstractContextManager[None]:
        """Held around dlt's run, serializing its very first runs on a staging schema."""

    def table_lock(self, engine: Engine, table: str) -> HeldLock:
        """The table's lock (raises TableBusy on entering when another process holds it)."""

    def destination_engine(self, engine: Engine) -> Engine:
        """The engine dlt's sqlalchemy destination loads through."""

    # --- statements without settings --------------------------------------------------
    @staticmethod
    def status_schema(database: str) -> str:
        """The schema of the target database ``database`` holding dbsync's own tables."""

    @staticmethod
    def excluded(column: str) -> str:
        """The value an upsert tried to insert, in its update clause."""

    @staticmethod
    def upsert_clause(key: str) -> str:
        """What follows an INSERT's VALUES to update the row with the same ``key``."""

    @staticmethod
    def table_options() -> str:
        """What follows a CREATE TABLE's column list."""


class MySQLDialect:
    """MySQL and MariaDB: the production dialect."""

    name: ClassVar[str] = "mysql"
    placeholder: ClassVar[str] = "%s"
    reads_ahead: ClassVar[bool] = True  # warm the target's pages before a merge
    copies_in_chunks: ClassVar[bool] = True  # large full copies in key ranges
    alters_in_place: ClassVar[bool] = True

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
        """The staging table dlt loads for ``table`` (a name dlt can take, see dbsync.names)."""
        return staging_table(table)

    # --- reading ----------------------------------------------------------------------
    def read_table(self, conn: Connection, schema: str, table: str) -> TableSchema | None:
        return read_table(conn, schema, table)

    def text_expression(self, column: Column) -> str:
        return mysql_types.text_expression(column, quote(column.name))

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

    def lower_bound_sql(self, schema: str, table: str, cursor: Column, lag_seconds: float) -> str:
        column = quote(cursor.name)
        expression = f"MAX({column})"
        if mysql_types.is_temporal(cursor.data_type) and lag_seconds > 0:
            micros = int(lag_seconds * 1_000_000)
            expression = f"MAX({column}) - INTERVAL {micros} MICROSECOND"
        return f"SELECT CAST({expression} AS CHAR) FROM {qualified(schema, table)}"

    def aggregate(self, engine: Engine, rows: RowSet) -> tuple[int, int, int]:
        """Computed by the server: only three numbers cross the network."""
        return checksum.fold_on_server(engine, rows)

    def row_digests(
        self, engine: Engine, rows: RowSet, key: Sequence[str]
    ) -> dict[object, object]:
        return checksum.digests_on_server(engine, rows, key)

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

    def alter_table(
        self, engine: Engine, schema: str, table: str, clauses: Sequence[Clause]
    ) -> list[str]:
        name = qualified(schema, table)
        try:
            tgt.execute_ddl(engine, name, migration_sql.alter_sql(schema, table, clauses))
        except sa.exc.DBAPIError as exc:
            unique = [c.index.name for c in clauses if isinstance(c, AddIndex) and c.index.unique]
            if mysql_error_code(exc) != DUPLICATE_ENTRY or not unique:
                raise
            tgt.execute_ddl(engine, name, migration_sql.alter_sql(schema, table, clauses, False))
            return unique
        return []

    def columns_holding(
        self, engine: Engine, schema: str, table: str, columns: Sequence[str], *, nulls: bool
    ) -> set[str]:
        return _columns_holding(engine, schema, table, columns, nulls)

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
        like = qualified(self.target_schema(), current.name)
        tgt.recreate_like(engine, self.staging_schema(), self.staging_table(current.name), like)

    def swap_into_place(self, engine: Engine, schema: TableSchema, target_exists: bool) -> None:
        staging = (self.staging_schema(), self.staging_table(schema.name))
        tgt.swap_into_place(engine, staging, self.target_schema(), schema.name, target_exists)

    def merge(self, engine: Engine, schema: TableSchema, key: tuple[str, ...]) -> None:
        staging = (self.staging_schema(), self.staging_table(schema.name))
        try:
            tgt.execute(engine, tgt.merge_sql(schema, staging, self.target_schema()))
        except sa.exc.DBAPIError as exc:
            if not schema.unique_keys or mysql_error_code(exc) != DUPLICATE_ENTRY:
                raise
            # unique values moved between rows: see target.replace_sql
            tgt.execute(engine, tgt.replace_sql(schema, staging, self.target_schema()))
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

    def destination_engine(self, engine: Engine) -> Engine:
        return engine


class SQLiteDialect:
    """SQLite, for the self-contained demo: same sync path, simpler storage."""

    name: ClassVar[str] = "sqlite"
    placeholder: ClassVar[str] = "?"
    reads_ahead: ClassVar[bool] = False
    copies_in_chunks: ClassVar[bool] = False
    alters_in_place: ClassVar[bool] = False  # SQLite's ALTER TABLE cannot modify columns

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def source_schema(self) -> str:
        return "main"

    def target_schema(self) -> str:
        return "main"

    def staging_schema(self) -> str:
        return self.settings.staging_db_name or "dbsync_staging"

    @staticmethod
    def staging_table(table: str) -> str:
        return staging_table(table)

    def read_table(self, conn: Connection, schema: str, table: str) -> TableSchema | None:
        exists = conn.execute(
            sa.text(f"SELECT 1 FROM {quote(schema)}.sqlite_master WHERE type='table' AND name=:t"),
            {"t": table},
        ).first()
        if exists is None:
            return None
        rows = conn.execute(sa.text(f"PRAGMA {quote(schema)}.table_info({quote(table)})")).all()
        columns = tuple(
            Column(
                name=r[1],
                column_type=(r[2] or "text").lower(),
                data_type=(r[2] or "text").lower().split("(")[0],
                nullable=not r[3],
            )
            for r in rows
        )
        key = tuple(r[1] for r in sorted((r for r in rows if r[5]), key=lambda r: r[5]))
        return TableSchema(
            name=table,
            columns=columns,
            primary_key=key,
            rendered_primary_key=tuple(quote(k) for k in key),
        )

    def text_expression(self, column: Column) -> str:
        return f"CAST({quote(column.name)} AS TEXT)"

    def arrow_reader_url(self, engine: Engine) -> str | None:
        return None

    def key_side(self, keys: KeySet) -> Side:
        """SQLite has neither CRC32 nor BIT_XOR: its keys are folded in Python."""
        columns = [keys.schema.column(k) for k in keys.key]
        return LocalSide.read(keys, [self.text_expression(c) for c in columns if c is not None])

    def named_param(self, name: str) -> str:
        return f":{name}"

    def begin_snapshot(self, raw: Any) -> Any:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        return cursor

    def lower_bound_sql(self, schema: str, table: str, cursor: Column, lag_seconds: float) -> str:
        return f"SELECT CAST(MAX({quote(cursor.name)}) AS TEXT) FROM {qualified(schema, table)}"

    def aggregate(self, engine: Engine, rows: RowSet) -> tuple[int, int, int]:
        """Folded in Python: SQLite lacks MD5."""
        return checksum.fold_locally(engine, rows, self.text_expression)

    def row_digests(
        self, engine: Engine, rows: RowSet, key: Sequence[str]
    ) -> dict[object, object]:
        return checksum.digests_locally(engine, rows, key, self.text_expression)

    def ensure_staging(self, engine: Engine) -> None:
        return None  # attached on connect (see engines._sqlite_engine)

    def ensure_target(self) -> None:
        return None  # SQLite creates its database file on connect

    @contextmanager
    def first_run_guard(self, engine: Engine) -> Iterator[None]:
        yield

    def create_staging(
        self,
        engine: Engine,
        source: TableSchema,
        key: tuple[str, ...],
        cursor: str | None,
        *,
        with_indexes: bool = False,
    ) -> None:
        staged = self.staging_table(source.name)
        tgt.drop_table(engine, self.staging_schema(), staged)
        tgt.execute(engine, self._create_sql(source, self.staging_schema(), key, staged))

    def stage_like_target(self, engine: Engine, current: TableSchema, key: tuple[str, ...]) -> None:
        self.create_staging(engine, current, key, None)

    def index_staging(self, engine: Engine, source: TableSchema, cursor: str | None) -> None:
        return None

    def alter_table(
        self, engine: Engine, schema: str, table: str, clauses: Sequence[Clause]
    ) -> list[str]:
        raise NotImplementedError("SQLite tables are rebuilt, never altered (alters_in_place)")

    def columns_holding(
        self, engine: Engine, schema: str, table: str, columns: Sequence[str], *, nulls: bool
    ) -> set[str]:
        return _columns_holding(engine, schema, table, columns, nulls)

    def table_footprint(self, engine: Engine, schema: str, table: str) -> tuple[int, int]:
        return 0, 0  # no statistics kept; the demo never chunks

    def index_memory(self, engine: Engine) -> int:
        return 0

    @staticmethod
    def _create_sql(schema: TableSchema, database: str, key: tuple[str, ...], name: str) -> str:
        columns = [
            f"{quote(c.name)} {c.column_type.upper()}{'' if c.nullable else ' NOT NULL'}"
            for c in schema.columns
        ]
        key = key or schema.primary_key
        if key:
            columns.append("PRIMARY KEY (" + ", ".join(quote(k) for k in key) + ")")
        return f"CREATE TABLE {qualified(database, name)} ({', '.join(columns)})"

    def swap_into_place(self, engine: Engine, schema: TableSchema, target_exists: bool) -> None:
        """Replace the target's rows in one transaction: readers see old rows or new rows."""
        target, staging = (
            qualified("main", schema.name),
            qualified(self.staging_schema(), self.staging_table(schema.name)),
        )
        key = self._key(engine, schema)
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {target}"))
            conn.execute(sa.text(self._create_sql(schema, "main", key, schema.name)))
            conn.execute(sa.text(f"INSERT INTO {target} SELECT * FROM {staging}"))
            conn.execute(sa.text(f"DROP TABLE {staging}"))

    def _key(self, engine: Engine, schema: TableSchema) -> tuple[str, ...]:
        with engine.connect() as conn:
            staged = self.read_table(conn, self.staging_schema(), self.staging_table(schema.name))
        return staged.primary_key if staged else schema.primary_key

    def merge(self, engine: Engine, schema: TableSchema, key: tuple[str, ...]) -> None:
        names = [quote(c) for c in schema.column_names]
        updates = ", ".join(
            f"{n} = excluded.{n}" for n in names if n not in {quote(k) for k in key}
        )
        conflict = "DO UPDATE SET " + updates if updates else "DO NOTHING"
        target, staging = (
            qualified("main", schema.name),
            qualified(self.staging_schema(), self.staging_table(schema.name)),
        )
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"INSERT INTO {target} ({', '.join(names)}) "
                    f"SELECT {', '.join(names)} FROM {staging} "
                    f"WHERE true ON CONFLICT ({', '.join(quote(k) for k in key)}) {conflict}"
                )
            )
            conn.execute(sa.text(f"DROP TABLE {staging}"))

    def table_lock(self, engine: Engine, table: str) -> HeldLock:
        return FileLock(
            f"{engine.url.database}.{hashlib.sha256(table.encode()).hexdigest()[:16]}.lock"
        )

    @staticmethod
    def status_schema(database: str) -> str:
        return "main"

    @staticmethod
    def excluded(column: str) -> str:
        return f"excluded.{column}"

    @staticmethod
    def upsert_clause(key: str) -> str:
        return f"ON CONFLICT ({key}) DO UPDATE SET"

    @staticmethod
    def table_options() -> str:
        return ""

    def destination_engine(self, engine: Engine) -> Engine:
        """dlt attaches its dataset files itself: give it an engine without our attach hook."""
        return sa.create_engine(engine.url, poolclass=sa.pool.NullPool)

    def staging_file(self, database_file: str) -> str:
        """Where dlt keeps the staging dataset of a SQLite database (it names it so)."""
        path = Path(database_file)
        return str(path.parent / f"{path.stem}__{self.staging_schema()}{path.suffix}")


def _columns_holding(
    engine: Engine, schema: str, table: str, columns: Sequence[str], nulls: bool
) -> set[str]:
    if not columns:
        return set()
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(migration_sql.holding_sql(schema, table, columns, nulls))
        ).one()
    return {column for column, held in zip(columns, found, strict=True) if held}


def dialect_class(backend: str) -> type[MySQLDialect] | type[SQLiteDialect]:
    """The dialect of a SQLAlchemy backend name (``engine.dialect.name``)."""
    return SQLiteDialect if backend == "sqlite" else MySQLDialect


def dialect_for(settings: Settings) -> Dialect:
    """The dialect of the configured target."""
    return dialect_class(settings.target.url.get_backend_name())(settings)
