"""Which rows of a keyed table differ between source and target, found by folds both servers
compute: the key comparison of :mod:`dbsync.keydiff`, extended to row content.

A row is placed in a bucket by its key's hash (as ``keydiff`` places keys), and a bucket
folds to ``(rows, XOR of its rows' content fingerprints)``; the fingerprint covers every
compared column's exact text, columns taken by name (the SQL:
:mod:`dbsync.backends.mysql.rowdiff`). Only the
buckets whose folds differ are folded again, finer, until few rows remain; only then are
those buckets' rows listed as ``(identity, fingerprint, key)`` on both sides and matched by
identity. A row is reported when its identity is missing on the other side or its
fingerprint differs, so a report is exact; a difference can be missed only when two
fingerprints collide (CRC32: about one in four billion changed rows), and is found by a later
comparison once the row changes again.

Reports are candidates, not verdicts: the caller re-reads them from the source before it
writes anything (:mod:`dbsync.compare.reconcile`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbsync.compare import keydiff
from dbsync.model import Key, RowSide


@dataclass
class RowDiff:
    """Rows that differ, by key: what the target lacks, holds differently or holds alone."""

    missing: list[Key] = field(default_factory=list)  # source keys the target lacks
    changed: list[Key] = field(default_factory=list)  # source keys held differently
    only_in_target: list[Key] = field(default_factory=list)  # target keys the source lacks
    counts: tuple[int, int] = (0, 0)  # rows of source and target (the first fold's)
    too_many: bool = False  # more rows differ than the limit: the lists are incomplete

    @property
    def size(self) -> int:
        return len(self.missing) + len(self.changed) + len(self.only_in_target)

    @property
    def to_upsert(self) -> list[Key]:
        return [*self.missing, *self.changed]


def differences_hint(source_rows: int, target_rows: int) -> int:
    """Differences the first fold is sized for: the row count gap, and at least one in a
    thousand rows (drift is rarely a single row; a finer first fold costs little more)."""
    return max(abs(source_rows - target_rows), max(source_rows, target_rows) // 1000, 1)


def compare(
    sides: tuple[RowSide, RowSide], rows: int, hint: int, limit: Callable[[int], int]
) -> RowDiff:
    """The rows that differ; ``too_many`` as soon as more than ``limit(rows)`` rows (of the
    larger side, as the first fold counts them) are known to differ (a caller then copies the
    table whole instead). The first fold gives the row counts: no separate count is needed."""
    narrowed = keydiff.narrow(sides, rows, hint)  # type: ignore[arg-type]
    diff = RowDiff(counts=narrowed.counts)
    most = limit(max(narrowed.counts))
    for buckets in narrowed.batches():
        source, target = _both(sides, lambda side, at=buckets: side.rows(at))
        _match(source, target, diff)
        if diff.size > most:
            diff.too_many = True
            return diff
    return diff


def _match(source: list[tuple[Any, ...]], target: list[tuple[Any, ...]], diff: RowDiff) -> None:
    """Match one batch of rows by identity: ``(identity, fingerprint, key values...)``."""
    theirs = {row[0]: row[1] for row in target}
    ours = {row[0] for row in source}
    for identity, fingerprint, *key in source:
        held = theirs.get(identity)
        if held is None:
            diff.missing.append(tuple(key))
        elif held != fingerprint:
            diff.changed.append(tuple(key))
    diff.only_in_target += [tuple(row[2:]) for row in target if row[0] not in ours]


def _both(sides: tuple[RowSide, RowSide], work: Callable[[RowSide], Any]) -> tuple[Any, Any]:
    return keydiff._both(sides, work)  # type: ignore[arg-type]
