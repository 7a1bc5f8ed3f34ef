"""Read ahead the target pages an incremental merge will write, while dlt stages the rows.

Upserting N changed rows scattered over a large target touches, for each row, its page of
the clustered (primary key) index and the cursor index entry it replaces. When the table is
larger than the server's buffer pool those pages are on disk, and the merge reads them one
after another while it holds its transaction open: at 1,000,000 rows with MariaDB's default
128 MB pool that was about 2,000 reads per 1,000 changed rows. A background thread reads the
same pages with one SELECT per few thousand keys while extraction and loading run, so the
merge finds them in memory.

Read-ahead is advice, never part of the result: it only runs SELECTs, gives up at the first
error (logged at DEBUG), and the merge is correct with or without it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine

from dbsync.backends import has_room
from dbsync.dialect import Dialect
from dbsync.model import Index, TableSchema, Window

log = logging.getLogger("dbsync.read_ahead")

MAX_KEYS = 50_000  # a larger window is a bulk merge: reading ahead would double its reads
CHUNK_KEYS = 5_000  # keys per lookup statement (keeps it far below max_allowed_packet)
WAIT_SECONDS = 10.0  # the longest the merge waits for a read-ahead still under way
# free pool slots required: its own, and the three the sync takes after it starts (dlt's
# first-run lock, dlt's client, the bulk load), so the sync never waits for the read-ahead
SPARE_CONNECTIONS = 4


class ReadAhead:
    """A background read of the target rows (and cursor index entries) a merge will touch."""

    def __init__(
        self,
        dialect: Dialect,
        source: Engine,
        target: Engine,
        source_table: str,
        target_table: str,
        key: Sequence[str],
        window: Window,
        index: Index | None,
    ) -> None:
        self._dialect = dialect
        self._source, self._target = source, target
        self._source_table, self._target_table = source_table, target_table
        self._key, self._window, self._index = tuple(key), window, index
        self._stop = threading.Event()
        self.keys_read = 0
        self._thread = threading.Thread(target=self._run, name="dbsync-read-ahead", daemon=True)

    def start(self) -> ReadAhead:
        self._thread.start()
        return self

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the read-ahead, then tell it to stop."""
        self._thread.join(timeout)
        self._stop.set()

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            keys = self._changed_keys()
            if keys:
                self._read_target(keys)
            log.debug(
                "read ahead %d keys of %s in %.3fs",
                len(keys),
                self._target_table,
                time.perf_counter() - started,
            )
        except Exception as exc:  # noqa: BLE001 - advice only: the merge reads what it needs
            log.debug("read-ahead of %s stopped: %s", self._target_table, exc)

    def _changed_keys(self) -> list[tuple[Any, ...]]:
        """The window's keys, from the source's cursor index (no row is read)."""
        rows = self._dialect.window_keys(
            self._source, self._source_table, self._key, self._window, MAX_KEYS + 1
        )
        return [] if len(rows) > MAX_KEYS else rows

    def _read_target(self, keys: list[tuple[Any, ...]]) -> None:
        for start in range(0, len(keys), CHUNK_KEYS):
            if self._stop.is_set():
                return
            chunk = keys[start : start + CHUNK_KEYS]
            self._dialect.read_ahead_rows(
                self._target, self._target_table, self._key, self._index, chunk
            )
            self.keys_read += len(chunk)


@contextmanager
def reading_ahead(
    dialect: Dialect,
    source: Engine,
    target: Engine,
    databases: tuple[str, str],
    schemas: tuple[TableSchema, TableSchema],
    window: Window,
) -> Iterator[ReadAhead | None]:
    """Read ahead for an incremental merge while the body stages its rows.

    ``schemas`` are the source and target definitions of the table. Nothing is read ahead
    without a window, without an index led by the cursor in the source (finding the keys
    would scan the source table a second time), or without room in the pools.
    """
    source_schema, target_schema = schemas
    cursor = window.cursor
    if (
        cursor is None
        or window.lower_bound is None
        or dialect.cursor_index(source_schema, cursor) is None
        or not all(has_room(engine, SPARE_CONNECTIONS) for engine in (source, target))
    ):
        yield None
        return
    source_db, target_db = databases
    ahead = ReadAhead(
        dialect,
        source,
        target,
        dialect.qualified(source_db, source_schema.name),
        dialect.qualified(target_db, target_schema.name),
        target_schema.primary_key,
        window,
        dialect.cursor_index(target_schema, cursor),
    ).start()
    try:
        yield ahead
    except BaseException:
        ahead.finish(0)
        raise
    ahead.finish(WAIT_SECONDS)
