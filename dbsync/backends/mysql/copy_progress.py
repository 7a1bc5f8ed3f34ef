"""Progress of chunked full copies, kept in the target database beside ``_dbsync_status``.

``_dbsync_copies`` has one row per copy of a table (its chunk count, an estimate until every
range is known, the schema it was planned for, where the first incremental read after it
must start); ``_dbsync_copy_chunks`` one row per key range of a copy, added as the ranges
are found (the plan is complete once the open-ended last range is recorded): ``pending``,
``running`` under a lease, or ``done`` with its row count. Every participant (the
coordinator and any helper) claims chunks with one atomic UPDATE here; a lease that is not
renewed expires and its chunk is claimable again, so a chunk held by a killed process is
never lost; sooner still, each holder keeps a named lock (``holder_lock``) on its
connection while it copies, and a running chunk whose lock is free is claimable at once
(its holder's connection, and so its process, is gone). A chunk becomes ``done`` in the
same transaction as its load into staging, and only for the lease that loaded it.

Times are the target server's clock (``NOW(6)``), the one clock every participant shares.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.backends.mysql.key_ranges import Key, decode_key, encode_key
from dbsync.backends.mysql.schema import qualified
from dbsync.model import COPYING, Chunk, Copy, Progress, RunningCopy

COPIES = "_dbsync_copies"
CHUNKS = "_dbsync_copy_chunks"

PENDING, RUNNING, DONE = "pending", "running", "done"

_COPIES_DDL = """(
  copy_id CHAR(32) NOT NULL PRIMARY KEY,
  table_name VARCHAR(64) NOT NULL,
  state VARCHAR(12) NOT NULL,
  fingerprint CHAR(64) NOT NULL,
  chunks INT NOT NULL,
  started_at DATETIME(6) NOT NULL,
  finished_at DATETIME(6) NULL,
  reread_from VARCHAR(64) NULL,
  reread_pending TINYINT NOT NULL DEFAULT 0,
  KEY by_table (table_name, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

_CHUNKS_DDL = """(
  copy_id CHAR(32) NOT NULL,
  chunk_no INT NOT NULL,
  table_name VARCHAR(64) NOT NULL,
  lower_key TEXT NULL,
  upper_key TEXT NULL,
  state VARCHAR(8) NOT NULL,
  rows_copied BIGINT NULL,
  worker VARCHAR(255) NULL,
  lease_token CHAR(32) NULL,
  leased_until DATETIME(6) NULL,
  attempts INT NOT NULL DEFAULT 0,
  last_error TEXT NULL,
  started_at DATETIME(6) NULL,
  finished_at DATETIME(6) NULL,
  PRIMARY KEY (copy_id, chunk_no)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


class CopyProgress:
    """The two progress tables of one target database."""

    def __init__(self, engine: Engine, database: str) -> None:
        self.engine, self.database = engine, database
        self.copies = qualified(database, COPIES)
        self.chunks = qualified(database, CHUNKS)

    def _run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(sa.text(sql), params or {}).rowcount)

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params or {}).all())

    def exists(self) -> bool:
        """Whether this database ever had a chunked copy (the tables are made by the first)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT 1 FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = :d AND TABLE_NAME = :t"
                ),
                {"d": self.database, "t": CHUNKS},
            ).first()
        return found is not None

    def ensure(self) -> None:
        self._run(f"CREATE TABLE IF NOT EXISTS {self.copies} {_COPIES_DDL}")
        self._run(f"CREATE TABLE IF NOT EXISTS {self.chunks} {_CHUNKS_DDL}")

    # --- copies ---------------------------------------------------------------------
    def unfinished(self, table: str) -> list[tuple[Copy, str, float]]:
        """Copies of ``table`` still copying: (copy, fingerprint, age in seconds)."""
        rows = self._rows(
            f"SELECT copy_id, table_name, started_at, reread_from, fingerprint, "
            f"TIMESTAMPDIFF(MICROSECOND, started_at, NOW(6)) / 1e6 FROM {self.copies} "
            "WHERE table_name = :t AND state = :s ORDER BY started_at DESC",
            {"t": table, "s": COPYING},
        )
        return [(Copy(*row[:4]), row[4], float(row[5])) for row in rows]

    def start(
        self, table: str, fingerprint: str, reread_from: str | None, expected_chunks: int
    ) -> Copy:
        """A new copy of ``table``, its ranges to be added by ``add_chunk`` as they are found."""
        copy_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            self._forget_old(conn, table)
            conn.execute(
                sa.text(
                    f"INSERT INTO {self.copies} (copy_id, table_name, state, fingerprint, "
                    "chunks, started_at, reread_from) "
                    "VALUES (:c, :t, :s, :f, :n, NOW(6), :r)"
                ),
                {
                    "c": copy_id,
                    "t": table,
                    "s": COPYING,
                    "f": fingerprint,
                    "n": expected_chunks,
                    "r": reread_from,
                },
            )
            started = conn.execute(
                sa.text(f"SELECT started_at FROM {self.copies} WHERE copy_id = :c"),
                {"c": copy_id},
            ).scalar_one()
        return Copy(copy_id, table, started, reread_from)

    def add_chunk(self, copy: Copy, number: int, lower: Key | None, upper: Key | None) -> None:
        """Record range ``number`` as pending; the open-ended last one (``upper`` None)
        completes the plan and fixes the copy's chunk count.

        Two statements, each its own transaction: claims and loads lock a copy's row and
        then its chunks' rows, so holding a new chunk row while waiting for the copy's row
        could deadlock with them.
        """
        self._run(
            f"INSERT INTO {self.chunks} (copy_id, chunk_no, table_name, lower_key, "
            "upper_key, state) VALUES (:c, :n, :t, :lo, :hi, :s)",
            {
                "c": copy.copy_id,
                "n": number,
                "t": copy.table,
                "lo": encode_key(lower),
                "hi": encode_key(upper),
                "s": PENDING,
            },
        )
        count = "GREATEST(chunks, :more)" if upper is not None else ":n"
        self._run(
            f"UPDATE {self.copies} SET chunks = {count} WHERE copy_id = :c",
            {"c": copy.copy_id, "n": number + 1, "more": number + 2},
        )

    def last_range(self, copy_id: str) -> tuple[int, Key | None] | None:
        """(number, upper key) of the copy's last recorded range; None before the first."""
        rows = self._rows(
            f"SELECT chunk_no, upper_key FROM {self.chunks} WHERE copy_id = :c "
            "ORDER BY chunk_no DESC LIMIT 1",
            {"c": copy_id},
        )
        return (int(rows[0][0]), decode_key(rows[0][1])) if rows else None

    def plan_state(self, copy_id: str) -> tuple[int, bool]:
        """(ranges recorded, whether the plan is complete)."""
        row = self._rows(
            f"SELECT COUNT(*), COALESCE(SUM(upper_key IS NULL), 0) FROM {self.chunks} "
            "WHERE copy_id = :c",
            {"c": copy_id},
        )[0]
        return int(row[0]), bool(row[1])

    def _forget_old(self, conn: sa.Connection, table: str) -> None:
        """Drop the records of finished or discarded copies (keep a pending re-read)."""
        old = f"SELECT copy_id FROM {self.copies} WHERE table_name = :t AND state <> :s"
        conn.execute(
            sa.text(f"DELETE FROM {self.chunks} WHERE copy_id IN ({old})"),
            {"t": table, "s": COPYING},
        )
        conn.execute(
            sa.text(
                f"DELETE FROM {self.copies} WHERE table_name = :t AND state <> :s "
                "AND reread_pending = 0"
            ),
            {"t": table, "s": COPYING},
        )

    def fingerprint(self, copy_id: str) -> str | None:
        """The table definition a copy was planned for (None: no such copy)."""
        rows = self._rows(
            f"SELECT fingerprint FROM {self.copies} WHERE copy_id = :c", {"c": copy_id}
        )
        return rows[0][0] if rows else None

    def set_state(self, copy_id: str, state: str) -> None:
        self._run(
            f"UPDATE {self.copies} SET state = :s, finished_at = NOW(6) WHERE copy_id = :c",
            {"s": state, "c": copy_id},
        )

    def state(self, copy_id: str) -> str | None:
        rows = self._rows(f"SELECT state FROM {self.copies} WHERE copy_id = :c", {"c": copy_id})
        return rows[0][0] if rows else None

    def reread_pending(self, copy_id: str) -> None:
        """Before the swap: the next incremental run must re-read from the copy's start."""
        self._run(
            f"UPDATE {self.copies} SET reread_pending = 1 "
            "WHERE copy_id = :c AND reread_from IS NOT NULL",
            {"c": copy_id},
        )

    def pending_reread(self, table: str) -> str | None:
        """Where the first incremental read after a chunked copy starts (None: no such copy)."""
        if not self.exists():
            return None
        rows = self._rows(
            f"SELECT reread_from FROM {self.copies} WHERE table_name = :t "
            "AND reread_pending = 1 ORDER BY started_at LIMIT 1",
            {"t": table},
        )
        return rows[0][0] if rows else None

    def clear_reread(self, table: str) -> None:
        self._run(
            f"UPDATE {self.copies} SET reread_pending = 0 WHERE table_name = :t",
            {"t": table},
        )

    def running(self) -> list[RunningCopy]:
        """Every copy in progress: (table, started_at, elapsed seconds, progress)."""
        rows = self._rows(
            f"SELECT copy_id, table_name, started_at, "
            f"TIMESTAMPDIFF(MICROSECOND, started_at, NOW(6)) / 1e6 FROM {self.copies} "
            "WHERE state = :s ORDER BY table_name",
            {"s": COPYING},
        )
        return [(r[1], r[2], float(r[3]), self.progress(r[0])) for r in rows]

    # --- chunks ---------------------------------------------------------------------
    def claim(
        self, copy_id: str, worker: str, lease_s: float, token: str | None = None
    ) -> Chunk | None:
        """Take the first pending chunk, or one whose lease expired or whose holder died,
        under a new lease (``token``: one whose holder lock the caller already holds)."""
        token = token or uuid.uuid4().hex
        self.reclaim_orphans(copy_id)
        claimed = self._run(
            f"UPDATE {self.chunks} SET state = :running, lease_token = :tok, worker = :w, "
            "leased_until = NOW(6) + INTERVAL :lease MICROSECOND, attempts = attempts + 1, "
            "started_at = NOW(6) "
            "WHERE copy_id = :c AND (state = :pending "
            "OR (state = :running AND leased_until < NOW(6))) "
            f"AND copy_id IN (SELECT copy_id FROM {self.copies} WHERE copy_id = :c "
            "AND state = :copying) ORDER BY chunk_no LIMIT 1",
            {
                "running": RUNNING,
                "pending": PENDING,
                "copying": COPYING,
                "tok": token,
                "w": worker[:255],
                "lease": int(lease_s * 1_000_000),
                "c": copy_id,
            },
        )
        if not claimed:
            return None
        row = self._rows(
            f"SELECT chunk_no, lower_key, upper_key, attempts FROM {self.chunks} "
            "WHERE copy_id = :c AND lease_token = :tok",
            {"c": copy_id, "tok": token},
        )[0]
        lower, upper = decode_key(row[1]), decode_key(row[2])
        return Chunk(copy_id, int(row[0]), lower, upper, token, int(row[3]))

    def reclaim_orphans(self, copy_id: str) -> int:
        """Make running chunks whose holder lock is free pending again, at once: their
        holder's connection is gone (a killed process loses it with its socket), so waiting
        for the lease to run out would only lose time. Returns how many."""
        running = self._rows(
            f"SELECT chunk_no, lease_token FROM {self.chunks} "
            "WHERE copy_id = :c AND state = :r AND lease_token IS NOT NULL",
            {"c": copy_id, "r": RUNNING},
        )
        if not running:
            return 0
        checks = ", ".join(f"IS_FREE_LOCK(:l{i})" for i in range(len(running)))
        names = {f"l{i}": holder_lock(token) for i, (_n, token) in enumerate(running)}
        free = self._rows(f"SELECT {checks}", names)[0]
        return sum(
            self._run(
                f"UPDATE {self.chunks} SET state = :p, lease_token = NULL, leased_until = NULL, "
                "last_error = :e WHERE copy_id = :c AND chunk_no = :n AND lease_token = :t "
                "AND state = :r",
                {
                    "p": PENDING,
                    "e": "its holder's connection ended (process killed or connection lost)",
                    "c": copy_id,
                    "n": number,
                    "t": token,
                    "r": RUNNING,
                },
            )
            for (number, token), is_free in zip(running, free, strict=True)
            if is_free == 1
        )

    def renew(self, chunk: Chunk, lease_s: float) -> bool:
        """Extend the lease; False when it is no longer this holder's."""
        return bool(
            self._run(
                f"UPDATE {self.chunks} SET leased_until = NOW(6) + INTERVAL :lease MICROSECOND "
                "WHERE copy_id = :c AND chunk_no = :n AND lease_token = :tok AND state = :s",
                {
                    "lease": int(lease_s * 1_000_000),
                    "c": chunk.copy_id,
                    "n": chunk.number,
                    "tok": chunk.token,
                    "s": RUNNING,
                },
            )
        )

    def release(self, chunk: Chunk, error: str) -> None:
        """Give a failed chunk back at once (pending again), with the reason."""
        self._run(
            f"UPDATE {self.chunks} SET state = :p, lease_token = NULL, leased_until = NULL, "
            "last_error = :e WHERE copy_id = :c AND chunk_no = :n AND lease_token = :tok",
            {
                "p": PENDING,
                "e": error[:4000],
                "c": chunk.copy_id,
                "n": chunk.number,
                "tok": chunk.token,
            },
        )

    def done_sql(self) -> str:
        """Mark a chunk done, only for the lease that loaded it (PyMySQL parameters).

        Run in the transaction of the chunk's load: the load and its ``done`` commit together,
        and a holder whose lease was taken over, or whose copy was discarded, updates nothing
        and rolls its load back.
        """
        return (
            f"UPDATE {self.chunks} SET state = '{DONE}', rows_copied = %s, "
            "finished_at = NOW(6), leased_until = NULL "
            f"WHERE copy_id = %s AND chunk_no = %s AND lease_token = %s AND state = '{RUNNING}' "
            f"AND copy_id IN (SELECT copy_id FROM {self.copies} WHERE state = '{COPYING}')"
        )

    def mark_done(self, cursor: Any, chunk: Chunk, rows: int) -> int:
        """Run :meth:`done_sql` for ``chunk`` on the raw ``cursor`` of its load (rows marked:
        1, or 0 when the lease is no longer this holder's)."""
        return cursor.execute(self.done_sql(), (rows, chunk.copy_id, chunk.number, chunk.token))

    def progress(self, copy_id: str) -> Progress:
        row = self._rows(
            f"SELECT COUNT(*), SUM(state = :done), SUM(state = :running), "
            "COALESCE(SUM(CASE WHEN state = :done THEN rows_copied END), 0), "
            "COALESCE(MAX(attempts), 0), COALESCE(SUM(upper_key IS NULL), 0), "
            f"(SELECT chunks FROM {self.copies} WHERE copy_id = :c) "
            f"FROM {self.chunks} WHERE copy_id = :c",
            {"done": DONE, "running": RUNNING, "c": copy_id},
        )[0]
        workers = self._rows(
            f"SELECT DISTINCT worker FROM {self.chunks} WHERE copy_id = :c AND state = :done "
            "ORDER BY worker",
            {"c": copy_id, "done": DONE},
        )
        error = self._rows(
            f"SELECT last_error FROM {self.chunks} WHERE copy_id = :c AND state <> :done "
            "AND last_error IS NOT NULL ORDER BY attempts DESC LIMIT 1",
            {"c": copy_id, "done": DONE},
        )
        return Progress(
            total=int(row[0]),
            done=int(row[1] or 0),
            running=int(row[2] or 0),
            rows=int(row[3]),
            workers=tuple(w[0] for w in workers),
            most_attempts=int(row[4]),
            last_error=error[0][0] if error else None,
            planned=bool(row[5]),
            expected=int(row[6] or 0),
        )


def holder_lock(token: str) -> str:
    """The named lock a chunk's holder keeps on its connection while it copies the chunk
    claimed under ``token`` (45 characters: MySQL allows 64)."""
    return f"dbsync-chunk-{token}"


class Holder:
    """A participant's target connection, holding the lock of each chunk it copies."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.token: str | None = None

    def take(self) -> str:
        """A new token whose holder lock this connection holds (before claiming with it)."""
        self.token = uuid.uuid4().hex
        cursor = self.raw.cursor()
        cursor.execute("SELECT GET_LOCK(%s, 0)", (holder_lock(self.token),))
        if cursor.fetchone()[0] != 1:  # a fresh random name: someone else has it?
            raise RuntimeError(f"could not take holder lock {holder_lock(self.token)}")
        return self.token

    def drop(self) -> None:
        if self.token is not None:
            cursor = self.raw.cursor()
            cursor.execute("SELECT RELEASE_LOCK(%s)", (holder_lock(self.token),))
            cursor.fetchall()
            self.token = None

    def close(self) -> None:
        try:
            self.drop()
        finally:
            self.raw.close()

    def discard(self) -> None:
        """Close the connection for good (it may be broken): the server frees its locks."""
        self.token = None
        self.raw.invalidate()


def running_copies(engine: Engine, database: str) -> list[RunningCopy]:
    """Chunked copies in progress in ``database`` (none when no copy was ever chunked)."""
    progress = CopyProgress(engine, database)
    return progress.running() if progress.exists() else []
