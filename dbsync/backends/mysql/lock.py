"""One sync per table at a time: the table locks a dialect hands out (:class:`HeldLock`).

MySQL/MariaDB (:class:`TableLock`), fleet-wide: a named lock on the target server.
``GET_LOCK`` is held by a dedicated connection. If the holding process dies, the server
drops its connection and the lock with it (at once on a clean TCP close; after at most
``stale_seconds`` via ``wait_timeout`` when the host vanished). A heartbeat thread keeps the
live holder's connection from idling out, and the sync checks the lock is still held before
it commits anything.

SQLite (demo, :class:`FileLock`): an exclusive ``flock`` on a file beside the database, freed
by the OS when the process dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dbsync.config.errors import LockLost, TableBusy

log = logging.getLogger("dbsync.sync_engine")


def lock_name(database: str, table: str) -> str:
    """Lock names are limited to 64 characters; long ones are hashed."""
    name = f"dbsync:{database}.{table}"
    if len(name) <= 64:
        return name
    return "dbsync:" + hashlib.sha256(name.encode()).hexdigest()[:56]


class TableLock:
    """Context manager: acquire the table's lock or raise TableBusy at once."""

    def __init__(
        self, engine: Engine, database: str, table: str, heartbeat_s: float, stale_s: int
    ) -> None:
        self.name = lock_name(database, table)
        self._engine = engine
        self._heartbeat_s = heartbeat_s
        self._stale_s = stale_s
        self._conn: Connection | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._lost: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> TableLock:
        conn = self._engine.connect()
        try:
            conn.execute(sa.text(f"SET SESSION wait_timeout = {int(self._stale_s)}"))
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": self.name}).scalar()
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if got != 1:
            conn.invalidate()
            conn.close()
            raise TableBusy(f"lock {self.name} is held by another process")
        self._conn = conn
        self._thread = threading.Thread(target=self._beat, name=f"lock:{self.name}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            try:
                self.ensure_held()
            except BaseException as exc:  # noqa: BLE001 - recorded, raised by the sync
                self._lost = exc
                log.warning("lock %s lost: %s", self.name, exc)
                return

    def ensure_held(self) -> None:
        """Raise LockLost unless this connection still owns the lock."""
        if self._lost is not None:
            raise LockLost(f"lock {self.name} was lost during the sync") from self._lost
        assert self._conn is not None
        with self._guard:
            try:
                owner = self._conn.execute(
                    sa.text("SELECT IS_USED_LOCK(:n) = CONNECTION_ID()"), {"n": self.name}
                ).scalar()
            except sa.exc.SQLAlchemyError as exc:
                raise LockLost(f"lock {self.name}: its connection failed") from exc
        if owner != 1:
            raise LockLost(f"lock {self.name} is no longer held by this process")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with self._guard:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": self.name})
                # back to the server's idle timeout before the connection returns to the pool
                conn.execute(sa.text("SET SESSION wait_timeout = @@GLOBAL.wait_timeout"))
                conn.commit()
        except sa.exc.SQLAlchemyError:
            conn.invalidate()  # the connection is gone (or unusable), and the lock with it
        finally:
            conn.close()


class FileLock:
    """A non-blocking exclusive lock on a file; freed by the OS when the process dies."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._handle: int | None = None

    def __enter__(self) -> FileLock:
        handle = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise TableBusy(f"lock {self.path} is held by another process") from None
        except BaseException:
            os.close(handle)
            raise
        self._handle = handle
        return self

    def ensure_held(self) -> None:
        """Raise LockLost unless this process holds the lock (a held flock cannot be taken
        away while its file descriptor is open)."""
        if self._handle is None:
            raise LockLost(f"lock {self.path} is not held by this process")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            os.close(handle)
