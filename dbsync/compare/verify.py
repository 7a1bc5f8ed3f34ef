"""Compare source and target: row counts and content checksums per primary-key range.

Both servers compute the checksums (MD5 of each row's exact text form, summed per chunk),
so only a few numbers per chunk cross the network. Chunks are ranges of the configured key
(or of the source's primary key); the first and last are open-ended, so extra rows in the
target are found too. A table with no key at all is compared whole, in one chunk.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from dbsync.model import Key, RowSet
from dbsync.sync.run import table_config
from dbsync.sync.runtime import Runtime

log = logging.getLogger("dbsync.verify")


@dataclass(frozen=True)
class ChunkDiff:
    lower: Key | None
    upper: Key | None
    source_rows: int
    target_rows: int

    def describe(self, key: Sequence[str]) -> str:
        low = "start" if self.lower is None else _show(key, self.lower)
        high = "end" if self.upper is None else _show(key, self.upper)
        return (
            f"[{low} .. {high}): source {self.source_rows} rows, target {self.target_rows} rows"
            + (", content differs" if self.source_rows == self.target_rows else "")
        )


def _show(key: Sequence[str], values: Key) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(key, values, strict=True))


@dataclass
class VerifyReport:
    table: str
    key: tuple[str, ...] = ()  # the columns the chunks are ranges of (none: the whole table)
    source_rows: int = 0
    target_rows: int = 0
    chunks: int = 0
    mismatches: list[ChunkDiff] = field(default_factory=list)
    error: str | None = None
    only_in_target: int = 0  # rows whose key the source does not have (deleted there?)
    only_in_source: int = 0  # rows not yet copied
    differing: int = 0  # rows with the same key on both sides and different content

    def describe_rows(self) -> str:
        if not self.key:
            return "not told apart (the table has no key)"
        return (
            f"{self.only_in_target} only in target, {self.only_in_source} only in source, "
            f"{self.differing} differ"
        )

    @property
    def ok(self) -> bool:
        return self.error is None and not self.mismatches and self.source_rows == self.target_rows


def _count_rows_apart(
    runtime: Runtime, sets: tuple[RowSet, RowSet], key: Sequence[str], report: VerifyReport
) -> None:
    """Tell a mismatching chunk's rows apart: only in one side, or the same key differing."""
    engines = (runtime.engines.source, runtime.engines.target)
    source, target = (
        runtime.dialect.row_digests(engine, rows, key)
        for engine, rows in zip(engines, sets, strict=True)
    )
    report.only_in_target += len(target.keys() - source.keys())
    report.only_in_source += len(source.keys() - target.keys())
    report.differing += sum(1 for k in source.keys() & target.keys() if source[k] != target[k])


def verify_table(runtime: Runtime, table: str, chunk_rows: int = 10_000) -> VerifyReport:
    """Compare one table's rows on both sides; report mismatching key ranges."""
    report = VerifyReport(table=table)
    config = table_config(runtime, table)
    engines = runtime.engines
    dialect = runtime.dialect
    source_db, target_db = dialect.source_schema(), dialect.target_schema()
    with engines.source.connect() as conn:
        source = dialect.require_source_table(
            conn, source_db, table, config.primary_key, config.modifier
        )
    with engines.target.connect() as conn:
        target = dialect.read_table(conn, target_db, table)
    if target is None:
        report.error = f"table {table!r} does not exist in the target"
        return report
    missing = [c for c in source.column_names if target.column(c) is None]
    if missing:
        report.error = f"target table {table!r} lacks column(s) {missing}"
        return report
    key = report.key = config.primary_key or source.primary_key
    columns = source.column_names
    bounds = (
        dialect.key_boundaries(engines.source, source_db, table, key, chunk_rows) if key else []
    )
    edges: list[Key | None] = [None, *bounds, None]
    for lower, upper in zip(edges, edges[1:], strict=False):
        where, params = dialect.range_predicate(key, lower, upper)
        src = dialect.aggregate(
            engines.source,
            RowSet(dialect.qualified(source_db, table), source, columns, where, params),
        )
        dst = dialect.aggregate(
            engines.target,
            RowSet(dialect.qualified(target_db, table), target, columns, where, params),
        )
        report.chunks += 1
        report.source_rows += src[0]
        report.target_rows += dst[0]
        if src != dst:
            report.mismatches.append(ChunkDiff(lower, upper, src[0], dst[0]))
            sets = (
                RowSet(dialect.qualified(source_db, table), source, columns, where, params),
                RowSet(dialect.qualified(target_db, table), target, columns, where, params),
            )
            if key:  # rows of a keyless table have no identity to match them by
                _count_rows_apart(runtime, sets, key, report)
    log.info(
        "table %s: %s source rows, %s target rows, %s chunks, %s mismatching (%s)",
        table,
        report.source_rows,
        report.target_rows,
        report.chunks,
        len(report.mismatches),
        report.describe_rows(),
    )
    return report
