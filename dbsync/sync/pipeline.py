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
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.normalizers.naming import direct
from sqlalchemy.exc import SAWarning

from dbsync.config.names import pipeline_name, staging_table
from dbsync.ops.processes import pid_alive

log = logging.getLogger("dbsync.sync_engine")

WORK_DIR_PREFIX = "dbsync-dlt-"

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
    rows: Iterator[pa.Table],
    work_dir: str | None = None,
) -> str | None:
    """Extract ``rows``, normalize them to parquet and load them into the staging table
    through ``destination`` (:meth:`dbsync.dialect.Dialect.dlt_destination`).

    Returns dlt's load id (None when there was nothing to load).
    """
    configure_dlt()
    name, staged = pipeline_name(target_database, table), staging_table(table)
    level = logging.DEBUG if staged == table else logging.INFO
    log.log(level, "table %r: dlt pipeline %s loads staging table %s", table, name, staged)
    engine = destination.config_params.get("credentials")
    key = (name, staging_database, str(getattr(engine, "url", "")), work_dir)
    pipeline = _PIPELINES.take(
        key, engine, lambda: _new_pipeline(destination, name, staging_database, work_dir)
    )
    try:
        resource = dlt.resource(
            rows,
            name=staged,
            table_name=staged,
            write_disposition="append",
        )
        info = pipeline.run(resource, loader_file_format="parquet")
    except BaseException:
        _discard(pipeline)  # whatever it left (a package, a schema) never reaches a later run
        raise
    _PIPELINES.give_back(key, engine, pipeline)
    _log_steps(table, pipeline)
    return info.loads_ids[0] if info.loads_ids else None


def _new_pipeline(
    destination: Any, name: str, staging_database: str, work_dir: str | None
) -> dlt.Pipeline:
    if work_dir is not None:  # WORK_DIR may name a directory that does not exist yet
        os.makedirs(work_dir, exist_ok=True)
    directory = tempfile.mkdtemp(prefix=_work_dir_prefix(), dir=work_dir)
    return dlt.pipeline(
        pipeline_name=name,
        destination=destination,
        dataset_name=staging_database,
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
