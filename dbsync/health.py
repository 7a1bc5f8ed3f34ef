"""Health endpoint (``/``) and Prometheus metrics (``/metrics``) on ``HEALTH_PORT``.

Status rules, evaluated on every request:

- ``unhealthy`` (HTTP 503): the source or the target does not answer ``SELECT 1`` within
  ``PROBE_TIMEOUT_S`` seconds. Nothing can sync; fix connectivity first.
- ``degraded`` (HTTP 200): both databases answer, but at least one configured table
  - failed its last sync (``sync_errors`` > 0, see ``failed_tables``), or
  - has not synced successfully for more than ``STALE_INTERVALS`` (3) times its interval
    (the table's ``interval`` from tables.json, else ``INTERVAL``), see ``stale_tables``, or
  - never synced successfully although this server has been up longer than that, or
  the status table or tables.json cannot be read (see ``reasons``).
- ``healthy`` (HTTP 200): otherwise.

The sync status comes from the target's ``_dbsync_status`` table, so every worker's
endpoint reports the state of the whole fleet; ``database_connections`` pool numbers are
those of the processes that sync (summed over a prefork worker's children, from the
metrics), or of the server's own engines when no such process reports.

Every string in a response passes through :func:`dbsync.logs.redact`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TextIO

import sqlalchemy as sa

from dbsync import __version__, metrics
from dbsync.engines import Engines, pool_status
from dbsync.errors import ConfigError, describe
from dbsync.logs import redact

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dbsync.settings import Settings
    from dbsync.state import TableStatus
    from dbsync.tables import TablesFile

STALE_INTERVALS = 3
PROBE_TIMEOUT_S = 5.0
HEALTH_POOL_SIZE = 2
MAX_ERROR_CHARS = 500

log = logging.getLogger("dbsync.health")


@dataclass(frozen=True)
class Probe:
    ok: bool
    latency_ms: float
    error: str | None = None


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def probe_databases(engines: Engines, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, Probe]:
    """``SELECT 1`` on source and target concurrently, each bounded by ``timeout_s``."""
    results: dict[str, Probe] = {}
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dbsync-probe")
    try:
        started = time.monotonic()
        futures = {
            name: pool.submit(_select_one, getattr(engines, name)) for name in ("source", "target")
        }
        for name, future in futures.items():
            remaining = max(timeout_s - (time.monotonic() - started), 0.0)
            try:
                future.result(timeout=remaining)
            except FutureTimeout:
                results[name] = Probe(False, _ms(started), f"no answer within {timeout_s:g}s")
            except Exception as exc:  # noqa: BLE001 - any failure means unreachable
                results[name] = Probe(False, _ms(started), _clean(describe(exc)))
            else:
                results[name] = Probe(True, _ms(started))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return results


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = redact(text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _pool_numbers(engines: Engines) -> dict[str, dict[str, int]]:
    reported = metrics.pool_totals()
    return {
        name: reported.get(name) or pool_status(getattr(engines, name))
        for name in ("source", "target")
    }


def _load_configured(settings: Settings, tables: TablesFile | None) -> TablesFile:
    if tables is not None:
        return tables
    from dbsync.tables import load_tables

    return load_tables(settings.tables_config)


def build_health(
    settings: Settings,
    engines: Engines,
    started_at: datetime,
    *,
    tables: TablesFile | None = None,
    now: datetime | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> tuple[dict[str, Any], int]:
    """The health document and its HTTP status (200 healthy/degraded, 503 unhealthy)."""
    now = now or datetime.now(UTC)
    uptime = max((now - started_at).total_seconds(), 0.0)
    reasons: list[str] = []
    probes = probe_databases(engines, timeout_s)
    pools = _pool_numbers(engines)
    connections: dict[str, dict[str, Any]] = {}
    for name, probe in probes.items():
        entry: dict[str, Any] = {
            "status": "connected" if probe.ok else "unreachable",
            "pool_size": pools[name]["pool_size"],
            "checked_out": pools[name]["checked_out"],
            "latency_ms": probe.latency_ms,
        }
        if not probe.ok:
            entry["error"] = probe.error
            reasons.append(f"{name} database unreachable: {probe.error}")
        connections[name] = entry

    rows: list[TableStatus] = []
    if probes["target"].ok:
        from dbsync.state import read_status

        try:
            rows = read_status(engines.target, settings.target.database)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            reasons.append(f"cannot read sync status: {_clean(describe(exc))}")

    configured_names: list[str] | None = None
    intervals: dict[str, int] = {}
    try:
        configured = _load_configured(settings, tables)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        reasons.append(f"cannot read tables config: {_clean(describe(exc))}")
    else:
        configured_names = [t.table for t in configured.tables]
        intervals = {t.table: t.interval or settings.interval for t in configured.tables}
        if configured.problems:
            reasons.append(f"tables config has {len(configured.problems)} invalid entries")

    by_name = {row.table: row for row in rows}
    names = configured_names if configured_names is not None else sorted(by_name)
    failed: list[dict[str, Any]] = []
    stale: list[dict[str, Any]] = []
    synced = 0
    for name in names:
        max_age = STALE_INTERVALS * intervals.get(name, settings.interval)
        row = by_name.get(name)
        if row is not None and row.status == "synced":
            synced += 1
        if row is not None and row.status == "failed":
            failed.append(
                {
                    "table": name,
                    "error": _clean(row.last_error),
                    "consecutive_failures": row.consecutive_failures,
                    "last_finished_at": _iso(row.last_finished_at),
                }
            )
        age = row.age_seconds(now) if row is not None else None
        if age is None:
            if probes["target"].ok and uptime > max_age:
                stale.append({"table": name, "age_seconds": None, "max_age_seconds": max_age})
        elif age > max_age:
            stale.append({"table": name, "age_seconds": round(age, 1), "max_age_seconds": max_age})
    if failed:
        reasons.append(f"{len(failed)} table(s) failed their last sync")
    if stale:
        reasons.append(f"{len(stale)} table(s) not synced for over {STALE_INTERVALS} intervals")

    successes = [row.last_success_at for row in rows if row.last_success_at is not None]
    if not all(p.ok for p in probes.values()):
        status = "unhealthy"
    elif reasons:
        status = "degraded"
    else:
        status = "healthy"
    body = {
        "status": status,
        "timestamp": _iso(now),
        "version": __version__,
        "uptime_seconds": round(uptime, 1),
        "database_connections": connections,
        "last_successful_sync": _iso(max(successes)) if successes else None,
        "tables_synced": synced,
        "tables_configured": len(names),
        "sync_errors": len(failed),
        "failed_tables": failed,
        "stale_tables": stale,
        "reasons": reasons,
    }
    code = HTTPStatus.SERVICE_UNAVAILABLE if status == "unhealthy" else HTTPStatus.OK
    return body, int(code)


class HealthServer:
    """A threading HTTP server answering ``/`` (health JSON) and ``/metrics``.

    Without ``engines`` it creates its own small engines (pool of 2) just for probes and
    status reads, and disposes them on :meth:`stop`. With ``engines`` (a process that syncs
    itself, e.g. ``celery worker --pool=solo``), those pools are also published as gauges.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host: str = "0.0.0.0",
        port: int | None = None,
        engines: Engines | None = None,
        tables: TablesFile | None = None,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.started_at = datetime.now(UTC)
        self._own_engines = engines is None
        self.engines = engines or Engines.create(
            settings.model_copy(
                update={"pool_size": HEALTH_POOL_SIZE, "max_overflow": HEALTH_POOL_SIZE}
            )
        )
        self._pool_engines = engines
        self._last_status: str | None = None
        self._thread: threading.Thread | None = None
        port = settings.health_port if port is None else port
        try:
            self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError:
            if self._own_engines:
                self.engines.dispose()
            raise
        self.httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def health(self) -> tuple[dict[str, Any], int]:
        try:
            body, code = build_health(
                self.settings, self.engines, self.started_at, tables=self.tables
            )
        except Exception as exc:  # noqa: BLE001 - the endpoint must answer
            log.exception("health check failed")
            body = {
                "status": "unhealthy",
                "timestamp": _iso(datetime.now(UTC)),
                "version": __version__,
                "reasons": [_clean(describe(exc))],
            }
            code = int(HTTPStatus.SERVICE_UNAVAILABLE)
        self._note_transition(body)
        return body, code

    def _note_transition(self, body: dict[str, Any]) -> None:
        status = body["status"]
        if status != self._last_status:
            level = logging.INFO if status == "healthy" else logging.WARNING
            detail = "; ".join(body.get("reasons") or []) or "all checks pass"
            log.log(level, "health %s -> %s: %s", self._last_status or "start", status, detail)
            self._last_status = status

    def metrics_payload(self) -> bytes:
        registry = metrics.collect_registry(
            self.engines.target,
            self.settings.target.database,
            pool_engines=self._pool_engines,
        )
        return metrics.render(registry)

    def serve_forever(self) -> None:
        log.info(
            "health endpoint listening on %s:%d (/ and /metrics)",
            self.httpd.server_address[0],
            self.port,
        )
        self.httpd.serve_forever(poll_interval=0.5)

    def start(self) -> HealthServer:
        self._thread = threading.Thread(
            target=self.serve_forever, name="dbsync-health", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
        self.httpd.server_close()
        if self._own_engines:
            self.engines.dispose()


def _handler_for(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"dbsync/{__version__}"

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path in ("/", "/health"):
                body, code = server.health()
                self._send(code, "application/json", json.dumps(body, indent=2).encode())
            elif path == "/metrics":
                try:
                    payload, code = server.metrics_payload(), 200
                except Exception as exc:  # noqa: BLE001 - answer, don't drop the socket
                    log.exception("metrics collection failed")
                    payload, code = (_clean(describe(exc)) or "").encode(), 500
                self._send(code, metrics.CONTENT_TYPE, payload)
            else:
                self._send(404, "text/plain", b"not found: try / or /metrics\n")

        def _send(self, code: int, content_type: str, payload: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("%s - %s", self.address_string(), redact(format % args))

    return Handler


def start_in_background(
    settings: Settings,
    port: int | None = None,
    *,
    host: str = "0.0.0.0",
    engines: Engines | None = None,
    tables: TablesFile | None = None,
) -> HealthServer | None:
    """Start the endpoint in a daemon thread; None (and a WARNING) if the port is taken.

    A Celery worker calls this once, in its parent process (``worker_init`` signal), after
    :func:`dbsync.metrics.setup_multiprocess`: the parent lives as long as the worker and
    merges the metrics its forked children write. A second worker on the same host finds
    the port taken and runs without its own endpoint instead of failing.
    """
    try:
        return HealthServer(settings, host=host, port=port, engines=engines, tables=tables).start()
    except OSError as exc:
        log.warning(
            "health endpoint not started: port %s unavailable (%s)",
            settings.health_port if port is None else port,
            exc.strerror or exc,
        )
        return None


def serve(
    settings: Settings,
    port: int | None = None,
    *,
    host: str = "0.0.0.0",
    engines: Engines | None = None,
) -> None:
    """Run the endpoint in the foreground until SIGINT/SIGTERM (``dbsync serve``)."""
    server = HealthServer(settings, host=host, port=port, engines=engines)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("health endpoint stopping")
    finally:
        server.stop()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def check(
    settings: Settings | None = None,
    url: str | None = None,
    *,
    timeout_s: float = PROBE_TIMEOUT_S,
    fallback: bool = True,
    out: TextIO | None = None,
) -> int:
    """``dbsync health --check``: 0 when the endpoint answers 200, else 1.

    When nothing listens at ``url`` (default ``http://127.0.0.1:HEALTH_PORT/``) and
    ``fallback`` is on, the same checks run directly in this process (beat and flower
    containers, or a worker whose endpoint is served elsewhere): 0 unless the source or
    target is unreachable. Prints one line saying what it found.
    """
    out = out or sys.stdout
    port = settings.health_port if settings is not None else 8089
    url = url or f"http://127.0.0.1:{port}/"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = _status_of(response.read())
            print(f"{status} ({url} answered {response.status})", file=out)
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        status = _status_of(exc.read())
        print(f"{status} ({url} answered {exc.code})", file=out)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if not fallback or settings is None:
            print(f"unreachable ({url}: {_clean(str(reason))})", file=out)
            return 1
    return _direct_check(settings, timeout_s, out)


def _status_of(payload: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(payload).get("status", "unknown"))
    return "unknown"


def _direct_check(settings: Settings, timeout_s: float, out: TextIO) -> int:
    engines = Engines.create(settings.model_copy(update={"pool_size": 1, "max_overflow": 1}))
    try:
        probes = probe_databases(engines, timeout_s)
    finally:
        engines.dispose()
    down = [f"{name}: {p.error}" for name, p in probes.items() if not p.ok]
    if down:
        print(f"unhealthy (direct check; {'; '.join(down)})", file=out)
        return 1
    print("healthy (direct check: source and target answer)", file=out)
    return 0


# ---- CLI: `dbsync serve` and `dbsync health` (registered by dbsync.cli) -------------------


def _cli_settings() -> Settings:
    from dbsync.logs import register_settings_secrets
    from dbsync.settings import load_settings

    settings = load_settings()
    register_settings_secrets(settings)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    """``dbsync serve [--host H] [--port P]``: health and metrics in the foreground."""
    settings = _cli_settings()
    serve(settings, args.port, host=args.host)
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """``dbsync health [--check] [--url URL]``.

    ``--check``: exit 0 if the endpoint answers 200 (healthy or degraded), else 1, falling
    back to a direct database probe when nothing listens. Without ``--check``: print the
    health JSON computed in this process; exit 0 unless unhealthy.
    """
    if args.check:
        # a container health check answers 0 or 1, and probing the endpoint needs no
        # database settings: without them there is just no direct-probe fallback
        try:
            probe_settings: Settings | None = _cli_settings()
        except ConfigError:
            probe_settings = None
        return check(probe_settings, args.url)
    settings = _cli_settings()
    engines = Engines.create(settings.model_copy(update={"pool_size": 1, "max_overflow": 1}))
    try:
        body, code = build_health(settings, engines, datetime.now(UTC))
    finally:
        engines.dispose()
    print(json.dumps(body, indent=2))
    return 0 if code == 200 else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``health`` to dbsync's CLI (append this to ``cli._REGISTRARS``)."""
    serve_parser = commands.add_parser(
        "serve", help="serve the health JSON (/) and Prometheus metrics (/metrics)"
    )
    serve_parser.add_argument("--host", default="0.0.0.0", help="address to bind (0.0.0.0)")
    serve_parser.add_argument("--port", type=int, default=None, help="default: HEALTH_PORT")
    serve_parser.set_defaults(handler=cmd_serve)

    health_parser = commands.add_parser("health", help="fleet health (exit 1 when unhealthy)")
    health_parser.add_argument(
        "--check", action="store_true", help="container health check: ask the endpoint"
    )
    health_parser.add_argument(
        "--url", default=None, help="endpoint to ask (default http://127.0.0.1:HEALTH_PORT/)"
    )
    health_parser.set_defaults(handler=cmd_health)
