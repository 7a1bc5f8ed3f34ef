"""Key-set comparison: bucket folds and their narrowing (dbsync.compare.keydiff), without a server.

``MemorySide`` folds a Python set of keys exactly as ``key_folds.LocalSide`` does, so the
narrowing logic is exercised on key sets of any shape and size.
"""

from __future__ import annotations

import zlib

import pytest

from dbsync.backends import key_folds
from dbsync.compare import keydiff
from dbsync.compare.keydiff import deeper_bits, differing, first_bits, narrow, rows_behind
from dbsync.model import Buckets


class MemorySide(key_folds.LocalSide):
    """A LocalSide over keys held in memory (one integer column)."""

    def __init__(self, keys: set[int]) -> None:
        super().__init__((str(k), k) for k in sorted(keys))
        self.scans = 0
        self.fetches = 0

    def folds(self, buckets: Buckets) -> dict[int, keydiff.Fold]:
        self.scans += 1
        return super().folds(buckets)

    def identities(self, buckets: Buckets, with_keys: bool) -> list[tuple]:
        self.fetches += 1
        return super().identities(buckets, with_keys)


def _compare(source: set[int], target: set[int]) -> tuple[keydiff.KeyDiff, MemorySide]:
    sides = (MemorySide(source), MemorySide(target))
    return keydiff.compare(sides), sides[1]


def test_first_fold_without_a_count_gap_has_coarse_buckets() -> None:
    assert [first_bits(n) for n in (0, 15, 16, 1_000, 1_000_000)] == [1, 1, 1, 5, 10]


def test_first_fold_is_finer_the_more_differences_are_expected() -> None:
    assert [first_bits(1_000_000, d) for d in (1, 1_000, 100_000)] == [10, 15, 16]


def test_first_fold_never_asks_for_more_than_max_groups() -> None:
    assert 1 << first_bits(10_000_000_000) == keydiff.MAX_GROUPS


def test_deeper_fold_splits_differing_buckets_within_max_groups() -> None:
    assert deeper_bits(16, 1_000) == 22  # 1,000 buckets x 64 sub-buckets <= 65,536


def test_no_deeper_fold_when_most_buckets_differ() -> None:
    assert deeper_bits(16, 10_000) is None


def test_no_deeper_fold_past_the_hash_width() -> None:
    assert deeper_bits(keydiff.HASH_BITS, 1) is None


def test_fetch_limit_grows_with_the_table_up_to_a_batch() -> None:
    assert [keydiff.fetch_limit(n) for n in (1_000, 2_000_000, 100_000_000)] == [
        keydiff.FETCH_ROWS,
        250_000,
        keydiff.BATCH_ROWS,
    ]


def test_differing_counts_a_bucket_missing_on_one_side() -> None:
    assert differing({1: (2, 5), 2: (1, 1)}, {1: (2, 5), 3: (1, 9)}) == (2, 3)


def test_rows_behind_takes_the_larger_side_of_each_bucket() -> None:
    assert rows_behind((1, 2), {1: (5, 0), 2: (1, 0)}, {1: (3, 0), 2: (4, 0)}) == 9


def test_equal_sets_need_only_the_whole_table_fold() -> None:
    keys = set(range(10_000))
    diff, target = _compare(keys, keys)
    assert (diff.same, target.scans) == (True, 0)


def test_spread_differences_are_found_exactly() -> None:
    target = set(range(1, 50_001))
    source = target - set(range(7, 50_001, 97))
    diff, _ = _compare(source, target)
    assert sorted(k for (k,) in diff.only_in_target) == list(range(7, 50_001, 97))


def test_a_contiguous_range_is_found_exactly() -> None:
    target = set(range(100_000))
    source = target - set(range(40_000, 41_000))
    diff, _ = _compare(source, target)
    assert len(diff.only_in_target) == 1_000


def test_keys_only_in_the_source_are_counted_not_returned() -> None:
    diff, _ = _compare(set(range(100)) | {500, 501}, set(range(100)) | {900})
    assert (diff.only_in_target, diff.only_in_source) == ([(900,)], 2)


def test_consecutive_integer_keys_do_not_cancel_out() -> None:
    """CRC32 is linear: without MIX, these sets fold alike in some buckets."""
    target = set(range(1, 2001))
    source = set(range(601, 2001)) | set(range(3001, 3601))
    diff, _ = _compare(source, target)
    assert len(diff.only_in_target) == 600


def test_narrowing_fetches_few_rows_for_few_differences_in_many() -> None:
    target = set(range(1_200_000))
    source = target - {5, 500_000, 1_199_999}
    sides = (MemorySide(source), MemorySide(target))
    narrowed = narrow(sides, len(target))
    assert len(narrowed.rows) == 3
    assert sum(narrowed.rows.values()) <= keydiff.FETCH_ROWS


def test_batches_group_buckets_by_rows_held() -> None:
    narrowed = keydiff.Narrowed(8, {1: 40, 2: 40, 3: 40, 4: 10})
    groups = [b.within[1] for b in narrowed.batches(80) if b.within]
    assert groups == [(1, 2), (3, 4)]


def test_many_differences_are_fetched_in_batches(monkeypatch) -> None:
    monkeypatch.setattr(keydiff, "BATCH_ROWS", 5_000)
    target = set(range(60_000))
    source = set(range(0, 60_000, 2))
    diff, side = _compare(source, target)
    assert (len(diff.only_in_target), side.fetches > 1) == (30_000, True)


def test_narrowing_goes_deeper_until_few_rows_remain(monkeypatch) -> None:
    monkeypatch.setattr(keydiff, "fetch_limit", lambda rows: 1_000)
    target = set(range(200_000))
    source = target - set(range(11, 200_000, 1_000))
    sides = (MemorySide(source), MemorySide(target))
    diff = keydiff.compare(sides)
    assert (len(diff.only_in_target), sides[1].scans) == (200, 2)


def test_identity_text_matches_the_server_form_for_composite_keys() -> None:
    assert key_folds.identity_text(["a|", "b"]) == "2:a|1:b"
    assert key_folds.identity_text(["a", "|b"]) == "1:a2:|b"


@pytest.mark.parametrize("key", ["7", "x"])
def test_local_hash_is_crc32_of_the_identity(key: str) -> None:
    assert key_folds.LocalSide._hash(key) == zlib.crc32(key.encode())


class BoundedSide(MemorySide):
    """A MemorySide that reports key bounds (as a server side keyed by one integer does)."""

    def __init__(self, keys: set[int], bounds: tuple[int, int] | None) -> None:
        super().__init__(keys)
        self.bounds = bounds
        self.range: tuple[int, int] | None = None

    def key_bounds(self) -> tuple[int, int] | None:
        return self.bounds

    def ranged(self, low: int, high: int) -> BoundedSide:
        self.range = (low, high)
        return self


def test_sides_are_ranged_over_the_bounds_of_both_when_both_have_bounds() -> None:
    sides = (BoundedSide({1}, (5, 90)), BoundedSide({2}, (-3, 40)))
    keydiff.ranged(sides)
    assert [s.range for s in sides] == [(-3, 90), (-3, 90)]


def test_sides_stay_hashed_when_one_side_has_no_bounds() -> None:
    sides = (BoundedSide({1}, (5, 90)), BoundedSide(set(), None))
    assert keydiff.ranged(sides) == sides and sides[0].range is None


def test_runs_group_consecutive_bucket_numbers() -> None:
    assert key_folds.runs([7, 1, 3, 2, 9, 8]) == [(1, 3), (7, 9)]


def test_packed_values_split_into_rows_and_a_cut_text_reads_as_none() -> None:
    from dbsync.backends.key_folds import read_packed

    def reply(count: int, text: str | None):
        return lambda sql: [(count, text)]

    assert read_packed(reply(2, "1 3 5 2 4 6"), ("b", "n", "x"), "t") == [
        ("1", "3", "5"),
        ("2", "4", "6"),
    ]
    assert read_packed(reply(0, None), ("k",), "t") == []
    assert read_packed(reply(2, "1 3 5 2 4"), ("b", "n", "x"), "t") is None
