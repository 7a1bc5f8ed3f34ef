"""Log line format, component names, secret redaction and pool status lines."""

from __future__ import annotations

import io
import logging
import re
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dbsync.backends.engines import Engines
from dbsync.ops import logs
from tests import helpers

LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} - (?P<level>[A-Z]+) - (?P<component>[A-Z_]+) - "
    r"(?P<message>.*)$"
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    with helpers.captured_logs() as buffer:
        yield buffer


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_line_has_timestamp_level_component_message(stream: io.StringIO) -> None:
    logging.getLogger("dbsync.sync_engine").info("orders: synced %d rows", 12)
    match = LINE.match(lines(stream)[-1])
    assert match is not None
    assert match.group("level", "component", "message") == (
        "INFO",
        "SYNC_ENGINE",
        "orders: synced 12 rows",
    )


def test_exact_format_in_utc_with_milliseconds() -> None:
    record = logging.LogRecord(
        "dbsync.sync_engine", logging.INFO, __file__, 1, "message", None, None
    )
    record.created = 1795773600.123  # 2026-11-27 10:00:00.123 UTC
    record.msecs = 123.0
    formatted = logs.DbsyncFormatter().format(record)
    assert formatted == "2026-11-27 10:00:00,123 - INFO - SYNC_ENGINE - message"


@pytest.mark.parametrize(
    ("logger", "component"),
    [
        ("dbsync.schema_sync", "SCHEMA_SYNC"),
        ("dbsync.connection_pool", "CONNECTION_POOL"),
        ("workers.worker", "WORKER"),
        ("beat.beat", "BEAT"),
        ("dbsync", "DBSYNC"),
        ("celery.app.trace", "CELERY"),
        ("sqlalchemy.pool.impl", "SQLALCHEMY"),
        ("", "ROOT"),
    ],
)
def test_component_comes_from_logger_name(logger: str, component: str) -> None:
    assert logs.component_for(logger) == component


def test_extra_component_overrides_logger_name(stream: io.StringIO) -> None:
    logging.getLogger("dbsync.cli").info("hello", extra={"component": "HEALTH"})
    assert " - HEALTH - hello" in lines(stream)[-1]


def test_configure_twice_does_not_duplicate_lines(stream: io.StringIO) -> None:
    logs.configure_logging("INFO", stream=stream)
    logging.getLogger("dbsync.verify").info("once")
    assert sum("once" in line for line in lines(stream)) == 1


def test_registered_secret_is_redacted_from_message(stream: io.StringIO) -> None:
    logs.register_secret("s3cr3t-Value")
    logging.getLogger("dbsync.sync_engine").error("login with %s failed", "s3cr3t-Value")
    assert "s3cr3t-Value" not in stream.getvalue()
    assert "login with *** failed" in lines(stream)[-1]


def test_secret_is_redacted_from_traceback(stream: io.StringIO) -> None:
    logs.register_secret("tb-secret-123")
    try:
        raise RuntimeError("could not use tb-secret-123")
    except RuntimeError:
        logging.getLogger("dbsync.sync_engine").exception("boom")
    assert "tb-secret-123" not in stream.getvalue()
    assert "RuntimeError: could not use ***" in stream.getvalue()


def test_url_password_is_masked_without_registration(stream: io.StringIO) -> None:
    logging.getLogger("dbsync.cli").info("using mysql+pymysql://app:hunter2x@db:3306/shop")
    assert "hunter2x" not in stream.getvalue()
    assert "mysql+pymysql://app:***@db:3306/shop" in lines(stream)[-1]


def test_redis_url_without_user_is_masked() -> None:
    assert (
        logs.redact("broker redis://:pa55word@redis:6379/0") == "broker redis://:***@redis:6379/0"
    )


def test_password_key_value_is_masked() -> None:
    text = "connect(user='u', password='xyz123')"
    assert logs.redact(text) == "connect(user='u', password='***')"


def test_url_without_password_is_unchanged() -> None:
    text = "see https://sqlalche.me/e/21/e3q8 and mysql://app@db/shop"
    assert logs.redact(text) == text


def test_short_secret_is_not_registered() -> None:
    logs.register_secret("abc")
    try:
        assert logs.redact("abc abc") == "abc abc"
    finally:
        logs.clear_secrets()


def test_settings_secrets_are_registered() -> None:
    from dbsync.config.settings import load_settings

    settings = load_settings(
        source_db_name="s",
        target_db_url="mysql+pymysql://w:url-pass-77@t:3306/tgt",
        source_db_pass="src-pass-11",
        redis_url="redis://:redis-pass-99@r:6379/0",
    )
    logs.register_settings_secrets(settings)
    try:
        text = logs.redact("src-pass-11 / url-pass-77 / redis-pass-99")
    finally:
        logs.clear_secrets()
    assert text == "*** / *** / ***"


def test_redacting_filter_cleans_record_for_foreign_handlers() -> None:
    logs.register_secret("filter-secret")
    record = logging.LogRecord(
        "celery", logging.INFO, __file__, 1, "pw=%s", ("filter-secret",), None
    )
    try:
        logs.RedactingFilter().filter(record)
    finally:
        logs.clear_secrets()
    assert record.getMessage() == "pw=***"


def _engines(pool_size: int = 5, max_overflow: int = 0) -> Engines:
    def make() -> sa.Engine:
        return sa.create_engine(
            "mysql+pymysql://u:p@127.0.0.1:1/x",
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=7,
        )

    return Engines(source=make(), target=make())


def test_pool_status_lines(stream: io.StringIO) -> None:
    engines = _engines()
    logs.log_pool_status(engines)
    tail = lines(stream)[-2:]
    for side, line in zip(("source", "target"), tail, strict=True):
        expected = f" - INFO - CONNECTION_POOL - {side} pool: size=5 checked_out=0 overflow=0"
        assert line.endswith(expected)


def test_exhausted_pool_logs_warning() -> None:
    engine = sa.create_engine(
        "sqlite://", poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=0, pool_timeout=7
    )
    conn = engine.connect()
    try:
        level, line = logs.pool_line("target", engine)
    finally:
        conn.close()
        engine.dispose()
    assert level == logging.WARNING
    assert line.startswith("target pool: size=1 checked_out=1 overflow=0 max_overflow=0")
    assert "pool exhausted; new checkouts wait up to 7s (POOL_TIMEOUT)" in line


def test_pool_reporter_logs_periodically(stream: io.StringIO) -> None:
    calls: list[int] = []
    reporter = logs.start_pool_reporter(_engines(), every_s=0.05, also=[lambda: calls.append(1)])
    try:
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        reporter.stop()
    assert calls
    assert "source pool: size=5" in stream.getvalue()
    assert not reporter.alive


def test_periodic_survives_failing_callback(stream: io.StringIO) -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        raise ValueError("flaky")

    periodic = logs.Periodic("t", 0.02, flaky).start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        periodic.stop()
    assert len(calls) >= 2
    assert "periodic t failed" in stream.getvalue()


def _failure_record() -> logging.LogRecord:
    try:
        raise RuntimeError("disk full\nsecond line")
    except RuntimeError as exc:
        return logging.LogRecord(
            "dbsync.sync_engine",
            logging.ERROR,
            __file__,
            1,
            "load failed",
            None,
            (type(exc), exc, exc.__traceback__),
        )


def test_without_tracebacks_an_exception_is_summarised_on_the_line() -> None:
    formatted = logs.DbsyncFormatter(tracebacks=False).format(_failure_record())
    assert formatted.endswith(" - ERROR - SYNC_ENGINE - load failed: RuntimeError: disk full")


def test_debug_logging_keeps_tracebacks() -> None:
    formatted = logs.DbsyncFormatter(tracebacks=True).format(_failure_record())
    assert "Traceback (most recent call last)" in formatted


def test_console_below_debug_prints_no_traceback() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    logs.configure_logging("INFO", stream=buffer)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("dbsync.sync_engine").exception("sync failed")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert buffer.getvalue().splitlines()[-1].endswith("sync failed: RuntimeError: boom")
    assert "Traceback" not in buffer.getvalue()


def test_a_traceback_inside_a_message_shrinks_to_its_exception_line() -> None:
    text = (
        "Job f.1 retried with message Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\n'
        "pymysql.err.OperationalError: (2013, 'Lost connection')\n"
        "(Background on this error at: https://sqlalche.me/e/21/e3q8)\n"
    )
    assert logs.first_line(text) == (
        "Job f.1 retried with message pymysql.err.OperationalError: (2013, 'Lost connection')"
    )


def test_dlt_errors_arrive_as_one_warning_line(stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("dlt").error(
        "Transient exception in job\nTraceback (most recent call last):\nKeyError: 'x'"
    )
    assert lines(stream)[-1].endswith(" - WARNING - DLT - Transient exception in job KeyError: 'x'")


def test_mysql_access_denied_keeps_whether_a_password_was_sent() -> None:
    text = "Access denied for user 'u'@'10.0.0.1' (using password: YES)"
    assert logs.redact(text) == text


def test_a_password_value_that_merely_starts_with_yes_is_masked() -> None:
    assert logs.redact("password: YESsecret1") == "password: ***"
