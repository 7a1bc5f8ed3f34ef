"""The HTTP endpoint on ``HEALTH_PORT``: health JSON (``/``) and Prometheus metrics
(``/metrics``), and its client, the container health check (``dbsync health --check``).

What the answers mean is the health policy's business (:mod:`dbsync.ops.health`); this module
serves them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TextIO

from dbsync import __version__
from dbsync.backends import Engines
from dbsync.config.errors import describe
from dbsync.config.settings import DEFAULT_HEALTH_PORT
from dbsync.ops import metrics
from dbsync.ops.health import clean_error, failure_document
from dbsync.ops.health_facts import PROBE_TIMEOUT_S, build_health, staleness_for
from dbsync.ops.logs import redact

if TYPE_CHECKING:
    from dbsync.config.settings import Settings
    from dbsync.config.tables import TablesFile
    from dbsync.ops.health import QueueWaits

HEALTH_POOL_SIZE = 2

log = logging.getLogger("dbsync.health")


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
        queue_waits: QueueWaits | None = None,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.queue_waits = queue_waits
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
                self.settings,
                self.engines,
                self.started_at,
                tables=self.tables,
                queue_waits=self.queue_waits,
            )
        except Exception as exc:  # noqa: BLE001 - the endpoint must answer
            log.exception("health check failed")
            body, code = failure_document(datetime.now(UTC), describe(exc))
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
            staleness=staleness_for(self.settings, self.tables),
            queue_waits=self.queue_waits,
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
                    payload, code = (clean_error(describe(exc)) or "").encode(), 500
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
    queue_waits: QueueWaits | None = None,
) -> HealthServer | None:
    """Start the endpoint in a daemon thread; None (and a WARNING) if the port is taken.

    A Celery worker calls this once, in its parent process (``worker_init`` signal), after
    :func:`dbsync.ops.metrics.setup_multiprocess`: the parent lives as long as the worker and
    merges the metrics its forked children write. A second worker on the same host finds
    the port taken and runs without its own endpoint instead of failing. ``queue_waits``:
    how long each table's queued sync has waited (the worker reads its broker).
    """
    try:
        server = HealthServer(
            settings, host=host, port=port, engines=engines, tables=tables, queue_waits=queue_waits
        )
        return server.start()
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
    ``fallback`` is on, the same health policy runs directly in this process (beat and
    flower containers, or a worker whose endpoint is served elsewhere): 0 unless the
    source or target is unreachable. Prints one line saying what it found.
    """
    out = out or sys.stdout
    port = settings.health_port if settings is not None else DEFAULT_HEALTH_PORT
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
            print(f"unreachable ({url}: {clean_error(str(reason))})", file=out)
            return 1
    return _direct_check(settings, timeout_s, out)


def _status_of(payload: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(payload).get("status", "unknown"))
    return "unknown"


def _direct_check(settings: Settings, timeout_s: float, out: TextIO) -> int:
    """The endpoint's answer computed here: same document, same exit code."""
    engines = Engines.create(settings.model_copy(update={"pool_size": 1, "max_overflow": 1}))
    try:
        body, code = build_health(settings, engines, datetime.now(UTC), timeout_s=timeout_s)
    finally:
        engines.dispose()
    detail = "; ".join(body["reasons"]) or "source and target answer"
    print(f"{body['status']} (direct check; {detail})", file=out)
    return 0 if code == 200 else 1
