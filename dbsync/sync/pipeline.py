"""The dlt pipeline of one table: source rows as arrow → parquet load package → staging table.

One pipeline per table, named after the target database and table, so its schema, state
and load packages are its own. Its working directory belongs to one process: a process
keeps a table's pipeline (and its directory) for its next syncs of that table, since
building one is most of what a small sync costs, and throws it away after a failed run, so
a package left behind can never wedge a later run; any worker still syncs any table after
any other (dbsync's state is the target's data, not dlt's). dlt's own bookkeeping tables
live in the staging database, next to the staging tables it loads. A directory's name
carries the host and the process id (``dbsync-dlt-<host>-<pid>-...``):
:func:`remove_dead_work_dirs` removes those a killed process left behind (a worker calls it
when it starts).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import dlt
import pyarrow as pa
from dlt.common.normalizers.naming import direct
from sqlalchemy.exc import SAWarning

from dbsync.config.names import batch_pipeline_name, pipeline_name, staging_table
from dbsync.ops.processes import pid_alive

log = logging.getLogger("dbsync.sync_engine")

WORK_DIR_PREFIX = "dbsync-dlt-"
_T = TypeVar("_T")

_DLT_DEFAULTS = {
    # never phone home: production syncs must not depend on (or leak to) the internet
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    # keep table and column names exactly as MySQL has them (see ExactNames)
    "SCHEMA__NAMING": "dbsync.sync.pipeline.ExactNames",
    # the authoritative state is the target's data; a fresh working dir needs no restore
    "RESTORE_FROM_DESTINATION": "false",
    "RUNTIME__LOG_LEVEL": "WARNING",
    # parquet files of bounded size: memory stays flat and LOAD DATA runs per file
    "DATA_WRITER__FILE_MAX_ITEMS": "100000",
    "DATA_WRITER__BUFFER_MAX_ITEMS": "50000",
    "LOAD__WORKERS": "1",
    "NORMALIZE__WORKERS": "1",
}


class ExactNames(direct.NamingConvention):
    """dlt naming that keeps every column name exactly as MySQL has it.

    dlt's ``direct`` convention still strips blanks and turns quotes and newlines into
    ``_``; a column named ``say "hi"`` would then reach the load file under a name the
    staging table lacks. Table names need no such care: dbsync hands dlt only safe staging
    table names (dbsync.config.names).
    """

    def normalize_identifier(self, identifier: str) -> str:
        if not identifier:
            raise ValueError("an empty name cannot be normalized")
        return identifier


# dlt reflects the staging tables dbsync created; SQLAlchemy has no GEOMETRY type and says so
# on every reflection. The column needs no type on dlt's side: dbsync loads it.
warnings.filterwarnings("ignore", message="Did not recognize type", category=SAWarning)


def warm_up() -> None:
    """Import what a dlt run loads lazily, at process start instead of inside the first sync
    (about a second of the first sync's time otherwise)."""
    import importlib

    configure_dlt()
    for module in (
        "dlt.extract",
        "dlt.normalize",
        "dlt.normalize.items_normalizers",
        "dlt.load",
        "dlt.common.libs.pyarrow",
        "dlt.common.data_writers.writers",
        "dlt.destinations.impl.sqlalchemy.sqlalchemy_job_client",
        "dlt.destinations.impl.sqlalchemy.db_api_client",
        "pyarrow.parquet",
    ):
        importlib.import_module(module)


def configure_dlt() -> None:
    """dlt settings dbsync relies on; an operator's own environment values win."""
    for name, value in _DLT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    _remember_secret_hints()


def _remember_secret_hints() -> None:
    """dlt's environment provider asks, for each of the ~240 settings a run looks up, whether
    its type hint is a secret's, by walking the hint's typing structure every time (a fifth
    of a small run's CPU). The answer depends on the hint alone: remember it."""
    from dlt.common.configuration.providers import environ

    asks = environ.is_secret_hint
    if getattr(asks, "dbsync_remembers", False):
        return
    answers: dict[object, bool] = {}

    def is_secret_hint(hint: Any) -> bool:
        try:
            return answers[hint]
        except KeyError:
            answers[hint] = answer = asks(hint)
            return answer
        except TypeError:  # an unhashable hint: ask every time
            return asks(hint)

    is_secret_hint.dbsync_remembers = True  # type: ignore[attr-defined]
    environ.is_secret_hint = is_secret_hint  # type: ignore[assignment]


def _log_steps(table: str, pipeline: dlt.Pipeline) -> None:
    trace = pipeline.last_trace
    if trace is None:
        return
    steps = ", ".join(
        f"{step.step} {(step.finished_at - step.started_at).total_seconds():.2f}s"
        for step in trace.steps
        if step.finished_at is not None
    )
    log.info("table %s: dlt %s", table, steps)


def run_pipeline(
    destination: Any,
    target_database: str,
    staging_database: str,
    table: str,
    rows: Iterable[pa.Table],
    work_dir: str | None = None,
) -> str | None:
    """Extract ``rows``, normalize them to parquet and load them into the staging table
    through ``destination`` (:meth:`dbsync.dialect.Dialect.dlt_destination`).

    Returns dlt's load id (None when there was nothing to load).
    """
    target = table_target(destination, target_database, staging_database, table, work_dir)
    return _run_alone(target, table, rows)


def table_target(
    destination: Any, target_database: str, staging_database: str, table: str, work_dir: str | None
) -> Target:
    """Where a run of ``table`` alone loads: its own pipeline."""
    return Target(destination, pipeline_name(target_database, table), staging_database, work_dir)


def _run_alone(target: Target, table: str, rows: Iterable[pa.Table]) -> str | None:
    staged = staging_table(table)
    level = logging.DEBUG if staged == table else logging.INFO
    log.log(
        level, "table %r: dlt pipeline %s loads staging table %s", table, target.pipeline, staged
    )
    return _run(target, {table: rows})


@dataclass(frozen=True)
class Target:
    """Where a dlt run loads: the destination, the pipeline's name, the staging database
    and the directory its working directory goes in."""

    destination: Any
    pipeline: str
    staging_database: str
    work_dir: str | None

    @property
    def engine(self) -> Any:
        return self.destination.config_params.get("credentials")

    def key(self) -> tuple[object, ...]:
        engine = str(getattr(self.engine, "url", ""))
        return (self.pipeline, self.staging_database, engine, self.work_dir)


# one dlt run at a time in a process: runs started by the threads of a batched sync queue
_ONE_RUN = threading.Lock()


def _run(target: Target, rows: dict[str, Iterable[pa.Table]]) -> str | None:
    """One dlt run loading each table's rows into its staging table."""
    configure_dlt()
    key, engine = target.key(), target.engine
    with _ONE_RUN:
        pipeline = _PIPELINES.take(key, engine, lambda: _new_pipeline(target))
        try:
            resources = [
                dlt.resource(
                    data,
                    name=staging_table(table),
                    table_name=staging_table(table),
                    write_disposition="append",
                )
                for table, data in rows.items()
            ]
            info = pipeline.run(resources, loader_file_format="parquet")
        except BaseException:
            _discard(pipeline)  # whatever it left (a package, a schema) never reaches a later run
            raise
        _PIPELINES.give_back(key, engine, pipeline)
    _log_steps(", ".join(rows), pipeline)
    return info.loads_ids[0] if info.loads_ids else None


def _new_pipeline(target: Target) -> dlt.Pipeline:
    if target.work_dir is not None:  # WORK_DIR may name a directory that does not exist yet
        os.makedirs(target.work_dir, exist_ok=True)
    directory = tempfile.mkdtemp(prefix=_work_dir_prefix(), dir=target.work_dir)
    return dlt.pipeline(
        pipeline_name=target.pipeline,
        destination=target.destination,
        dataset_name=target.staging_database,
        pipelines_dir=directory,
    )


def _discard(pipeline: dlt.Pipeline) -> None:
    shutil.rmtree(pipeline.pipelines_dir, ignore_errors=True)


class _PipelineCache:
    """This process's dlt pipelines, one per table, reused by its next syncs of the table.

    Building a pipeline (its configuration, destination, schema and working directory) is
    most of what a sync of a few rows costs. A pipeline is reused only after a run that
    ended well, only by this process (its working directory carries the pid, and a fork
    starts with none) and only with the engine it was built on (a pool-less engine, as
    SQLite's, may be a new object each time); a run that failed throws its pipeline and
    directory away. At most ``MAX_PIPELINES`` are kept, the least recently used go first.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._pid = os.getpid()
        self._idle: OrderedDict[tuple[object, ...], tuple[Any, dlt.Pipeline]] = OrderedDict()
        self._guard = threading.Lock()

    def take(
        self, key: tuple[object, ...], engine: Any, create: Callable[[], dlt.Pipeline]
    ) -> dlt.Pipeline:
        with self._guard:
            if self._pid != os.getpid():  # forked: the parent's pipelines are not ours
                self._idle.clear()
                self._pid = os.getpid()
            built_on, pipeline = self._idle.pop(key, (None, None))
        if pipeline is None:
            return create()
        if not (built_on is engine or _pool_less(engine)) or not os.path.isdir(
            pipeline.pipelines_dir
        ):
            _discard(pipeline)
            return create()
        return pipeline  # given back only after a run that loaded everything it extracted

    def give_back(self, key: tuple[object, ...], engine: Any, pipeline: dlt.Pipeline) -> None:
        with self._guard:
            self._idle[key] = (engine, pipeline)
            while len(self._idle) > self._size:
                _key, (_engine, evicted) = self._idle.popitem(last=False)
                _discard(evicted)

    def clear(self) -> None:
        with self._guard:
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for _engine, pipeline in idle:
            _discard(pipeline)


def _pool_less(engine: Any) -> bool:
    pool = getattr(engine, "pool", None)
    return pool is not None and type(pool).__name__ == "NullPool"


MAX_PIPELINES = 512
_PIPELINES = _PipelineCache(MAX_PIPELINES)
atexit.register(_PIPELINES.clear)


def discard_pipelines() -> None:
    """Remove this process's idle pipelines and their working directories."""
    _PIPELINES.clear()


def host_label() -> str:
    """This host's name as working directory names carry it."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def _work_dir_prefix() -> str:
    return f"{WORK_DIR_PREFIX}{host_label()}-{os.getpid()}-"


def remove_dead_work_dirs(work_dir: str | None = None) -> list[str]:
    """Remove the dlt working directories of this host's processes that no longer exist
    (killed mid-sync); returns their paths. Directories of other hosts (a shared
    ``WORK_DIR``) and of live processes are left alone."""
    root = work_dir or tempfile.gettempdir()
    pattern = re.compile(rf"^{re.escape(WORK_DIR_PREFIX + host_label())}-(\d+)-")
    removed = []
    for entry in os.scandir(root):
        found = pattern.match(entry.name)
        if found and entry.is_dir() and not pid_alive(int(found.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


# a read of more rows than this is staged by a dlt run of its own, not in a batch
BATCH_MAX_ROWS = 10_000
# members of a batch that run at once (see Batch)
TURNS = 2


class BatchFailed(Exception):
    """The batch's dlt run failed: each table of it is staged again by a run of its own."""


@dataclass(frozen=True)
class Staging:
    """What one table hands to dlt: where (its own run's :class:`Target`), the rows, how to
    empty its staging table again, and the guard a run on its destination runs under."""

    target: Target
    table: str
    rows: Iterable[pa.Table]
    reset: Callable[[], None]
    guard: Callable[[], AbstractContextManager[object]]


class Batch:
    """The small reads of a group of tables that one process syncs side by side (threads),
    staged by one dlt run instead of one run each: a dlt run costs about the same for one
    row or for the rows of many tables.

    Every member either submits its rows (:meth:`submit`, then waits) or leaves
    (:meth:`leave`: nothing to stage, a large read, a failure); the member that completes
    the group runs dlt for all. Each table keeps its own lock, staging table, merge and
    status; when the shared run fails, each member stages its rows again alone, so one
    table's failure stays its own. The members take turns (``TURNS`` run at once, each
    until it waits for the group's run or ends): two overlap one's statements with the
    other's Python work; all sixteen at once competed for the interpreter and the pools
    (a sync of nothing changed took twice as long).
    """

    def __init__(self, target_database: str, tables: Sequence[str]) -> None:
        self.pipeline = batch_pipeline_name(target_database, tuple(tables))
        self._pending = len(tables)
        self._rows: dict[str, list[pa.Table]] = {}
        self._first: Staging | None = None
        self._ready = threading.Condition()
        self._outcome: tuple[str | None, BaseException | None] | None = None
        self.turn = threading.Semaphore(TURNS)  # held by the members that run
        self.shared: dict[object, Any] = {}  # facts every member may use (see :func:`shared`)

    def submit(self, staging: Staging, rows: list[pa.Table]) -> str | None:
        """Hand over a table's rows; returns the shared run's load id once it has run."""
        with self._ready:
            self._rows[staging.table] = rows
            self._first = self._first or staging
            runs = self._arrive()
            if not runs:
                self.turn.release()  # the next member runs while this one waits
                self._ready.wait_for(lambda: self._outcome is not None)
        if runs:
            self._run()
        else:
            self.turn.acquire()
        assert self._outcome is not None
        load_id, error = self._outcome
        if error is not None:
            raise BatchFailed(str(error)) from error
        return load_id

    def leave(self) -> None:
        """This member stages nothing in the batch."""
        with self._ready:
            runs = self._arrive()
        if runs:
            self._run()

    def _arrive(self) -> bool:
        self._pending -= 1
        return self._pending == 0 and bool(self._rows)

    def _run(self) -> None:
        assert self._first is not None
        first = self._first.target
        target = Target(first.destination, self.pipeline, first.staging_database, first.work_dir)
        try:
            with self._first.guard():
                outcome: tuple[str | None, BaseException | None] = (_run(target, self._rows), None)
        except Exception as exc:  # noqa: BLE001 - each member stages again alone
            log.warning("batched dlt run of %d tables failed: %s", len(self._rows), exc)
            outcome = (None, exc)
        with self._ready:
            self._outcome = outcome
            self._ready.notify_all()


_MEMBER = threading.local()


@contextmanager
def member_of(batch: Batch) -> Iterator[None]:
    """This thread's sync is a member of ``batch`` until it submits, leaves or ends; it runs
    in its turn."""
    with batch.turn:
        _MEMBER.batch = batch
        try:
            yield
        finally:
            leave_batch()


def leave_batch() -> None:
    """This thread stages nothing in its batch (if any): the others need not wait for it."""
    batch, _MEMBER.batch = getattr(_MEMBER, "batch", None), None
    if batch is not None:
        batch.leave()


def shared(key: object, compute: Callable[[], _T]) -> _T:
    """``compute()``, once per batch for this thread's batch (every call without one).

    For facts about the servers that hold for every member's run when taken before any of
    them: the source's oldest activity (a safe point taken earlier than a read is lower, so
    still safe), the staging database being there."""
    batch = getattr(_MEMBER, "batch", None)
    if batch is None:
        return compute()
    if key not in batch.shared:
        batch.shared[key] = compute()
    return cast(_T, batch.shared[key])


def stage(staging: Staging) -> str | None:
    """Stage a table's rows: in this thread's batch when they are few, else by a dlt run of
    their own. Returns the load id."""
    batch = getattr(_MEMBER, "batch", None)
    if batch is None:
        return _alone(staging, staging.rows)
    taken, rest = _take(staging.rows, BATCH_MAX_ROWS)
    if rest is not None:
        leave_batch()
        return _alone(staging, itertools.chain(taken, rest))
    _MEMBER.batch = None
    try:
        return batch.submit(staging, taken)
    except BatchFailed:
        staging.reset()
        return _alone(staging, taken)


def _alone(staging: Staging, rows: Iterable[pa.Table]) -> str | None:
    with staging.guard():
        return _run_alone(staging.target, staging.table, rows)


def _take(rows: Iterable[pa.Table], limit: int) -> tuple[list[pa.Table], Iterator[pa.Table] | None]:
    """Up to ``limit`` rows read; the rest of the stream when there are more (else None)."""
    stream, taken, count = iter(rows), [], 0
    for part in stream:
        taken.append(part)
        count += part.num_rows
        if count > limit:
            return taken, stream
    return taken, None
