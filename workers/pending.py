"""At most one pending sync message per table: a marker per table in Redis.

Beat sets a table's marker when it enqueues the table's sync (``SET NX``: when the marker
is there, the previous message is still queued or running and beat sends nothing this
round). The worker running the message marks it started, its parent process refreshes the
marker's heartbeat while the task runs (a pool child stuck in native code that holds the GIL
cannot stop it), and the marker is removed when the task ends for good (success, failure,
expiry or revocation); a task being retried keeps it, due again at its retry time.

Every marker has a TTL, so a lost message cannot block its table forever: a queued marker
(and its message, which expires with it) lives ``PENDING_INTERVALS`` intervals, a running
one ``RUNNING_TTL_STALES`` times the stale limit past its last heartbeat. A running
marker whose heartbeat is older than the stale limit (``LOCK_STALE_SECONDS``), or whose
process is gone from this host, belongs to a dead worker: :func:`reap` records its task as
failed (``WorkerLostError``) in the result backend, so Flower and ``celery result`` stop
showing it running, and removes the marker so the table's next sync is sent.

The key is ``dbsync:pending:<queue>:<table>``; the value a JSON :class:`Marker`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace

import redis
from billiard.exceptions import WorkerLostError
from celery import Celery, states
from celery.exceptions import Retry

from dbsync.ops.processes import pid_alive

logger = logging.getLogger("beat.pending")

KEY_PREFIX = "dbsync:pending"
# a queued marker (and its message) lives this many of the table's intervals
PENDING_INTERVALS = 4
MIN_PENDING_TTL_S = 60
# a running marker lives this many stale limits past its last heartbeat
RUNNING_TTL_STALES = 3
REDIS_TIMEOUT_S = 5.0

# Set the marker only if it is absent or already this task's (KEYS[1]; ARGV: task id,
# value, ttl). A message sent by hand (``celery call``) while beat's is queued leaves
# beat's marker alone.
_SET_IF_MINE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['task_id'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""
# Update the marker only while it is this task's (a reaped marker is not brought back).
_UPDATE_IF_MINE = """
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current)['task_id'] ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""
_DELETE_IF_MINE = """
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current)['task_id'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Marker:
    """A table's pending sync: queued since ``queued_at`` (or due then, for a retry),
    started by ``host``/``pid`` (a pool child of worker process ``ppid``) at ``started_at``,
    alive at ``heartbeat_at`` (epoch seconds)."""

    task_id: str
    table: str
    queued_at: float
    started_at: float | None = None
    heartbeat_at: float | None = None
    host: str | None = None
    pid: int | None = None
    ppid: int | None = None

    @property
    def running(self) -> bool:
        return self.started_at is not None

    def waited_s(self, now: float) -> float | None:
        """Seconds waited for a worker; None while running or not yet due."""
        if self.running or now < self.queued_at:
            return None
        return now - self.queued_at

    def dead(self, now: float, stale_s: float, host: str) -> bool:
        """A running marker of a process gone from ``host``, or silent for ``stale_s``."""
        if not self.running:
            return False
        if self.host == host and self.pid is not None and not pid_alive(self.pid):
            return True
        last = self.heartbeat_at or self.started_at or self.queued_at
        return now - last > stale_s

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Marker:
        return cls(**json.loads(raw))


def pending_ttl_s(interval_s: float) -> int:
    """How long a queued marker, and its message, live."""
    return max(int(PENDING_INTERVALS * interval_s), MIN_PENDING_TTL_S)


def running_ttl_s(stale_s: float) -> int:
    return max(int(RUNNING_TTL_STALES * stale_s), MIN_PENDING_TTL_S)


def key(queue: str, table: str) -> str:
    return f"{KEY_PREFIX}:{queue}:{table}"


def hostname() -> str:
    return socket.gethostname()


_clients: dict[str, redis.Redis] = {}
_clients_guard = threading.Lock()


def client_for(url: str) -> redis.Redis:
    """One Redis client per URL and process (clients are thread-safe; created after fork)."""
    with _clients_guard:
        found = _clients.get(url)
        if found is None or found.connection_pool.pid != os.getpid():
            found = redis.Redis.from_url(
                url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            )
            _clients[url] = found
        return found


@dataclass
class Pending:
    """The markers of one queue."""

    client: redis.Redis
    queue: str

    def get(self, table: str) -> Marker | None:
        raw = self.client.get(key(self.queue, table))
        return Marker.from_json(raw) if raw else None

    def claim(self, table: str, task_id: str, ttl_s: int, now: float | None = None) -> bool:
        """Beat: mark the table pending for ``task_id``; False if it already is."""
        marker = Marker(task_id=task_id, table=table, queued_at=now or time.time())
        return bool(self.client.set(key(self.queue, table), marker.to_json(), nx=True, ex=ttl_s))

    def start(self, marker: Marker, ttl_s: int) -> bool:
        """Worker: the task started (its marker is set unless another task's is there)."""
        script = self.client.register_script(_SET_IF_MINE)
        keys = [key(self.queue, marker.table)]
        return bool(script(keys=keys, args=[marker.task_id, marker.to_json(), ttl_s]))

    def update(self, marker: Marker, ttl_s: int) -> bool:
        """Rewrite the marker while it is still ``marker.task_id``'s."""
        script = self.client.register_script(_UPDATE_IF_MINE)
        keys = [key(self.queue, marker.table)]
        return bool(script(keys=keys, args=[marker.task_id, marker.to_json(), ttl_s]))

    def heartbeat(self, table: str, task_id: str, ttl_s: int, now: float | None = None) -> bool:
        marker = self.get(table)
        if marker is None or marker.task_id != task_id or not marker.running:
            return False
        return self.update(replace(marker, heartbeat_at=now or time.time()), ttl_s)

    def release(self, table: str, task_id: str) -> bool:
        """The task ended for good: remove the marker if it is still this task's."""
        script = self.client.register_script(_DELETE_IF_MINE)
        return bool(script(keys=[key(self.queue, table)], args=[task_id]))

    def markers(self) -> Iterator[Marker]:
        for name in self.client.scan_iter(match=f"{KEY_PREFIX}:{self.queue}:*", count=500):
            raw = self.client.get(name)
            if raw:
                yield Marker.from_json(raw)

    def waits(self, now: float | None = None) -> dict[str, float]:
        """Seconds each table's queued (not started) sync has waited for a worker."""
        now = now or time.time()
        found = {}
        for marker in self.markers():
            waited = marker.waited_s(now)
            if waited is not None:
                found[marker.table] = waited
        return found


# (task id, reason): record the task as lost in the result backend
MarkLost = Callable[[str, str], None]


def reap(
    pending: Pending,
    markers: Iterable[Marker],
    stale_s: float,
    mark_lost: MarkLost,
    now: float | None = None,
) -> list[Marker]:
    """Markers of dead workers: their tasks recorded as lost, the markers removed."""
    now = now or time.time()
    here = hostname()
    reaped = []
    for marker in markers:
        if not marker.dead(now, stale_s, here):
            continue
        reason = lost_reason(marker, now)
        try:
            mark_lost(marker.task_id, reason)
        except Exception:  # noqa: BLE001 - the marker goes anyway, the table must sync
            logger.exception("table %s: could not record task %s as lost", marker.table,
                             marker.task_id)
        if pending.release(marker.table, marker.task_id):
            logger.warning("table %s: %s", marker.table, reason)
            reaped.append(marker)
    return reaped


def lost_reason(marker: Marker, now: float) -> str:
    last = marker.heartbeat_at or marker.started_at or marker.queued_at
    return (
        f"task {marker.task_id} lost: its worker {marker.host}:{marker.pid} died "
        f"(no heartbeat for {now - last:.0f}s); the table's next sync runs as usual"
    )


def describe(marker: Marker, now: float | None = None) -> str:
    """``queued for 12s`` / ``running on host:pid for 3s`` (for beat's log)."""
    now = now or time.time()
    if marker.running:
        return f"running on {marker.host}:{marker.pid} for {now - (marker.started_at or now):.0f}s"
    if now < marker.queued_at:
        return f"retrying in {marker.queued_at - now:.0f}s"
    return f"queued for {now - marker.queued_at:.0f}s"


def pending_for(url: str, queue: str) -> Pending:
    return Pending(client_for(url), queue)


def marker_for_start(task_id: str, table: str, queued_at: float | None) -> Marker:
    now = time.time()
    return Marker(
        task_id=task_id,
        table=table,
        queued_at=queued_at or now,
        started_at=now,
        heartbeat_at=now,
        host=hostname(),
        pid=os.getpid(),
        ppid=os.getppid(),
    )


def mark_lost_in(app: Celery) -> MarkLost:
    """Record a task as failed (``WorkerLostError``) unless it already ended."""

    def mark(task_id: str, reason: str) -> None:
        if app.backend.get_state(task_id) in states.READY_STATES:
            return
        app.backend.mark_as_failure(task_id, WorkerLostError(reason))

    return mark


def pending_of(app: Celery) -> Pending:
    """The markers of the app's queue, in the app's Redis."""
    return pending_for(app.conf.broker_url, app.conf.task_default_queue)


def reap_dead(app: Celery, stale_s: float) -> list[Marker]:
    """At worker start (and by beat): record dead workers' tasks as lost, free their tables."""
    pending = pending_of(app)
    return reap(pending, list(pending.markers()), stale_s, mark_lost_in(app))


def _quietly(what: str, call: Callable[[], object]) -> None:
    """Marker bookkeeping never fails a sync: Redis trouble is logged."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("pending marker not updated (%s): %s", what, exc)


def mark_running(app: Celery, task_id: str, table: str, stale_s: float) -> None:
    """A sync task about to run (before Celery records it STARTED): its table's marker says
    running on this process, so a worker killed from then on leaves a marker the next worker
    or beat finds, and its task is recorded lost."""
    pending = pending_of(app)
    started = marker_for_start(task_id, table, None)
    _quietly("start", lambda: pending.start(started, running_ttl_s(stale_s)))


@contextmanager
def tracking(app: Celery, task_id: str, table: str, interval_s: float) -> Iterator[None]:
    """Around a sync task (marked running by :func:`mark_running`): the marker goes when the
    task ends for good; a retry keeps it, queued again from the retry's due time."""
    pending = pending_of(app)
    try:
        yield
    except Retry as retry:
        countdown = retry.when if isinstance(retry.when, int | float) else 0.0
        queued = Marker(task_id=task_id, table=table, queued_at=time.time() + countdown)
        ttl = pending_ttl_s(interval_s) + int(countdown) + 1
        _quietly("retry", lambda: pending.update(queued, ttl))
        raise
    except BaseException:
        _quietly("end", lambda: pending.release(table, task_id))
        raise
    _quietly("end", lambda: pending.release(table, task_id))


class Heartbeat:
    """In a worker's main process: keeps the markers of the syncs it runs alive.

    It reads the worker's active requests (those its pool children run), so a child stuck
    in native code that holds its GIL still counts as alive; when the worker dies, the
    heartbeats stop and the markers go stale.
    """

    def __init__(self, app: Celery, every_s: float, stale_s: float, task_name: str) -> None:
        self._app = app
        self._every_s = every_s
        self._ttl_s = running_ttl_s(stale_s)
        self._task_name = task_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dbsync-pending", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def beat_once(self) -> int:
        from celery.worker import state

        pending, beaten = pending_of(self._app), 0
        for request in list(state.active_requests):
            if request.task_name == self._task_name and request.args:
                beaten += pending.heartbeat(str(request.args[0]), request.id, self._ttl_s)
        return beaten

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            _quietly("heartbeat", self.beat_once)
