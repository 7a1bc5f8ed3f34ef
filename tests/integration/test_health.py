"""Health endpoint and /metrics against the real MariaDB (scratch databases)."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dbsync.backends.engines import Engines
from dbsync.backends.status import record_result
from dbsync.config.result import SyncResult
from dbsync.ops import health_facts, health_server, metrics
from tests import helpers
from tests.integration.conftest import Scratch


@pytest.fixture(autouse=True)
def _in_process_metrics() -> Iterator[None]:
    metrics.disable_multiprocess()
    yield
    metrics.disable_multiprocess()


@pytest.fixture
def orders(scratch: Scratch) -> Scratch:
    scratch.write_tables([{"table": "orders", "primary_key": "id", "modifier": "updated_at"}])
    return scratch


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@contextlib.contextmanager
def running(scratch: Scratch, **overrides: object) -> Iterator[health_server.HealthServer]:
    settings = scratch.settings(**overrides)
    server = health_server.HealthServer(settings, host="127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


def record(scratch: Scratch, status: str = "synced", age_s: float = 0, **fields: object) -> None:
    result = SyncResult(table=str(fields.pop("table", "orders")), mode="incremental", **fields)
    result.finish(status, "MySQL error 1146: Table doesn't exist" if status == "failed" else None)  # type: ignore[arg-type]
    result.finished_at = datetime.now(UTC) - timedelta(seconds=age_s)
    engines = Engines.create(scratch.settings())
    try:
        record_result(engines.target, scratch.target, result)
    finally:
        engines.dispose()


def test_healthy_document(orders: Scratch) -> None:
    record(orders, rows_loaded=5)
    with running(orders) as server:
        code, text = get(server.url)
    body = json.loads(text)
    assert code == 200
    assert body["status"] == "healthy"
    assert body["version"]
    assert body["uptime_seconds"] >= 0
    assert body["timestamp"].endswith("Z")
    assert body["database_connections"]["source"]["status"] == "connected"
    assert set(body["database_connections"]["target"]) >= {"status", "pool_size", "checked_out"}
    assert body["last_successful_sync"] is not None
    assert (body["tables_synced"], body["sync_errors"]) == (1, 0)


def test_failed_table_makes_it_degraded(orders: Scratch) -> None:
    record(orders, status="failed")
    with running(orders) as server:
        code, text = get(server.url)
    body = json.loads(text)
    assert (code, body["status"], body["sync_errors"]) == (200, "degraded", 1)
    assert body["failed_tables"][0]["table"] == "orders"
    assert "1146" in body["failed_tables"][0]["error"]


def test_stale_table_makes_it_degraded(orders: Scratch) -> None:
    record(orders, age_s=3 * 300 + 60)
    with running(orders, interval=300) as server:
        body = json.loads(get(server.url)[1])
    assert body["status"] == "degraded"
    assert body["stale_tables"][0]["table"] == "orders"


def test_never_synced_table_is_fine_during_the_first_intervals(orders: Scratch) -> None:
    settings = orders.settings(interval=300)
    engines = Engines.create(settings)
    try:
        fresh, _ = health_facts.build_health(settings, engines, datetime.now(UTC))
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        old, _ = health_facts.build_health(settings, engines, an_hour_ago)
    finally:
        engines.dispose()
    assert fresh["status"] == "healthy"
    assert old["status"] == "degraded"
    assert old["stale_tables"] == [{"table": "orders", "age_seconds": None, "max_age_seconds": 900}]


def test_unreachable_target_is_unhealthy_503(orders: Scratch) -> None:
    with running(orders, target_db_port=free_port()) as server:
        code, text = get(server.url)
    body = json.loads(text)
    assert (code, body["status"]) == (503, "unhealthy")
    assert body["database_connections"]["target"]["status"] == "unreachable"
    assert body["database_connections"]["source"]["status"] == "connected"


def test_unknown_path_is_404(orders: Scratch) -> None:
    with running(orders) as server:
        assert get(server.url + "nope")[0] == 404


def test_metrics_show_freshness_and_move_after_a_sync(orders: Scratch) -> None:
    helpers.execute(
        orders.source,
        "CREATE TABLE orders (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)",
        "INSERT INTO orders VALUES (1, '2026-01-01'), (2, '2026-01-02')",
    )
    from dbsync.sync.run import run_sync

    runtime = orders.runtime()
    handle = metrics.instrument(runtime, pool_log_every_s=3600, gauge_every_s=3600)
    try:
        with running(orders) as server:
            before = get(server.url + "metrics")[1]
            assert run_sync(runtime, "orders").status == "synced"
            after = get(server.url + "metrics")[1]
            body = json.loads(get(server.url)[1])
    finally:
        handle.stop()
        runtime.dispose()
    # the first sync of the incremental table copies it whole: labelled full_refresh
    assert 'records_processed_total{mode="full_refresh",table="orders"}' not in before
    assert 'records_processed_total{mode="full_refresh",table="orders"} 2.0' in after
    assert 'sync_duration_seconds_count{mode="full_refresh",table="orders"} 1.0' in after
    assert 'table_freshness_seconds{table="orders"}' in after
    assert 'table_sync_success_rate{table="orders"} 1.0' in after
    assert 'connection_pool_size{pool="source"}' in after
    assert body["status"] == "healthy" and body["tables_synced"] == 1


def test_check_exit_codes(orders: Scratch) -> None:
    out = io.StringIO()
    with running(orders) as server:
        assert health_server.check(orders.settings(), server.url, out=out) == 0
    with running(orders, target_db_port=free_port()) as server:
        assert health_server.check(orders.settings(), server.url, out=out) == 1
    assert "answered 200" in out.getvalue() and "answered 503" in out.getvalue()


def test_check_falls_back_to_direct_probe_when_nothing_listens(orders: Scratch) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    out = io.StringIO()
    assert health_server.check(orders.settings(), url, out=out) == 0
    assert health_server.check(orders.settings(target_db_port=free_port()), url, out=out) == 1
    assert health_server.check(orders.settings(), url, fallback=False, out=out) == 1


def test_start_in_background_tolerates_a_taken_port(orders: Scratch) -> None:
    with running(orders) as server:
        assert health_server.start_in_background(orders.settings(), server.port) is None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    """A TCP proxy to MariaDB that can be taken down and brought back on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> Proxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((helpers.MYSQL_HOST, helpers.MYSQL_PORT))
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._sockets.clear()


def test_database_outage_turns_unhealthy_and_recovers_without_restart(orders: Scratch) -> None:
    record(orders)
    proxy = Proxy(free_port()).start()
    try:
        overrides = {"source_db_port": proxy.port, "target_db_port": proxy.port}
        with running(orders, **overrides) as server:
            assert get(server.url)[0] == 200
            proxy.stop()
            down_code, down_text = get(server.url)
            proxy.start()
            up_code, _ = get(server.url)
    finally:
        proxy.stop()
    assert (down_code, json.loads(down_text)["status"]) == (503, "unhealthy")
    assert up_code == 200


def _cli(argv: list[str]) -> object:
    from dbsync.cli import build_parser

    return build_parser().parse_args(argv)


def test_cli_health_prints_the_document(
    orders: Scratch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, env_value in orders.env().items():
        monkeypatch.setenv(key, env_value)
    record(orders)
    args = _cli(["health"])
    assert args.handler(args) == 0  # type: ignore[attr-defined]
    assert json.loads(capsys.readouterr().out)["status"] == "healthy"


def test_cli_health_check_asks_the_endpoint(
    orders: Scratch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, env_value in orders.env().items():
        monkeypatch.setenv(key, env_value)
    with running(orders) as server:
        args = _cli(["health", "--check", "--url", server.url])
        assert args.handler(args) == 0  # type: ignore[attr-defined]
    assert "answered 200" in capsys.readouterr().out


def _status_json(
    scratch: Scratch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, dict[str, object]]:
    from dbsync.cli import main

    for key, env_value in {**scratch.env(), "INTERVAL": "300"}.items():
        monkeypatch.setenv(key, env_value)
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    return {record["table"]: record for record in json.loads(capsys.readouterr().out)}


def test_endpoint_and_status_agree_on_tables_with_their_own_interval(
    scratch: Scratch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # INTERVAL=300 allows 900 s; each table's own interval decides instead
    scratch.write_tables(
        [
            {"table": "fast", "primary_key": "id", "interval": 60},
            {"table": "slow", "primary_key": "id", "interval": 3600},
        ]
    )
    record(scratch, table="fast", age_s=400)  # over 3 x 60 s
    record(scratch, table="slow", age_s=1000)  # under 3 x 3600 s
    with running(scratch, interval=300) as server:
        body = json.loads(get(server.url)[1])
    status = _status_json(scratch, monkeypatch, capsys)

    assert [entry["table"] for entry in body["stale_tables"]] == ["fast"]
    assert (status["fast"]["status"], status["slow"]["status"]) == ("stale", "synced")


def test_status_json_has_the_fields_of_the_table(
    orders: Scratch, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record(orders, status="failed", rows_loaded=0)
    records = _status_json(orders, monkeypatch, capsys)

    failed = records["orders"]
    assert failed["status"] == "failed"
    assert failed["mode"] == "incremental"
    assert failed["consecutive_failures"] == 1
    assert failed["rows_loaded"] == 0
    assert "1146" in str(failed["last_error"])
    assert {"last_success_at", "age_seconds", "duration_s"} <= set(failed)


def test_metrics_mark_stale_tables_by_their_own_interval(scratch: Scratch) -> None:
    scratch.write_tables(
        [
            {"table": "fast", "primary_key": "id", "interval": 60},
            {"table": "slow", "primary_key": "id", "interval": 3600},
        ]
    )
    record(scratch, table="fast", age_s=400)
    record(scratch, table="slow", age_s=1000)
    with running(scratch, interval=300) as server:
        text = get(server.url + "metrics")[1]
    assert 'table_stale{table="fast"} 1.0' in text
    assert 'table_stale{table="slow"} 0.0' in text


def test_direct_check_judges_tables_by_the_same_rule(scratch: Scratch) -> None:
    scratch.write_tables([{"table": "fast", "primary_key": "id", "interval": 60}])
    record(scratch, table="fast", age_s=400)  # over 3 x 60 s, under 3 x INTERVAL
    out = io.StringIO()
    url = f"http://127.0.0.1:{free_port()}/"

    assert health_server.check(scratch.settings(interval=300), url, out=out) == 0
    assert out.getvalue().startswith("degraded (direct check; 1 table(s) not synced")
