"""Retry backoff policy: exponential growth, full jitter, bounded; and one loop applying it.

The delay before retry number ``n + 1`` (``n`` = retries already made) is drawn uniformly
from ``[0, min(maximum, base * 2**n)]`` ("full jitter"): the ceiling doubles with every
attempt so a struggling database gets room to recover, and the random draw spreads the
retries of many workers that failed at the same moment instead of having them return
together and fail together again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# A target DDL (swap, ALTER, CREATE, DROP) that timed out waiting for a metadata lock is
# retried this many times, after full-jitter delays of at most 1, 2, 4 and 8 seconds: readers
# get the table between attempts, and the sync gives up within about a minute.
MDL_RETRIES = 4
MDL_BACKOFF_BASE = 1.0
MDL_BACKOFF_MAX = 8.0
# Recording a sync's outcome in the status table is retried twice, within about 3 seconds:
# a failed sync often failed because the target's connections were lost, and the pool hands
# out fresh ones only after it has seen one of them fail.
STATUS_RETRIES = 2
STATUS_BACKOFF_BASE = 1.0
STATUS_BACKOFF_MAX = 2.0

# 2**64 already dwarfs any sane maximum; clamping the exponent keeps the float finite.
_MAX_EXPONENT = 64


def backoff_ceiling(retries: int, base: float, maximum: float) -> float:
    """The largest delay (seconds) before the next attempt, after ``retries`` retries."""
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    if base <= 0 or maximum <= 0:
        raise ValueError("base and maximum must be positive")
    return min(maximum, base * 2.0 ** min(retries, _MAX_EXPONENT))


def backoff_delay(
    retries: int,
    base: float,
    maximum: float,
    *,
    draw: Callable[[], float] = random.random,
) -> float:
    """A jittered delay in ``[0, backoff_ceiling(...)]``; ``draw`` returns a float in [0, 1)."""
    return backoff_ceiling(retries, base, maximum) * draw()


def should_retry(retries: int, max_retries: int) -> bool:
    """Whether a transient failure after ``retries`` retries may be retried once more."""
    return retries < max_retries


def retrying(
    call: Callable[[], T],
    *,
    retryable: Callable[[Exception], bool],
    retries: int,
    base: float,
    maximum: float,
    on_retry: Callable[[int, float, Exception], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, retried after a backoff delay while it raises an exception ``retryable``
    accepts, at most ``retries`` times; the last exception propagates.

    ``on_retry(retry_number, delay, exception)`` is told before each wait.
    """
    done = 0
    while True:
        try:
            return call()
        except Exception as exc:
            if not retryable(exc) or not should_retry(done, retries):
                raise
            delay = backoff_delay(done, base, maximum)
            done += 1
            if on_retry is not None:
                on_retry(done, delay, exc)
        sleep(delay)
