"""The dlt pipeline of one table: source rows as arrow → parquet load package → staging table.

One pipeline per table, named after the target database and table, so its schema, state
and load packages are its own. Its working directory is fresh for every run (any worker
can sync any table after any other, and a package left behind by a killed process can never
wedge a later run); dlt's own bookkeeping tables live in the staging database, next to the
staging tables it loads.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.normalizers.naming import direct
from sqlalchemy.exc import SAWarning

from dbsync.config.names import pipeline_name, staging_table

log = logging.getLogger("dbsync.sync_engine")

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
    directory = tempfile.mkdtemp(prefix="dbsync-dlt-", dir=work_dir)
    try:
        pipeline = dlt.pipeline(
            pipeline_name=name,
            destination=destination,
            dataset_name=staging_database,
            pipelines_dir=directory,
        )
        resource = dlt.resource(
            rows,
            name=staged,
            table_name=staged,
            write_disposition="append",
        )
        info = pipeline.run(resource, loader_file_format="parquet")
        _log_steps(table, pipeline)
        return info.loads_ids[0] if info.loads_ids else None
    finally:
        shutil.rmtree(directory, ignore_errors=True)
