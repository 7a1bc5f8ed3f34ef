"""What differs between database kinds, written down as one interface: :class:`Dialect`.

MySQL/MariaDB is the product; SQLite exists so ``dbsync demo`` runs the very same sync path
on a machine without any database server. Everything the sync engine says to a database that
is not plain, portable SQL goes through a ``Dialect``; :class:`MySQLDialect` and
:class:`SQLiteDialect` are siblings behind it, and :func:`dialect_class` is the one place
that maps a backend name to its dialect. A new capability is a new member of
:class:`Dialect`, documented there and implemented by both.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from sqlalchemy.engine import Connection, Engine

from dbsync.config.errors import ConfigProblem
from dbsync.config.settings import Settings
from dbsync.model import (
    Buckets,
    Chunk,
    Clause,
    Column,
    Copy,
    HeldLock,
    Index,
    Key,
    KeySet,
    Progress,
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



class Dialect(Protocol):
    """The extension points of a database kind, in the order a sync meets them.

    Capabilities (class attributes):

    - ``name``: the backend, as SQLAlchemy names it (``mysql``, ``sqlite``).
    - ``placeholder``: the DB-API positional parameter marker (``%s``, ``?``).
    - ``reads_ahead``: whether warming the target's pages before a merge pays off
      (:mod:`dbsync.sync.read_ahead`); off where storage is local.
    - ``copies_in_chunks``: whether a full copy of a table over ``CHUNK_ROWS`` is split into
      key ranges copied side by side (:mod:`dbsync.copy.chunked`); off for the demo's SQLite.
    - ``compares_rows``: whether row content is compared and repaired by differences
      (:mod:`dbsync.compare.reconcile`: :meth:`row_sides`, :meth:`table_checksum`,
      :meth:`read_source_rows`, :meth:`write_target_rows`); off for the demo's SQLite, whose
      tables without modifier keep the whole copy and whose incremental tables are never
      reconciled.
    - ``alters_in_place``: whether a table whose definition differs from the source's can
      follow it with ``ALTER TABLE`` (:mod:`dbsync.sync.migration`); otherwise it is rebuilt.
    - ``syncs_side_by_side``: whether one process syncs several tables at once, their small
      reads staged by one dlt run (:mod:`dbsync.sync.many`); off for the demo's SQLite file.

    Names: :meth:`source_schema`, :meth:`target_schema`, :meth:`staging_schema` are the
    schemas (databases) tables are read from, merged into and staged in;
    :meth:`staging_table` the name a table is staged under; :meth:`qualified` a table's
    name in statements.

    Reading the source: :meth:`read_table` (a table's definition, or None),
    :meth:`require_source_table` (the same, checked against tables.json),
    :meth:`stream_rows` (the extraction), :meth:`highest_cursor` (where an incremental read
    starts, with :mod:`dbsync.sync.cursor_guard`),
    :meth:`text_expression` (a column's exact text form in a SELECT), :meth:`named_param`,
    :meth:`arrow_reader_url` (a connectorx URL, or None to read through the driver),
    :meth:`begin_snapshot` (a cursor inside a consistent read), :meth:`lower_bound_sql`
    (where an incremental read starts), key ranges of a comparison (:meth:`range_predicate`,
    :meth:`key_boundaries`), and where checksums and key folds are computed:
    :meth:`aggregate` (row count and checksum of a set of rows), :meth:`row_digests` (per
    row), :meth:`key_side` (key-set folds for delete propagation) and :meth:`source_has_keys`
    (the re-check before a delete). The cursor's safe point (:mod:`dbsync.sync.cursor_guard`):
    :meth:`oldest_activity`, :meth:`in_writer_zone`, :meth:`future_cursor_rows`,
    :meth:`highest_cursor`. Windows compared by buckets (:mod:`dbsync.sync.window_diff`):
    :meth:`window_rows`, :meth:`window_sides`, :meth:`bucket_predicate`.

    Reading ahead (warming the target's pages a merge will write, where ``reads_ahead``):
    :meth:`cursor_index`, :meth:`window_keys` (from the source), :meth:`read_ahead_rows` (in
    the target).

    Writing the target: :meth:`ensure_target`, :meth:`is_empty`, :meth:`count_rows`,
    :meth:`ensure_staging`, :meth:`create_staging`,
    :meth:`index_staging`, :meth:`stage_like_target`, :meth:`swap_into_place` (full copy),
    :meth:`alter_table` and :meth:`columns_holding` (schema migrations, with :meth:`widens`
    and :meth:`secondary_indexes` for the rules),
    :meth:`merge` (incremental), :meth:`delete_target_keys` (propagated deletes),
    :meth:`first_run_guard` (around dlt's first run),
    :meth:`dlt_destination` (what dlt loads the staging table through) on
    :meth:`destination_engine` (the engine dlt loads through) and :meth:`table_lock` (one
    sync per table at a time; a :class:`dbsync.model.HeldLock`).

    Chunked copies (:mod:`dbsync.copy.chunked`, where ``copies_in_chunks``):
    :meth:`walk_split_points` and :meth:`range_sql` (the key ranges), :meth:`table_exists`,
    :meth:`target_indexes` and :meth:`column_definition` (what staging is made of), and the
    objects a copy holds: :meth:`copy_progress` (a :class:`CopyProgressStore`),
    :meth:`chunk_holder` (a :class:`ChunkHolder`), :meth:`load_file` (a :class:`ChunkLoad`)
    with :meth:`clear_range` before it.

    Privileges (``check-config``): :meth:`select_problems` (source), :meth:`database_problems`
    (target).

    Statements without settings (static, for :mod:`dbsync.backends.status`'s status table):
    :meth:`status_schema`, :meth:`excluded`, :meth:`upsert_clause`, :meth:`table_options`.
    """

    name: ClassVar[str]
    placeholder: ClassVar[str]
    reads_ahead: ClassVar[bool]
    copies_in_chunks: ClassVar[bool]
    compares_rows: ClassVar[bool]
    alters_in_place: ClassVar[bool]
    syncs_side_by_side: ClassVar[bool]
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

    @staticmethod
    def qualified(schema: str, table: str) -> str:
        """``schema``.``table`` as this dialect's statements name it (quoted)."""

    # --- reading ----------------------------------------------------------------------
    def read_table(self, conn: Connection, schema: str, table: str) -> TableSchema | None:
        """The table's definition, or None if it does not exist."""

    def require_source_table(
        self,
        conn: Connection,
        database: str,
        table: str,
        key: tuple[str, ...],
        modifier: str | None,
    ) -> TableSchema:
        """The source table's definition (:meth:`read_table`), checked against the configured
        ``key`` and cursor ``modifier``: raises SourceTableMissing or IncompatibleSchema when
        they do not fit it."""

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

    def highest_cursor(
        self, engine: Engine, schema: str, table: str, cursor: Column, lag_seconds: float
    ) -> str | None:
        """The highest value of ``cursor`` in ``schema``.``table`` minus the lag where the
        cursor type allows (:meth:`lower_bound_sql`); None for an empty table."""

    def stream_rows(self, read: Read) -> Iterator[pa.Table]:
        """The rows ``read`` selects, as arrow tables of exact text values, ``fetch_limit``
        rows at a time, counted into ``read.stats`` (and the snapshot's own count when
        ``read.count_snapshot``); a reader failure ends it as a TransientError or
        FatalError naming the table."""

    def aggregate(self, engine: Engine, rows: RowSet) -> tuple[int, int, int]:
        """(row count, sums of the rows' MD5 halves) of ``rows``
        (:mod:`dbsync.backends.mysql.checksum`)."""

    def row_digests(
        self, engine: Engine, rows: RowSet, key: Sequence[str]
    ) -> dict[object, object]:
        """Each row's key identity and content digest (a mismatching chunk, row by row)."""

    def range_predicate(
        self, key: Sequence[str], lower: Key | None, upper: Key | None
    ) -> tuple[str, list]:
        """``lower <= key < upper`` (lexicographic, either end open) as a WHERE condition with
        positional parameters (``placeholder``), and its parameters."""

    def key_boundaries(
        self, engine: Engine, database: str, table: str, key: Sequence[str], every: int
    ) -> list[Key]:
        """Every ``every``-th key of the table in key order, read in one consistent snapshot
        (where ``dbsync verify`` cuts its chunks)."""

    def key_side(self, keys: KeySet) -> Side:
        """Where a table's keys are folded for the delete comparison
        (:mod:`dbsync.compare.keydiff`)."""

    def source_has_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> list[bool]:
        """For each of ``keys``: does the source table hold a row with it, by the server's own
        equality (the re-check before a delete)?"""

    def oldest_activity(self, engine: Engine) -> datetime:
        """The source's clock lowered to the start of its oldest running statement (not a
        plain SELECT) and its oldest open transaction that wrote a row (other connections),
        in UTC; raises SafePointUnavailable (with the grant that fixes it) when it cannot."""

    def in_writer_zone(self, engine: Engine, moment: datetime, zone: str | None) -> datetime:
        """``moment`` (UTC) as writers in ``zone`` (default: the server's) stamp a DATETIME;
        raises SafePointUnavailable when the server cannot convert."""

    def future_cursor_rows(
        self, engine: Engine, table: str, cursor: Column, zone: str | None
    ) -> int:
        """Rows of source table ``table`` whose cursor is ahead of the source's clock."""

    def window_rows(
        self,
        engines: tuple[Engine, Engine],
        source: TableSchema,
        target: TableSchema,
        window: Window,
    ) -> WindowRows | None:
        """An incremental read's ``window`` on source and target, counted; None when the
        target lacks some of the source's columns."""

    def window_sides(
        self, engines: tuple[Engine, Engine], rows: tuple[RowSet, RowSet], key: Sequence[str]
    ) -> tuple[Side, Side] | None:
        """A window's rows on both sides, folded per key bucket; None where the rows cannot be
        folded where they are (then a window is read whole)."""

    def bucket_predicate(self, schema: TableSchema, key: Sequence[str], buckets: Buckets) -> str:
        """A predicate selecting the rows of ``buckets`` (values inlined), for a Window."""

    # --- read-ahead (dbsync.sync.read_ahead, where ``reads_ahead``) --------------------
    def cursor_index(self, schema: TableSchema, cursor: str) -> Index | None:
        """The secondary index of ``schema`` led by the ``cursor`` column that a read-ahead
        can find a window's keys through; None: no such index (nothing is read ahead)."""

    def window_keys(
        self, engine: Engine, table: str, key: Sequence[str], window: Window, limit: int
    ) -> list[Key]:
        """At most ``limit`` keys of the rows of ``table`` (qualified) in ``window``."""

    def read_ahead_rows(
        self,
        engine: Engine,
        table: str,
        key: Sequence[str],
        index: Index | None,
        keys: Sequence[Key],
    ) -> None:
        """Read the rows of ``keys`` (and their ``index`` entries) of ``table`` (qualified)
        into the server's cache."""

    def row_sides(
        self, source: KeySet, target: KeySet, columns: Sequence[str]
    ) -> tuple[RowSide, RowSide]:
        """Where both tables' rows are folded by content (:mod:`dbsync.compare.rowdiff`), over
        ``columns`` taken by name, each row's content formed alike on both sides."""

    def table_checksum(self, engine: Engine, schema: str, table: str) -> int | None:
        """The storage engine's own checksum of a whole table; None if it keeps none."""

    def written_within(
        self, engine: Engine, schema: str, table: str, seconds: float
    ) -> bool | None:
        """Whether the server noted a committed change to the table in the last ``seconds``
        (a hint for choosing between exact methods, never a verdict); None: it keeps no note."""

    def read_source_rows(
        self,
        engine: Engine,
        schema: TableSchema,
        key: Sequence[str],
        keys: Sequence[Key],
        cursor_cap: tuple[str, str] | None,
    ) -> list[tuple[Any, ...]]:
        """The source table's rows with these keys as they are now, every column as exact
        text (with ``cursor_cap`` = (column, value): only rows whose cursor is at most it, or
        NULL)."""

    def write_target_rows(
        self,
        engine: Engine,
        schema: TableSchema,
        key: Sequence[str],
        rows: Sequence[Sequence[Any]],
        gone: Sequence[Key],
    ) -> int:
        """In one transaction: upsert ``rows`` (exact text of ``schema``'s columns) into the
        target table and delete the rows with the ``gone`` keys; returns how many went."""

    # --- writing ----------------------------------------------------------------------
    def ensure_target(self) -> None:
        """Make the target database exist (once per process)."""

    def is_empty(self, engine: Engine, schema: str, table: str) -> bool:
        """Whether ``schema``.``table`` holds no row."""

    def count_rows(self, engine: Engine, schema: str, table: str) -> int:
        """The rows of ``schema``.``table`` (an exact count)."""

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
        """Upsert the staged rows into the target by ``key``; drop the staging table (or
        empty it, kept for the table's next sync)."""

    def delete_target_keys(
        self, engine: Engine, table: str, key: Sequence[str], keys: Sequence[Key]
    ) -> int:
        """Delete the target table's rows with these keys in one short transaction; returns
        how many."""

    def first_run_guard(self, engine: Engine) -> AbstractContextManager[None]:
        """Held around dlt's run, serializing its very first runs on a staging schema."""

    def table_lock(self, engine: Engine, table: str) -> HeldLock:
        """The table's lock (raises TableBusy on entering when another process holds it)."""

    def read_slot(self, engine: Engine, table: str) -> AbstractContextManager[None]:
        """Held while ``table`` is read from the source ``engine``: one of the source
        server's SOURCE_MAX_CONCURRENT_READS slots (raises SourceBusy after waiting)."""

    def read_slot_usage(self, engine: Engine, tables: Sequence[str]) -> SlotUsage | None:
        """Read slots in use on the source server and the tables waiting (None: no cap)."""

    def dlt_destination(self, engine: Engine) -> Any:
        """dlt's destination the staged rows load through, on ``engine`` (the target's)."""

    def destination_engine(self, engine: Engine) -> Engine:
        """The engine dlt's sqlalchemy destination loads through."""

    # --- chunked copies (dbsync.copy.chunked, where ``copies_in_chunks``) ---------------
    def walk_split_points(
        self,
        engine: Engine,
        database: str,
        table: str,
        key: Sequence[str],
        every: int,
        after: Key | None = None,
    ) -> Generator[Key, None, None]:
        """Every ``every``-th key of the table in key order after ``after`` (None: from the
        first key), one at a time (close it when done); nothing when at most ``every`` rows
        follow."""

    def range_sql(self, key: Sequence[str], lower: Key | None, upper: Key | None) -> str:
        """``lower <= key < upper`` as a condition with its values written in (one chunk's
        range, for :class:`dbsync.model.Window` and :meth:`clear_range`)."""

    def table_exists(self, engine: Engine, schema: str, table: str) -> bool:
        """Whether ``schema``.``table`` exists."""

    def target_indexes(self, source: TableSchema, cursor: str | None) -> list[Index]:
        """The secondary indexes a target (or staging) table of ``source`` gets."""

    @staticmethod
    def column_definition(column: Column) -> str:
        """The column as a CREATE TABLE defines it (what a copy's fingerprint is made of)."""

    def copy_progress(self, engine: Engine, database: str) -> CopyProgressStore:
        """The progress of chunked copies kept in ``database`` of the target ``engine``."""

    def chunk_holder(self, engine: Engine) -> ChunkHolder:
        """A participant's own target connection, holding the lock of the chunk it copies."""

    def load_file(
        self, engine: Engine, schema: str, table: str, batches: Iterable[pa.RecordBatch]
    ) -> ChunkLoad:
        """``batches`` written out for one bulk load into ``schema``.``table``."""

    def clear_range(self, cursor: Any, table: str, key_range: str) -> None:
        """Begin a chunk's load on the raw ``cursor``: its transaction (no gap locks) first
        deletes what an earlier attempt left in ``key_range`` of ``table`` (qualified)."""

    # --- privileges (check-config) -----------------------------------------------------
    def select_problems(
        self, engine: Engine, database: str, tables: list[str]
    ) -> list[ConfigProblem]:
        """Source ``tables`` of ``database`` the user of ``engine`` may not read."""

    def database_problems(
        self, conn: Connection, databases: tuple[str, ...]
    ) -> list[ConfigProblem]:
        """Target ``databases`` missing (and not creatable) or lacking a sync's privileges."""

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


# --- what a chunked copy holds (made by the dialect) ------------------------------------


class CopyProgressStore(Protocol):
    """The progress of chunked copies (copies, their key ranges, claims and leases), kept in
    the target database (:meth:`Dialect.copy_progress`)."""

    def exists(self) -> bool:
        """Whether this database ever had a chunked copy."""

    def ensure(self) -> None:
        """Create the progress tables if missing."""

    def unfinished(self, table: str) -> list[tuple[Copy, str, float]]:
        """Copies of ``table`` still copying: (copy, fingerprint, age in seconds)."""

    def start(
        self, table: str, fingerprint: str, reread_from: str | None, expected_chunks: int
    ) -> Copy:
        """A new copy of ``table``, its ranges to be added by :meth:`add_chunk`."""

    def add_chunk(self, copy: Copy, number: int, lower: Key | None, upper: Key | None) -> None:
        """Record range ``number`` as pending (``upper`` None: the last, the plan complete)."""

    def last_range(self, copy_id: str) -> tuple[int, Key | None] | None:
        """(number, upper key) of the copy's last recorded range; None before the first."""

    def plan_state(self, copy_id: str) -> tuple[int, bool]:
        """(ranges recorded, whether the plan is complete)."""

    def fingerprint(self, copy_id: str) -> str | None:
        """The table definition a copy was planned for (None: no such copy)."""

    def set_state(self, copy_id: str, state: str) -> None:
        """Set the copy's state (:data:`dbsync.model.SWAPPED`, ``DISCARDED``)."""

    def reread_pending(self, copy_id: str) -> None:
        """Before the swap: the next incremental run must re-read from the copy's start."""

    def pending_reread(self, table: str) -> str | None:
        """Where the first incremental read after a chunked copy starts (None: no such copy)."""

    def clear_reread(self, table: str) -> None:
        """The re-read after a copy of ``table`` is done."""

    def claim(
        self, copy_id: str, worker: str, lease_s: float, token: str | None = None
    ) -> Chunk | None:
        """Take a claimable chunk under a new lease; None when none is claimable."""

    def renew(self, chunk: Chunk, lease_s: float) -> bool:
        """Extend the chunk's lease; False when it is no longer this holder's."""

    def release(self, chunk: Chunk, error: str) -> None:
        """Give a failed chunk back at once (pending again), with the reason."""

    def mark_done(self, cursor: Any, chunk: Chunk, rows: int) -> int:
        """Mark ``chunk`` done on the raw ``cursor`` of its load (same transaction), only for
        its own lease: 1, or 0 when the lease was taken over or the copy discarded."""

    def progress(self, copy_id: str) -> Progress:
        """The copy's chunks: total, done, running, rows, workers, attempts, last error."""


class ChunkHolder(Protocol):
    """A participant's target connection (``raw``, a DB-API connection), holding a lock per
    claimed chunk so that a chunk whose holder died is claimable at once."""

    raw: Any

    def take(self) -> str:
        """A new token whose lock this connection holds (claim with it)."""

    def drop(self) -> None:
        """Free the current token's lock."""

    def close(self) -> None:
        """Free the lock and give the connection back."""

    def discard(self) -> None:
        """Close the connection for good (it may be broken)."""


class ChunkLoad(Protocol):
    """One chunk's rows written out for a bulk load (a context manager: removed on exit)."""

    rows: int

    def __enter__(self) -> ChunkLoad: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def into(self, cursor: Any) -> int:
        """Load the rows on the raw ``cursor`` (its transaction is the caller's); checked."""
