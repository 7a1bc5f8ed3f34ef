"""A fleet-wide cap on concurrent reads of one source server: named-lock slots on it.

``SOURCE_MAX_CONCURRENT_READS`` slots are named locks on the source server itself,
``dbsync:read:<n>`` for n in 0..N-1, so every process reading that server (workers, ``dbsync
sync``, chunk helpers) shares them, whatever host it runs on. A reader takes the first free
slot with ``GET_LOCK(name, 0)`` on a connection of its own and holds it while it reads; the
server frees it when that connection closes, so a killed reader never keeps a slot.

When every slot is taken the reader says so (log line; ``dbsync status`` finds it through a
``dbsync:readwait:<database>.<table>`` lock it holds while it waits), tries again with a
growing pause, and after ``SOURCE_READ_WAIT_SECONDS`` gives up with :class:`SourceBusy`, a
transient error: the task is retried later instead of holding a worker.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dbsync.config.errors import SourceBusy
from dbsync.model import SlotUsage

log = logging.getLogger("dbsync.sync_engine")

SLOT_PREFIX = "dbsync:read:"
WAIT_PREFIX = "dbsync:readwait:"
FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 2.0


def slot_name(slot: int) -> str:
    return f"{SLOT_PREFIX}{slot}"


def wait_name(database: str, table: str) -> str:
    """Lock names are limited to 64 characters; long ones are hashed."""
    name = f"{WAIT_PREFIX}{database}.{table}"
    if len(name) <= 64:
        return name
    return WAIT_PREFIX + hashlib.sha256(name.encode()).hexdigest()[:48]


def _try_slots(conn: Connection, slots: int) -> int | None:
    for slot in range(slots):
        got = conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": slot_name(slot)}).scalar()
        if got == 1:
            return slot
    return None


def _release(conn: Connection, name: str) -> None:
    conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})


@contextmanager
def read_slot(
    engine: Engine, database: str, table: str, slots: int, wait_s: float
) -> Iterator[None]:
    """Hold one of ``slots`` read slots of the source server while the block runs."""
    if slots <= 0:
        yield
        return
    conn = engine.connect()
    try:
        slot = _try_slots(conn, slots)
        if slot is None:
            slot = _wait_for_slot(conn, database, table, slots, wait_s)
        try:
            yield
        finally:
            _release(conn, slot_name(slot))
            conn.commit()
    except BaseException:
        conn.invalidate()  # the server frees whatever the connection held
        raise
    finally:
        conn.close()


def _wait_for_slot(conn: Connection, database: str, table: str, slots: int, wait_s: float) -> int:
    waiting = wait_name(database, table)
    conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": waiting})
    log.warning(
        "table %s: waiting for a source read slot (all %d in use, SOURCE_MAX_CONCURRENT_READS)",
        table,
        slots,
    )
    started = time.monotonic()
    pause = FIRST_PAUSE_S
    try:
        while True:
            time.sleep(pause)
            slot = _try_slots(conn, slots)
            if slot is not None:
                log.info(
                    "table %s: got source read slot %d after %.1fs",
                    table,
                    slot,
                    time.monotonic() - started,
                )
                return slot
            if time.monotonic() - started >= wait_s:
                raise SourceBusy(
                    f"table {table!r}: all {slots} source read slots stayed in use for "
                    f"{wait_s:g}s (SOURCE_MAX_CONCURRENT_READS); retried later"
                )
            pause = min(pause * 2, MAX_PAUSE_S)
    finally:
        _release(conn, waiting)




def slot_usage(engine: Engine, database: str, tables: Sequence[str], slots: int) -> SlotUsage:
    """Who holds the slots and who waits, as the source server sees it now."""
    names = [slot_name(slot) for slot in range(slots)]
    waits = {wait_name(database, table): table for table in tables}
    with engine.connect() as conn:
        in_use = sum(
            conn.execute(sa.text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar() is not None
            for name in names
        )
        waiting = [
            table
            for name, table in waits.items()
            if conn.execute(sa.text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar() is not None
        ]
    return SlotUsage(slots, in_use, sorted(waiting))
