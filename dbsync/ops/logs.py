"""Log format, secret redaction and connection-pool status lines.

Every line has the form ``{timestamp} - {level} - {component} - {message}``::

    2026-11-27 10:00:00,123 - INFO - SYNC_ENGINE - orders: synced 1200 rows in 3.2s

- ``timestamp`` is UTC, ``YYYY-MM-DD HH:MM:SS,mmm`` (Python's default ``asctime`` with
  milliseconds, but in UTC so that every container of a fleet agrees).
- ``component`` is taken from the logger name: for dbsync's own loggers (``dbsync.*``,
  ``workers.*``, ``beat.*``) the last dotted part upper-cased (``dbsync.sync_engine`` ->
  ``SYNC_ENGINE``, ``workers.worker`` -> ``WORKER``); for third-party loggers the top-level
  package upper-cased (``celery.app.trace`` -> ``CELERY``, ``sqlalchemy.pool`` ->
  ``SQLALCHEMY``). ``extra={"component": "X"}`` overrides it.

Library modules only call ``logging.getLogger(...)``; entry points call
:func:`configure_logging` once and :func:`register_settings_secrets` with their settings.

Tracebacks are for DEBUG: below that level a record's exception is shown as one line
(``message: ErrorType: first line``), and dlt's records (which carry tracebacks in their
text) come through dbsync's handlers as one line each.

Redaction happens on the fully formatted line (message, arguments and traceback alike):
every registered secret value is replaced by ``***`` and the password of any
``scheme://user:password@host`` URL is masked, registered or not.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TextIO

from dbsync.backends import pool_numbers
from dbsync.config.errors import describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dbsync.backends import Engines
    from dbsync.config.settings import Settings

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(component)s - %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
MASK = "***"
OWN_PACKAGES = frozenset({"dbsync", "workers", "beat"})
# Shorter values are not redacted by value (masking "ab" everywhere would garble every
# line); URLs carrying them are still masked.
MIN_SECRET_LENGTH = 4

_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)(?P<password>[^\s@/]*)(?P<at>@)"
)
# MySQL's "Access denied for user 'u'@'h' (using password: YES)" says whether a password
# was sent, never which: YES/NO before ")" is not a secret
_KEY_VALUE_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\b[\"']?\s*[=:]\s*[\"']?)"
    r"(?!(?:YES|NO)\))(?P<password>[^\s\"',;&)}]+)",
    re.IGNORECASE,
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()

pool_log = logging.getLogger("dbsync.connection_pool")


def register_secret(value: str | None) -> None:
    """Redact ``value`` from every log line (and from :func:`redact`) from now on."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _secrets_lock:
            _secrets.add(value)


def register_settings_secrets(settings: Settings) -> None:
    """Register the database and Redis passwords (and passwords inside the URLs) of settings."""
    from sqlalchemy.engine import make_url

    register_secret(settings.source_db_pass.get_secret_value())
    register_secret(settings.target_db_pass.get_secret_value())
    for side in (settings.source, settings.target):
        register_secret(side.url.password if isinstance(side.url.password, str) else None)
    redis_url = settings.redis_url.get_secret_value()
    register_secret(_url_password(redis_url))
    for full in (settings.source_db_url, settings.target_db_url):
        if full is not None:
            try:
                password = make_url(full.get_secret_value()).password
            except Exception:  # noqa: BLE001 - unparsable URL: nothing to register
                continue
            register_secret(password if isinstance(password, str) else None)


def clear_secrets() -> None:
    """Forget every registered secret (tests only)."""
    with _secrets_lock:
        _secrets.clear()


def _url_password(url: str) -> str | None:
    match = _URL_PASSWORD.search(url)
    return match.group("password") if match else None


def redact(text: str) -> str:
    """``text`` with registered secrets and URL/``password=`` credentials replaced by ``***``."""
    if not text:
        return text
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK if m['password'] else ''}{m['at']}", text)
    return _KEY_VALUE_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def component_for(logger_name: str) -> str:
    """The component shown in a log line for a logger name (see module docstring)."""
    parts = logger_name.split(".")
    if parts[0] in OWN_PACKAGES:
        return parts[-1].upper()
    return parts[0].upper() or "ROOT"


class DbsyncFormatter(logging.Formatter):
    """``{timestamp} - {level} - {component} - {message}``, UTC, secrets redacted.

    With ``tracebacks=False`` a record's exception is summarised on its one line.
    """

    converter = time.gmtime
    default_time_format = DATE_FORMAT
    default_msec_format = "%s,%03d"

    def __init__(self, tracebacks: bool = True) -> None:
        super().__init__(LOG_FORMAT)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if not isinstance(getattr(record, "component", None), str):
            record.component = component_for(record.name)
        if not self.tracebacks and (record.exc_info or record.stack_info):
            record = _one_line(record)
        return redact(super().format(record))


def _one_line(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` whose exception is summarised in its message (no traceback)."""
    copy = logging.makeLogRecord(record.__dict__)
    message = record.getMessage()
    error = record.exc_info[1] if record.exc_info else None
    if error is not None:
        message = f"{message}: {describe(error)}"
    copy.msg, copy.args = message, None
    copy.exc_info = copy.exc_text = copy.stack_info = None
    return copy


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b")


def first_line(text: str) -> str:
    """The first line of ``text``; a traceback inside it shrinks to its exception line."""
    head, marker, trace = text.partition("Traceback (most recent call last):")
    if marker:
        lines = [line.strip() for line in trace.splitlines() if line.strip()]
        raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
        head = f"{head.strip()} {(raised or lines or [''])[-1]}"
    lines = head.strip().splitlines()
    return lines[0] if lines else ""


class DeadConnectionResets(logging.Filter):
    """SQLAlchemy logs an ERROR with a traceback whenever it returns a connection the server
    already dropped to the pool ("Exception during reset or similar"): the connection is
    discarded and the sync that lost it reports its own outcome. Shown at DEBUG only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("sqlalchemy.pool"):
            return True
        if not str(record.msg).startswith("Exception during reset"):
            return True
        return logging.getLogger().getEffectiveLevel() <= logging.DEBUG


class ThroughDbsyncHandlers(logging.Handler):
    """Hands dlt's log records to the root logger's (dbsync's) handlers.

    dlt logs through a stderr handler of its own, with tracebacks inside its messages; it
    keeps the first handler it finds on its logger, so installing this one routes dlt's lines
    into dbsync's format. dlt's errors concern a load job, which dlt retries or dbsync reports
    for its table: they arrive as warnings, one line each below DEBUG.
    """

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if root.getEffectiveLevel() > logging.DEBUG:
            record.msg, record.args = first_line(record.getMessage()), None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        for handler in root.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def _route_dlt_logs() -> None:
    dlt_logger = logging.getLogger("dlt")
    for old in list(dlt_logger.handlers):
        dlt_logger.removeHandler(old)
    dlt_logger.addHandler(ThroughDbsyncHandlers())
    dlt_logger.propagate = False


class RedactingFilter(logging.Filter):
    """Redacts a record's message in place: attach it to handlers with another formatter.

    (Handlers installed by :func:`configure_logging` need no filter: their formatter redacts
    the whole line, traceback included.)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - let the handler report the broken record
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: int | str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in dbsync's format; returns the handler.

    Replaces the root logger's handlers, so calling it twice does not duplicate lines.
    Tracebacks are printed only at DEBUG.
    """
    root = logging.getLogger()
    root.setLevel(level.upper() if isinstance(level, str) else level)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(DbsyncFormatter(tracebacks=root.getEffectiveLevel() <= logging.DEBUG))
    handler.addFilter(DeadConnectionResets())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    _route_dlt_logs()
    logging.captureWarnings(True)
    return handler


def pool_line(name: str, engine: Engine) -> tuple[int, str]:
    """The log level and text of one pool status line."""
    n = pool_numbers(engine)
    line = f"{name} pool: size={n['size']} checked_out={n['checked_out']} overflow={n['overflow']}"
    capacity = n["size"] + max(n["max_overflow"], 0)
    if n["size"] and n["checked_out"] >= capacity:
        timeout = getattr(engine.pool, "_timeout", None)
        wait = f"; new checkouts wait up to {timeout:g}s (POOL_TIMEOUT)" if timeout else ""
        return logging.WARNING, (f"{line} max_overflow={n['max_overflow']} - pool exhausted{wait}")
    return logging.INFO, line


def log_pool_status(engines: Engines) -> None:
    """Log one ``CONNECTION_POOL`` line per side (WARNING when a pool is exhausted)."""
    for name in ("source", "target"):
        level, line = pool_line(name, getattr(engines, name))
        pool_log.log(level, line)


class Periodic:
    """A daemon thread calling ``fn`` every ``every_s`` seconds until :meth:`stop`."""

    def __init__(self, name: str, every_s: float, fn: Callable[[], Any]) -> None:
        self.every_s = every_s
        self._fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self._fn()
            except Exception:  # noqa: BLE001 - a reporter must never die
                pool_log.exception("periodic %s failed", self._thread.name)

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def start_pool_reporter(
    engines: Engines, every_s: float = 60.0, also: Iterable[Callable[[], Any]] = ()
) -> Periodic:
    """Log the pool status of ``engines`` every ``every_s`` seconds (plus run ``also``)."""
    extra = list(also)

    def tick() -> None:
        log_pool_status(engines)
        for fn in extra:
            fn()

    return Periodic("dbsync-pool-reporter", every_s, tick).start()
