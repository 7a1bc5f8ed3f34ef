"""The plain data types the :class:`dbsync.dialect.Dialect` protocol speaks in.

Table definitions, row and key sets, a table's lock and its sync status: values that cross the
wall between policy (``dbsync.sync``, ``copy``, ``compare``, ``ops``) and the backends
(``dbsync.backends``). Nothing here renders SQL or talks to a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from dbsync.dialect import Dialect

Key = tuple[Any, ...]
Fold = tuple[int, int]  # (rows, xor of the rows' identity hashes)


TEMPORAL = frozenset({"datetime", "timestamp", "date"})  # column types that hold a date or time


@dataclass(frozen=True)
class Column:
    name: str
    column_type: str
    data_type: str
    nullable: bool
    charset: str | None = None
    collation: str | None = None

    @property
    def is_temporal(self) -> bool:
        """A date or time: a cursor a safe point and a lag apply to."""
        return self.data_type in TEMPORAL


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]  # each already rendered, with a prefix length if any
    unique: bool = False


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    collation: str | None = None
    unique_keys: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = field(default=(), compare=False)
    rendered_primary_key: tuple[str, ...] = field(default=(), compare=False)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def nullable_columns(self, key: Sequence[str]) -> list[str]:
        """The columns of ``key`` that allow NULL (a merge key must not)."""
        return [c for c in key if (col := self.column(c)) is not None and col.nullable]


@dataclass
class Window:
    """Which rows to read: all of them, or those at/after a cursor value (and NULL ones).

    Plain data: the dialect renders it as a WHERE clause (for MySQL,
    :func:`dbsync.backends.mysql.extract.window_where`)."""

    cursor: str | None = None
    lower_bound: str | None = None
    key_range: str | None = None  # one chunk of a copy: a key-range predicate, values inlined
    counted: int | None = None  # rows it held when both servers counted it (None: not counted)


@dataclass
class ExtractStats:
    """What one extraction read: rows, the snapshot's own count (full copies), chunks."""

    rows: int = 0
    snapshot_rows: int | None = None
    chunks: int = 0
    progress_every: int = 500_000
    _next_report: int = field(default=500_000, repr=False)


@dataclass
class Read:
    """One extraction: which rows of which table, from where, in what chunks
    (:meth:`dbsync.dialect.Dialect.stream_rows`)."""

    dialect: Dialect
    engine: Engine
    database: str
    schema: TableSchema
    window: Window
    fetch_limit: int
    stats: ExtractStats
    count_snapshot: bool  # full copies are counted against their own snapshot

    @property
    def names(self) -> list[str]:
        return list(self.schema.column_names)


# --- in-place schema migration steps (decided by dbsync.sync.migration, applied by
# Dialect.alter_table in one statement, in this order of kinds) ---------------------


@dataclass(frozen=True)
class AddColumn:
    column: Column
    after: str | None  # None: FIRST


@dataclass(frozen=True)
class ModifyColumn:
    column: Column
    after: str | None  # None: FIRST


@dataclass(frozen=True)
class DropColumn:
    name: str


@dataclass(frozen=True)
class DropIndex:
    name: str


@dataclass(frozen=True)
class AddIndex:
    index: Index


@dataclass(frozen=True)
class TableCollation:
    collation: str


Clause = AddColumn | ModifyColumn | DropColumn | DropIndex | AddIndex | TableCollation


@dataclass(frozen=True)
class RowSet:
    """Rows of one table selected by a WHERE clause, hashed over ``columns``."""

    table: str  # qualified name
    schema: TableSchema
    columns: Sequence[str]
    where: str
    params: list


@dataclass(frozen=True)
class Buckets:
    """A set of buckets at one depth: the low ``bits`` bits of the hash, restricted to
    ``within`` buckets of a shallower depth (None: every bucket)."""

    bits: int
    within: tuple[int, tuple[int, ...]] | None = None  # (bits, bucket numbers)


class Side(Protocol):
    """One table's keys, folded and fetched where its rows are."""

    def total(self) -> Fold: ...

    def folds(self, buckets: Buckets) -> dict[int, Fold]: ...

    def identities(self, buckets: Buckets, with_keys: bool) -> list[tuple[Any, ...]]: ...

    def key_bounds(self) -> tuple[int, int] | None: ...

    def ranged(self, low: int, high: int) -> Side: ...

    def sizing(self, rows: int) -> int: ...


class RowSide(Protocol):
    """One table's rows, bucketed by key and folded by content where they are
    (:mod:`dbsync.compare.rowdiff`)."""

    def count(self) -> int: ...

    def highest(self, column: str) -> str | None: ...

    def folds(self, buckets: Buckets) -> dict[int, Fold]: ...

    def rows(self, buckets: Buckets) -> list[tuple[Any, ...]]: ...

    def key_bounds(self) -> tuple[int, int] | None: ...

    def ranged(self, low: int, high: int) -> RowSide: ...

    def sizing(self, rows: int) -> int: ...


@dataclass(frozen=True)
class KeySet:
    """The primary keys of one table on one server."""

    engine: Engine
    database: str
    schema: TableSchema
    key: tuple[str, ...]
    # a DB-API connection inside a consistent read: the keys as that snapshot sees them
    snapshot: Any = None


@dataclass(frozen=True)
class WindowRows:
    """An incremental read's window on both sides (source, target), and how many rows each
    holds (:mod:`dbsync.sync.window_diff`)."""

    sets: tuple[RowSet, RowSet]
    counts: tuple[int, int]


class HeldLock(Protocol):
    """A table's lock: entering acquires it or raises TableBusy at once; leaving frees it.

    :meth:`ensure_held` raises LockLost when the lock is no longer this process's; the sync
    calls it just before it commits anything.
    """

    def __enter__(self) -> HeldLock: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def ensure_held(self) -> None: ...


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
    rows_deleted: int = 0
    last_delete_check_at: datetime | None = None
    rows_repaired: int = 0
    repaired_inserted: int = 0
    repaired_updated: int = 0
    repaired_deleted: int = 0
    last_reconcile_at: datetime | None = None
    safe_point: str | None = None
    safe_point_cursor: str | None = None
    cursor_fallback: bool = False
    future_cursor_rows: int = 0

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the last successful sync (None if there never was one)."""
        if self.last_success_at is None:
            return None
        now = now or datetime.now(UTC)
        return (now - self.last_success_at.replace(tzinfo=UTC)).total_seconds()


# --- chunked copies (dbsync.copy, recorded by the backend's progress tables) ---------


COPYING, SWAPPED, DISCARDED = "copying", "swapped", "discarded"  # the states of a Copy


@dataclass(frozen=True)
class Chunk:
    """One key range of a copy, claimed by one participant under ``token``."""

    copy_id: str
    number: int
    lower: Key | None
    upper: Key | None
    token: str
    attempts: int = 1  # this claim included


@dataclass(frozen=True)
class Copy:
    copy_id: str
    table: str
    started_at: datetime
    reread_from: str | None


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    running: int
    rows: int
    workers: tuple[str, ...]
    most_attempts: int
    last_error: str | None
    planned: bool = True  # every range is known (the last one, open-ended, is recorded)
    expected: int = 0  # chunks the copy is expected to have: an estimate while planning

    @property
    def complete(self) -> bool:
        return self.planned and self.done == self.total

    @property
    def expected_total(self) -> int:
        """The chunk count: exact once planned, else the estimate (at least those recorded)."""
        return self.total if self.planned else max(self.expected, self.total)

    @property
    def shown_total(self) -> str:
        """The chunk count for people: ``8`` once planned, ``~8`` while an estimate."""
        return str(self.total) if self.planned else f"~{self.expected_total}"


RunningCopy = tuple[str, datetime, float, Progress]


@dataclass(frozen=True)
class SlotUsage:
    """Read slots in use on the source server, and the tables waiting for one."""

    slots: int
    in_use: int
    waiting: list[str]

    def describe(self) -> str:
        line = f"source reads: {self.in_use} of {self.slots} slots in use"
        if self.waiting:
            line += f"; waiting for a slot: {', '.join(self.waiting)}"
        return line
