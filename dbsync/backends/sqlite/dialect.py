"""SQLite behind the :class:`dbsync.dialect.Dialect` protocol: the demo's database."""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dbsync.backends.key_folds import LocalSide
from dbsync.backends.mysql import checksum, extract, migration
from dbsync.backends.mysql import rows as row_reads
from dbsync.backends.mysql import target as tgt
from dbsync.backends.mysql import window as window_sql
from dbsync.backends.mysql.key_ranges import range_predicate
from dbsync.backends.mysql.loader import dbsync_sqlalchemy
from dbsync.backends.mysql.lock import FileLock
from dbsync.backends.mysql.schema import (
    qualified,
    quote,
    require_source_table,
)
from dbsync.config.errors import ConfigProblem, SafePointUnavailable
from dbsync.config.names import staging_table
from dbsync.config.settings import Settings
from dbsync.model import (
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


NOT_CHUNKED = "SQLite does not copy in chunks (SQLiteDialect.copies_in_chunks is False)"


class SQLiteDialect:
    """SQLite, for the self-contained demo: same sync path, simpler storage."""

    name: ClassVar[str] = "sqlite"
    placeholder: ClassVar[str] = "?"
    reads_ahead: ClassVar[bool] = False
    copies_in_chunks: ClassVar[bool] = False
    alters_in_place: ClassVar[bool] = False  # SQLite's ALTER TABLE cannot modify columns
    compares_rows: ClassVar[bool] = False  # tables without modifier: the whole copy
    syncs_side_by_side: ClassVar[bool] = False  # one file, one writer: one table at a time

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

    @staticmethod
    def qualified(schema: str, table: str) -> str:
        return qualified(schema, table)  # SQLite accepts MySQL's backtick quoting

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
        return f"CAST({quote(column.name)} AS TEXT)"

    def range_predicate(
        self, key: Sequence[str], lower: Key | None, upper: Key | None
    ) -> tuple[str, list]:
        return range_predicate(key, lower, upper, self.placeholder)

    def key_boundaries(
        self, engine: Engine, database: str, table: str, key: Sequence[str], every: int
    ) -> list[Key]:
        return row_reads.key_boundaries(self, engine, database, table, key, every)

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

    def oldest_activity(self, engine: Engine) -> datetime:
        raise SafePointUnavailable("SQLite keeps no list of open transactions")

    def in_writer_zone(self, engine: Engine, moment: datetime, zone: str | None) -> datetime:
        raise SafePointUnavailable("SQLite keeps no time zones")

    def future_cursor_rows(
        self, engine: Engine, table: str, cursor: Column, zone: str | None
    ) -> int:
        return 0

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
        return None  # no MD5: the demo's small windows are read whole

    def bucket_predicate(self, schema: TableSchema, key: Sequence[str], buckets: Buckets) -> str:
        raise NotImplementedError("SQLite windows are read whole")

    def lower_bound_sql(self, schema: str, table: str, cursor: Column, lag_seconds: float) -> str:
        return f"SELECT CAST(MAX({quote(cursor.name)}) AS TEXT) FROM {qualified(schema, table)}"

    def highest_cursor(
        self, engine: Engine, schema: str, table: str, cursor: Column, lag_seconds: float
    ) -> str | None:
        return extract.highest_cursor(self, engine, schema, table, cursor, lag_seconds)

    def stream_rows(self, read: Read) -> Iterator[pa.Table]:
        return extract.stream_rows(read)

    def aggregate(self, engine: Engine, rows: RowSet) -> tuple[int, int, int]:
        """Folded in Python: SQLite lacks MD5."""
        return checksum.fold_locally(engine, rows, self.text_expression)

    def row_digests(
        self, engine: Engine, rows: RowSet, key: Sequence[str]
    ) -> dict[object, object]:
        return checksum.digests_locally(engine, rows, key, self.text_expression)

    # --- read-ahead: the demo's storage is local, nothing to warm (reads_ahead is False) ---
    def cursor_index(self, schema: TableSchema, cursor: str) -> Index | None:
        return None

    def window_keys(
        self, engine: Engine, table: str, key: Sequence[str], window: Window, limit: int
    ) -> list[Key]:
        return []

    def read_ahead_rows(
        self,
        engine: Engine,
        table: str,
        key: Sequence[str],
        index: Index | None,
        keys: Sequence[Key],
    ) -> None:
        return None

    def ensure_staging(self, engine: Engine) -> None:
        return None  # attached on connect (see engines._sqlite_engine)

    def ensure_target(self) -> None:
        return None  # SQLite creates its database file on connect

    def is_empty(self, engine: Engine, schema: str, table: str) -> bool:
        return tgt.is_empty(engine, schema, table)

    def count_rows(self, engine: Engine, schema: str, table: str) -> int:
        return tgt.count_rows(engine, schema, table)

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

    @staticmethod
    def widens(new: str, old: str) -> bool:
        return False  # never asked: every difference is a rebuild (alters_in_place)

    @staticmethod
    def secondary_indexes(source: TableSchema, cursor: str | None) -> list[Index]:
        return []  # the demo's tables keep no secondary indexes

    def alter_table(
        self, engine: Engine, schema: str, table: str, clauses: Sequence[Clause]
    ) -> list[str]:
        raise NotImplementedError("SQLite tables are rebuilt, never altered (alters_in_place)")

    def columns_holding(
        self, engine: Engine, schema: str, table: str, columns: Sequence[str], *, nulls: bool
    ) -> set[str]:
        return migration.columns_holding(engine, schema, table, columns, nulls)

    def table_footprint(self, engine: Engine, schema: str, table: str) -> tuple[int, int]:
        return 0, 0  # no statistics kept; the demo never chunks

    def index_memory(self, engine: Engine) -> int:
        return 0

    @staticmethod
    def _create_sql(schema: TableSchema, database: str, key: tuple[str, ...], name: str) -> str:
        columns = [SQLiteDialect.column_definition(c) for c in schema.columns]
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

    def read_slot(self, engine: Engine, table: str) -> AbstractContextManager[None]:
        return nullcontext()  # the demo's embedded source has no server to protect

    def read_slot_usage(self, engine: Engine, tables: Sequence[str]) -> SlotUsage | None:
        return None

    def table_lock(self, engine: Engine, table: str) -> HeldLock:
        return FileLock(
            f"{engine.url.database}.{hashlib.sha256(table.encode()).hexdigest()[:16]}.lock"
        )

    # --- chunked copies: never for the demo (copies_in_chunks is False) --------------------
    def walk_split_points(
        self,
        engine: Engine,
        database: str,
        table: str,
        key: Sequence[str],
        every: int,
        after: Key | None = None,
    ) -> Generator[Key, None, None]:
        raise NotImplementedError(NOT_CHUNKED)

    def range_sql(self, key: Sequence[str], lower: Key | None, upper: Key | None) -> str:
        raise NotImplementedError(NOT_CHUNKED)

    def table_exists(self, engine: Engine, schema: str, table: str) -> bool:
        with engine.connect() as conn:
            return self.read_table(conn, schema, table) is not None

    def target_indexes(self, source: TableSchema, cursor: str | None) -> list[Index]:
        return []  # the demo's tables get their primary key only (see _create_sql)

    @staticmethod
    def column_definition(column: Column) -> str:
        return f"{quote(column.name)} {column.column_type.upper()}" + (
            "" if column.nullable else " NOT NULL"
        )

    def copy_progress(self, engine: Engine, database: str) -> CopyProgressStore:
        raise NotImplementedError(NOT_CHUNKED)

    def chunk_holder(self, engine: Engine) -> ChunkHolder:
        raise NotImplementedError(NOT_CHUNKED)

    def load_file(
        self, engine: Engine, schema: str, table: str, batches: Iterable[pa.RecordBatch]
    ) -> ChunkLoad:
        raise NotImplementedError(NOT_CHUNKED)

    def clear_range(self, cursor: Any, table: str, key_range: str) -> None:
        raise NotImplementedError(NOT_CHUNKED)

    # --- privileges: a SQLite file has no users or grants, so no problems -------------------
    def select_problems(
        self, engine: Engine, database: str, tables: list[str]
    ) -> list[ConfigProblem]:
        return []

    def database_problems(
        self, conn: Connection, databases: tuple[str, ...]
    ) -> list[ConfigProblem]:
        return []

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

    def source_has_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> list[bool]:
        qualified_table = qualified(self.source_schema(), table)
        return row_reads.keys_present(engine, qualified_table, key, keys, self.placeholder)

    def row_sides(
        self, source: KeySet, target: KeySet, columns: Sequence[str]
    ) -> tuple[RowSide, RowSide]:
        raise NotImplementedError("SQLite does not compare rows (compares_rows is False)")

    def table_checksum(self, engine: Engine, schema: str, table: str) -> int | None:
        return None  # no engine checksum: a keyless table is copied whenever it is synced

    def written_within(
        self, engine: Engine, schema: str, table: str, seconds: float
    ) -> bool | None:
        return None  # SQLite keeps no note of a table's last change

    def read_source_rows(
        self,
        engine: Engine,
        schema: TableSchema,
        key: Sequence[str],
        keys: Sequence[Key],
        cursor_cap: tuple[str, str] | None,
    ) -> list[tuple[Any, ...]]:
        raise NotImplementedError("SQLite does not compare rows (compares_rows is False)")

    def write_target_rows(
        self,
        engine: Engine,
        schema: TableSchema,
        key: Sequence[str],
        rows: Sequence[Sequence[Any]],
        gone: Sequence[Key],
    ) -> int:
        raise NotImplementedError("SQLite does not compare rows (compares_rows is False)")

    def delete_target_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> int:
        qualified_table = qualified(self.target_schema(), table)
        return tgt.delete_keys(engine, qualified_table, key, keys, self.placeholder)

    def dlt_destination(self, engine: Engine) -> Any:
        """dbsync's sqlalchemy destination, whose load job is LOAD DATA LOCAL INFILE on MySQL."""
        return dbsync_sqlalchemy(credentials=self.destination_engine(engine))

    def destination_engine(self, engine: Engine) -> Engine:
        """dlt attaches its dataset files itself: give it an engine without our attach hook."""
        return sa.create_engine(engine.url, poolclass=sa.pool.NullPool)

    def staging_file(self, database_file: str) -> str:
        """Where dlt keeps the staging dataset of a SQLite database (it names it so)."""
        path = Path(database_file)
        return str(path.parent / f"{path.stem}__{self.staging_schema()}{path.suffix}")
