"""The beat schedule built from tables.json, and the fleet configuration beat shares."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery

from beat.schedule import build_schedule, entry_name
from dbsync.config.errors import ConfigError
from dbsync.config.tables import parse_tables
from tests.helpers import write_tables
from workers.config import TASK_NAME, celery_config, load_fleet_settings

TABLES = [
    {"table": "orders", "primary_key": "id", "modifier": "updated_at"},
    {"table": "customers", "primary_key": ["id"], "interval": 60},
    {"table": "order_lines", "primary_key": ["order_id", "line"], "interval": 3600},
]


def schedule_for(tables: list[dict], interval: int = 300) -> dict:
    import json

    return build_schedule(parse_tables(json.dumps(tables)).tables, interval)


def test_one_entry_per_table() -> None:
    assert set(schedule_for(TABLES)) == {
        entry_name("orders"),
        entry_name("customers"),
        entry_name("order_lines"),
    }


def test_every_entry_sends_the_sync_task_with_the_table_name() -> None:
    schedule = schedule_for(TABLES)
    assert [(e["task"], e["args"]) for e in schedule.values()] == [
        (TASK_NAME, ("orders",)),
        (TASK_NAME, ("customers",)),
        (TASK_NAME, ("order_lines",)),
    ]


def test_table_without_interval_uses_the_default_interval() -> None:
    assert schedule_for(TABLES, 300)[entry_name("orders")]["schedule"] == timedelta(seconds=300)


def test_table_interval_overrides_the_default() -> None:
    schedule = schedule_for(TABLES, 300)
    assert schedule[entry_name("customers")]["schedule"] == timedelta(seconds=60)
    assert schedule[entry_name("order_lines")]["schedule"] == timedelta(seconds=3600)


def test_each_message_expires_with_its_pending_marker_four_intervals_at_least_a_minute() -> None:
    schedule = schedule_for([*TABLES, {"table": "hot", "primary_key": "id", "interval": 5}], 300)
    assert {name: e["options"]["expires"] for name, e in schedule.items()} == {
        entry_name("orders"): 1200.0,
        entry_name("customers"): 240.0,
        entry_name("order_lines"): 14400.0,
        entry_name("hot"): 60.0,
    }


def test_no_tables_give_an_empty_schedule() -> None:
    assert schedule_for([]) == {}


def test_invalid_entries_are_left_out() -> None:
    tables = [
        *TABLES,
        {"table": "broken", "modifier": "m"},
        {"table": "orders", "primary_key": "id"},
    ]
    assert len(schedule_for(tables)) == 3


def test_default_interval_below_one_second_is_rejected() -> None:
    with pytest.raises(ValueError, match="default_interval"):
        schedule_for(TABLES, 0)


def test_schedule_is_accepted_by_celery_beat(tmp_path: Path) -> None:
    from celery.beat import Scheduler

    app = Celery("schedule-check", set_as_current=False)
    app.conf.beat_schedule = schedule_for(TABLES, 300)
    scheduler = Scheduler(app, lazy=False)
    run_every = {name: entry.schedule.run_every for name, entry in scheduler.schedule.items()}
    assert run_every == {
        entry_name("orders"): timedelta(seconds=300),
        entry_name("customers"): timedelta(seconds=60),
        entry_name("order_lines"): timedelta(seconds=3600),
    }


# --- the scheduler beat runs: tables.json read at start-up --------------------------------


def test_beat_scheduler_schedules_tables_json_and_makes_new_entries_due_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from beat.app import app
    from beat.beat import TablesScheduler

    write_tables(tmp_path / "tables.json", [*TABLES, {"table": "broken", "modifier": "m"}])
    monkeypatch.setenv("TABLES_CONFIG", str(tmp_path / "tables.json"))
    monkeypatch.setenv("INTERVAL", "120")
    scheduler = TablesScheduler(app, schedule_filename=str(tmp_path / "beat-schedule"))
    try:
        due = {
            name: entry.is_due()[0]
            for name, entry in scheduler.schedule.items()
            if name.startswith("sync:")
        }
    finally:
        scheduler.close()
    assert due == {
        entry_name("orders"): True,
        entry_name("customers"): True,
        entry_name("order_lines"): True,
    }


def test_beat_scheduler_refuses_an_unreadable_tables_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from beat.app import app
    from beat.beat import TablesScheduler

    (tmp_path / "tables.json").write_text("[{", encoding="utf-8")
    monkeypatch.setenv("TABLES_CONFIG", str(tmp_path / "tables.json"))
    with pytest.raises(ConfigError, match="invalid JSON"):
        TablesScheduler(app, schedule_filename=str(tmp_path / "beat-schedule"))


# --- fleet configuration (shared by beat, workers, Flower and `celery call`) --------------


def test_fleet_settings_need_no_database_settings() -> None:
    # beat, Flower and `celery call` only talk to Redis
    assert load_fleet_settings().celery_queue == "dbsync"


def test_broker_and_backend_come_from_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.5:6380/3")
    config = celery_config(load_fleet_settings())
    assert (config["broker_url"], config["result_backend"]) == (
        "redis://10.0.0.5:6380/3",
        "redis://10.0.0.5:6380/3",
    )


def test_only_json_is_accepted() -> None:
    config = celery_config(load_fleet_settings())
    assert (config["accept_content"], config["result_accept_content"]) == (["json"], ["json"])


def test_messages_are_acknowledged_when_the_task_starts() -> None:
    config = celery_config(load_fleet_settings())
    assert (config["task_acks_late"], config["task_reject_on_worker_lost"]) == (False, False)


def test_visibility_timeout_outlasts_the_hard_time_limit_and_the_longest_retry_delay() -> None:
    fleet = load_fleet_settings(sync_time_limit=1800, retry_backoff_max=300)
    config = celery_config(fleet)
    assert config["broker_transport_options"]["visibility_timeout"] > 1800 + 300


def test_soft_time_limit_comes_before_the_hard_one() -> None:
    config = celery_config(load_fleet_settings(sync_time_limit=1800))
    assert config["task_soft_time_limit"] < config["task_time_limit"] == 1800


def test_visibility_timeout_shorter_than_a_sync_is_refused() -> None:
    with pytest.raises(ConfigError, match="BROKER_VISIBILITY_TIMEOUT"):
        load_fleet_settings(sync_time_limit=3600, broker_visibility_timeout=3000)


def test_soft_time_limit_above_the_hard_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="SYNC_SOFT_TIME_LIMIT"):
        load_fleet_settings(sync_time_limit=600, sync_soft_time_limit=900)


def test_importing_the_apps_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    # an invalid setting would make configuration fail; import must not evaluate it
    env = {"PATH": "/usr/bin:/bin", "INTERVAL": "not-a-number", "REDIS_URL": "redis://nowhere:1"}
    code = "import workers.app, workers.tasks, beat.app; print('imported')"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "imported", out.stderr
