"""The pending marker's policy: how long a table waited, and when its worker is dead."""

from __future__ import annotations

import os
import subprocess
import sys

from workers.pending import Marker, describe, hostname, pending_ttl_s

NOW = 1_000_000.0


def running(**fields: object) -> Marker:
    values: dict = {"task_id": "t", "table": "orders", "queued_at": NOW - 100}
    values.update(started_at=NOW - 50, heartbeat_at=NOW - 10, host="elsewhere", pid=1, ppid=1)
    values.update(fields)
    return Marker(**values)


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_queued_marker_has_waited_since_it_was_queued() -> None:
    assert Marker("t", "orders", queued_at=NOW - 42).waited_s(NOW) == 42


def test_a_retry_not_yet_due_has_not_waited() -> None:
    assert Marker("t", "orders", queued_at=NOW + 30).waited_s(NOW) is None


def test_a_running_marker_is_not_waiting() -> None:
    assert running().waited_s(NOW) is None


def test_a_running_marker_with_a_recent_heartbeat_is_alive() -> None:
    assert not running().dead(NOW, stale_s=120, host="here")


def test_a_running_marker_silent_past_the_stale_limit_is_dead() -> None:
    assert running(heartbeat_at=NOW - 121).dead(NOW, stale_s=120, host="here")


def test_a_marker_of_a_process_gone_from_this_host_is_dead_at_once() -> None:
    marker = running(host=hostname(), pid=dead_pid())
    assert marker.dead(NOW, stale_s=120, host=hostname())


def test_a_marker_of_a_live_process_of_this_host_is_alive() -> None:
    assert not running(host=hostname(), pid=os.getpid()).dead(NOW, 120, hostname())


def test_a_queued_marker_is_never_dead() -> None:
    assert not Marker("t", "orders", queued_at=NOW - 10_000).dead(NOW, 120, "here")


def test_markers_round_trip_through_json() -> None:
    marker = running()
    assert Marker.from_json(marker.to_json()) == marker


def test_queued_markers_live_four_intervals_and_at_least_a_minute() -> None:
    assert pending_ttl_s(300) == 1200
    assert pending_ttl_s(1) == 60


def test_beat_says_what_the_previous_sync_is_doing() -> None:
    assert describe(Marker("t", "orders", queued_at=NOW - 12), NOW) == "queued for 12s"
    assert describe(running(), NOW) == "running on elsewhere:1 for 50s"
    assert describe(Marker("t", "orders", queued_at=NOW + 5), NOW) == "retrying in 5s"
