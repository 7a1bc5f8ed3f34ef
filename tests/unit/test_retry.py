"""dbsync.config.retry: exponential backoff with full jitter, bounded."""

from __future__ import annotations

import random

import pytest

from dbsync.config.retry import backoff_ceiling, backoff_delay, retrying, should_retry


@pytest.mark.parametrize(
    ("retries", "expected"), [(0, 2.0), (1, 4.0), (2, 8.0), (3, 16.0), (4, 32.0)]
)
def test_ceiling_doubles_with_each_retry(retries: int, expected: float) -> None:
    assert backoff_ceiling(retries, base=2, maximum=300) == expected


def test_ceiling_stops_at_the_maximum() -> None:
    assert backoff_ceiling(20, base=2, maximum=300) == 300


def test_ceiling_stays_finite_for_absurd_retry_counts() -> None:
    assert backoff_ceiling(10_000, base=2, maximum=300) == 300


def test_delay_is_the_ceiling_scaled_by_the_random_draw() -> None:
    assert backoff_delay(3, base=2, maximum=300, draw=lambda: 0.25) == 4.0


def test_delay_never_exceeds_the_maximum() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 2, 60, draw=rng.random) for n in range(50) for _ in range(20)]
    assert max(delays) <= 60


def test_delays_of_simultaneous_failures_are_spread_out() -> None:
    rng = random.Random(11)
    delays = {round(backoff_delay(5, 2, 300, draw=rng.random), 3) for _ in range(100)}
    assert len(delays) > 90


def test_jittered_delays_grow_on_average() -> None:
    rng = random.Random(3)

    def mean(retries: int) -> float:
        return sum(backoff_delay(retries, 1, 1000, draw=rng.random) for _ in range(2000)) / 2000

    assert mean(0) < mean(2) < mean(4)


@pytest.mark.parametrize(("base", "maximum"), [(0, 10), (1, 0), (-1, 10)])
def test_non_positive_base_or_maximum_is_rejected(base: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        backoff_ceiling(1, base, maximum)


def test_negative_retry_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="retries"):
        backoff_ceiling(-1, 2, 10)


@pytest.mark.parametrize(("retries", "allowed"), [(0, True), (5, True), (6, False), (7, False)])
def test_retries_stop_at_max_retries(retries: int, allowed: bool) -> None:
    assert should_retry(retries, max_retries=6) is allowed


def test_zero_max_retries_never_retries() -> None:
    assert should_retry(0, max_retries=0) is False


class _Flaky:
    """Raises ``failures`` times, then returns "done"."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_retrying_returns_once_a_retryable_error_passes() -> None:
    flaky, waits = _Flaky(2, TimeoutError("busy")), []
    result = retrying(
        flaky, retryable=lambda e: True, retries=3, base=1, maximum=8, sleep=waits.append
    )
    assert (result, flaky.calls, len(waits)) == ("done", 3, 2)


def test_retrying_gives_up_after_the_retries_with_the_last_error() -> None:
    flaky, waits = _Flaky(10, TimeoutError("busy")), []
    with pytest.raises(TimeoutError):
        retrying(flaky, retryable=lambda e: True, retries=2, base=1, maximum=8, sleep=waits.append)
    assert flaky.calls == 3
    assert all(0 <= w <= 2**i for i, w in enumerate(waits))


def test_retrying_raises_other_errors_at_once() -> None:
    flaky = _Flaky(1, ValueError("bad"))
    with pytest.raises(ValueError):
        retrying(flaky, retryable=lambda e: False, retries=5, base=1, maximum=8, sleep=print)
    assert flaky.calls == 1
