"""What differs between database kinds, written down as one interface: :class:`Dialect`.

MySQL/MariaDB is the product; SQLite exists so ``dbsync demo`` runs the very same sync path
on a machine without any database server. Everything the sync engine says to a database that
is not plain, portable SQL goes through a ``Dialect``; :class:`MySQLDialect` and
:class:`SQLiteDialect` are siblings behind it, and :func:`dialect_class` is the one place
that maps a backend name to its dialect. A new capability is a new member of
:class:`Dialect`, documented there and implemented by both.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol

from sqlalchemy.engine import Connection, Engine

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


class Dialect(Protocol):
    """The extension points of a database kind, in the order a sync meets them.

    Capabilities (class attributes):

    - ``name``: the backend, as SQLAlchemy names it (``mysql``, ``sqlite``).
    - ``placeholder``: the DB-API positional parameter marker (``%s``, ``?``).
    - ``reads_ahead``: whether warming the target's pages before a merge pays off
      (:mod:`dbsync.sync.read_ahead`); off where storage is local.
    - ``copies_in_chunks``: whether a full copy of a table over ``CHUNK_ROWS`` is split into
      key ranges copied side by side (:mod:`dbsync.copy.chunked`); off for the demo's SQLite.
    - ``alters_in_place``: whether a table whose definition differs from the source's can
      follow it with ``ALTER TABLE`` (:mod:`dbsync.sync.migration`); otherwise it is rebuilt.

    Names: :meth:`source_schema`, :meth:`target_schema`, :meth:`staging_schema` are the
    schemas (databases) tables are read from, merged into and staged in;
    :meth:`staging_table` the name a table is staged under.

    Reading the source: :meth:`read_table` (a table's definition, or None),
    :meth:`text_expression` (a column's exact text form in a SELECT), :meth:`named_param`,
    :meth:`arrow_reader_url` (a connectorx URL, or None to read through the driver),
    :meth:`begin_snapshot` (a cursor inside a consistent read), :meth:`lower_bound_sql`
    (where an incremental read starts), and where checksums and key folds are computed:
    :meth:`aggregate` (row count and checksum of a set of rows), :meth:`row_digests` (per
    row), :meth:`key_side` (key-set folds for delete propagation) and :meth:`source_has_keys`
    (the re-check before a delete).

    Writing the target: :meth:`ensure_target`, :meth:`ensure_staging`, :meth:`create_staging`,
    :meth:`index_staging`, :meth:`stage_like_target`, :meth:`swap_into_place` (full copy),
    :meth:`alter_table` and :meth:`columns_holding` (schema migrations, with :meth:`widens`
    and :meth:`secondary_indexes` for the rules),
    :meth:`merge` (incremental), :meth:`delete_target_keys` (propagated deletes),
    :meth:`first_run_guard` (around dlt's first run),
    :meth:`dlt_destination` (what dlt loads the staging table through) on
    :meth:`destination_engine` (the engine dlt loads through) and :meth:`table_lock` (one
    sync per table at a time; a :class:`dbsync.model.HeldLock`).

    Statements without settings (static, for :mod:`dbsync.backends.status`'s status table):
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
        """(row count, sums of the rows' MD5 halves) of ``rows``
        (:mod:`dbsync.backends.mysql.checksum`)."""

    def row_digests(
        self, engine: Engine, rows: RowSet, key: Sequence[str]
    ) -> dict[object, object]:
        """Each row's key identity and content digest (a mismatching chunk, row by row)."""

    def key_side(self, keys: KeySet) -> Side:
        """Where a table's keys are folded for the delete comparison
        (:mod:`dbsync.compare.keydiff`)."""

    def source_has_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> list[bool]:
        """For each of ``keys``: does the source table hold a row with it, by the server's own
        equality (the re-check before a delete)?"""

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

    # --- schema migrations (dbsync.sync.migration decides, these apply) -------------
    @staticmethod
    def widens(new: str, old: str) -> bool:
        """Whether every value of column type ``old`` fits column type ``new`` unchanged."""

    @staticmethod
    def secondary_indexes(source: TableSchema, cursor: str | None) -> list[Index]:
        """The secondary indexes a target table of ``source`` gets (the source's, plus one
        on the cursor column unless an index already starts with it)."""

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

    def delete_target_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> int:
        """Delete the target table's rows with these keys in one short transaction; returns
        how many."""

    def first_run_guard(self, engine: Engine) -> AbstractContextManager[None]:
        """Held around dlt's run, serializing its very first runs on a staging schema."""

    def table_lock(self, engine: Engine, table: str) -> HeldLock:
        """The table's lock (raises TableBusy on entering when another process holds it)."""

    def dlt_destination(self, engine: Engine) -> Any:
        """dlt's destination the staged rows load through, on ``engine`` (the target's)."""

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
