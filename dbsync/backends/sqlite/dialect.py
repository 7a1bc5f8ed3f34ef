"""SQLite behind the :class:`dbsync.dialect.Dialect` protocol: the demo's database."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dbsync.backends.key_folds import LocalSide
from dbsync.backends.mysql import checksum, migration
from dbsync.backends.mysql import rows as row_reads
from dbsync.backends.mysql import target as tgt
from dbsync.backends.mysql.loader import dbsync_sqlalchemy
from dbsync.backends.mysql.lock import FileLock
from dbsync.backends.mysql.schema import qualified, quote
from dbsync.config.names import staging_table
from dbsync.config.settings import Settings
from dbsync.model import (
    Clause,
    Column,
    HeldLock,
    Index,
    Key,
    KeySet,
    RowSet,
    Side,
    TableSchema,
)


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
        if not columns:
            return set()
        with engine.connect() as conn:
            found = conn.execute(
                sa.text(migration.holding_sql(schema, table, columns, nulls))
            ).one()
        return {column for column, held in zip(columns, found, strict=True) if held}

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

    def source_has_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> list[bool]:
        qualified_table = qualified(self.source_schema(), table)
        return row_reads.keys_present(engine, qualified_table, key, keys, self.placeholder)

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
