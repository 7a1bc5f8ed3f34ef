"""dbsync.config.errors.classify: which failures are retried, which fail at once, which skip.

Exceptions are built the way the real libraries build them (PyMySQL's error map, SQLAlchemy's
DBAPIError wrapper, dlt's database and pipeline wrappers, ``raise ... from``), and where it
is cheap the real component raises them itself (a refused TCP connection, an exhausted
SQLAlchemy pool, an unreachable Redis).
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pymysql
import pytest
import redis
import sqlalchemy as sa
from dlt.destinations.exceptions import DatabaseTerminalException, DatabaseTransientException
from dlt.pipeline.exceptions import PipelineStepFailed

from dbsync.config.errors import (
    ConfigError,
    ConfigProblem,
    FatalError,
    IncompatibleSchema,
    LoadDataError,
    LockLost,
    Outcome,
    RowCountMismatch,
    SourceTableMissing,
    TableBusy,
    TransientError,
    classify,
    describe,
    is_panic,
    reader_error,
)
from dbsync.config.settings import load_settings


def mysql_error(code: int, message: str) -> pymysql.MySQLError:
    """The exception PyMySQL raises for a server or client error number."""
    klass = pymysql.err.error_map.get(code)
    if klass is None:
        klass = pymysql.err.InternalError if code < 1000 else pymysql.err.OperationalError
    return klass(code, message)


def raised(exc: BaseException, wrapper: BaseException) -> BaseException:
    """``wrapper`` as raised with ``raise wrapper from exc``."""
    try:
        try:
            raise exc
        except BaseException as inner:
            raise wrapper from inner
    except BaseException as outer:
        return outer


def via_sqlalchemy(exc: pymysql.MySQLError) -> sa.exc.DBAPIError:
    """The SQLAlchemy wrapper the engine raises around a PyMySQL error."""
    return sa.exc.DBAPIError.instance("SELECT 1", {}, exc, pymysql.MySQLError)


def via_dlt_load(exc: BaseException) -> PipelineStepFailed:
    """How dlt reports a failure in its load step: its DB wrapper inside PipelineStepFailed."""
    wrapped = raised(exc, DatabaseTransientException(exc))
    pipeline = SimpleNamespace(has_pending_data=False, pipeline_name="dbsync")
    return PipelineStepFailed(pipeline, "load", "1700000000.1", wrapped)  # type: ignore[arg-type]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- transient: retried with backoff -----------------------------------------------------

TRANSIENT_MYSQL = {
    2003: "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)",
    2006: "MySQL server has gone away",
    2013: "Lost connection to MySQL server during query",
    1205: "Lock wait timeout exceeded; try restarting transaction",
    1213: "Deadlock found when trying to get lock; try restarting transaction",
    1040: "Too many connections",
}


@pytest.mark.parametrize("code", sorted(TRANSIENT_MYSQL))
def test_transient_mysql_error_is_retried(code: int) -> None:
    assert classify(mysql_error(code, TRANSIENT_MYSQL[code])) is Outcome.TRANSIENT


@pytest.mark.parametrize("code", sorted(TRANSIENT_MYSQL))
def test_transient_mysql_error_wrapped_by_sqlalchemy_is_retried(code: int) -> None:
    assert classify(via_sqlalchemy(mysql_error(code, TRANSIENT_MYSQL[code]))) is Outcome.TRANSIENT


@pytest.mark.parametrize("code", [2013, 1213])
def test_transient_mysql_error_inside_dlt_pipeline_failure_is_retried(code: int) -> None:
    exc = via_dlt_load(via_sqlalchemy(mysql_error(code, TRANSIENT_MYSQL[code])))
    assert classify(exc) is Outcome.TRANSIENT


def test_refused_connection_from_the_real_driver_is_retried() -> None:
    with pytest.raises(pymysql.err.OperationalError) as caught:
        pymysql.connect(host="127.0.0.1", port=closed_port(), user="root", connect_timeout=2)
    assert classify(caught.value) is Outcome.TRANSIENT


def test_refused_connection_from_a_real_engine_is_retried() -> None:
    engine = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:{closed_port()}/x")
    with pytest.raises(sa.exc.OperationalError) as caught:
        engine.connect()
    engine.dispose()
    assert classify(caught.value) is Outcome.TRANSIENT


def test_exhausted_connection_pool_is_retried() -> None:
    engine = sa.create_engine(
        "sqlite://", poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    with engine.connect(), pytest.raises(sa.exc.TimeoutError) as caught:
        engine.connect()
    engine.dispose()
    assert classify(caught.value) is Outcome.TRANSIENT


def test_redis_connection_error_is_retried() -> None:
    client = redis.Redis(host="127.0.0.1", port=closed_port(), socket_connect_timeout=2)
    with pytest.raises(redis.exceptions.ConnectionError) as caught:
        client.ping()
    assert classify(caught.value) is Outcome.TRANSIENT


def test_lost_table_lock_is_retried() -> None:
    exc = raised(via_sqlalchemy(mysql_error(2013, TRANSIENT_MYSQL[2013])), LockLost("lost"))
    assert classify(exc) is Outcome.TRANSIENT


def test_transient_error_of_our_own_is_retried() -> None:
    assert classify(TransientError("try again")) is Outcome.TRANSIENT


# --- permanent: fail at once, no retry ----------------------------------------------------

FATAL_MYSQL = {
    1045: "Access denied for user 'dbsync'@'localhost' (using password: YES)",
    1044: "Access denied for user 'dbsync'@'%' to database 'shop'",
    1142: "SELECT command denied to user 'dbsync'@'localhost' for table 'orders'",
    1146: "Table 'shop.orders' doesn't exist",
    1054: "Unknown column 'updated_at' in 'field list'",
    1366: "Incorrect integer value: 'x' for column 'id' at row 1",
    1264: "Out of range value for column 'qty' at row 1",
    1406: "Data too long for column 'name' at row 1",
    1062: "Duplicate entry '1' for key 'PRIMARY'",
}


@pytest.mark.parametrize("code", sorted(FATAL_MYSQL))
def test_permanent_mysql_error_fails_at_once(code: int) -> None:
    assert classify(via_sqlalchemy(mysql_error(code, FATAL_MYSQL[code]))) is Outcome.FATAL


def test_access_denied_is_permanent_although_pymysql_calls_it_operational() -> None:
    exc = mysql_error(1045, FATAL_MYSQL[1045])
    assert isinstance(exc, pymysql.err.OperationalError)
    assert classify(exc) is Outcome.FATAL


@pytest.mark.parametrize("code", [1366, 1146])
def test_permanent_error_labelled_transient_by_dlt_still_fails_at_once(code: int) -> None:
    # dlt's sqlalchemy client labels most database errors "transient"; the server's error
    # number knows better.
    exc = via_dlt_load(via_sqlalchemy(mysql_error(code, FATAL_MYSQL[code])))
    assert classify(exc) is Outcome.FATAL


def test_dlt_terminal_error_fails_at_once() -> None:
    inner = via_sqlalchemy(mysql_error(1406, FATAL_MYSQL[1406]))
    assert classify(raised(inner, DatabaseTerminalException(inner))) is Outcome.FATAL


def test_bad_configuration_fails_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()  # no SOURCE_DB_NAME / TARGET_DB_NAME in the (isolated) environment
    assert classify(caught.value) is Outcome.FATAL


@pytest.mark.parametrize(
    "exc",
    [
        SourceTableMissing("table 'orders' does not exist in the source"),
        IncompatibleSchema("column 'id' changed from INT to VARCHAR"),
        RowCountMismatch("staged 9 rows but the snapshot has 10"),
        LoadDataError("LOAD DATA reported 3 warnings"),
        FatalError("anything we raise as fatal"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_our_permanent_errors_fail_at_once(exc: FatalError) -> None:
    assert classify(exc) is Outcome.FATAL


def test_our_permanent_error_wins_over_the_transient_error_that_caused_it() -> None:
    cause = via_sqlalchemy(mysql_error(2013, TRANSIENT_MYSQL[2013]))
    assert classify(raised(cause, IncompatibleSchema("cannot follow"))) is Outcome.FATAL


def test_unknown_error_fails_at_once() -> None:
    assert classify(ValueError("unexpected")) is Outcome.FATAL


# --- skip: another process is syncing the table -------------------------------------------


def test_busy_table_is_skipped() -> None:
    assert classify(TableBusy("lock dbsync:shop.orders is held")) is Outcome.SKIP


def test_busy_table_wrapped_in_another_error_is_skipped() -> None:
    assert classify(raised(TableBusy("held"), RuntimeError("sync aborted"))) is Outcome.SKIP


# --- describe: the message a failed task carries ------------------------------------------


def test_description_of_a_mysql_error_names_its_number_and_message() -> None:
    exc = via_dlt_load(via_sqlalchemy(mysql_error(1146, FATAL_MYSQL[1146])))
    assert describe(exc) == f"MySQL error 1146: {FATAL_MYSQL[1146]}"


def test_description_of_a_config_error_lists_every_problem() -> None:
    exc = ConfigError([ConfigProblem("$[0].table", "is required"), ConfigProblem("INTERVAL", "x")])
    assert describe(exc) == "ConfigError: $[0].table: is required; INTERVAL: x"


# --- reader failures: connectorx reports MySQL errors as text, sometimes as a Rust panic ---


class PanicException(BaseException):
    """Stands for pyo3_runtime.PanicException (same name, also a BaseException)."""


READER_TEXT = {
    "killed query": (
        "cx writer failed: Source(MySQLError(MySqlError { ERROR 1317 (70100): "
        "Query execution was interrupted }))",
        TransientError,
        "MySQL error 1317: Query execution was interrupted",
    ),
    "killed connection": (
        "cx writer failed: Source(MySQLError(IoError { server disconnected }))",
        TransientError,
        "IoError { server disconnected }",
    ),
    "missing column": (
        "cx writer failed: Source(MySQLError(MySqlError { ERROR 1054 (42S22): "
        "Unknown column 'x' in 'field list' }))",
        FatalError,
        "MySQL error 1054: Unknown column 'x' in 'field list'",
    ),
}


@pytest.mark.parametrize("case", list(READER_TEXT))
def test_a_reader_panic_becomes_a_dbsync_error_naming_table_and_cause(case: str) -> None:
    text, kind, cause = READER_TEXT[case]
    error = reader_error(PanicException(text), "orders")
    assert (type(error), is_panic(PanicException(text))) == (kind, True)
    assert "reading table 'orders' from the source failed" in str(error)
    assert cause in str(error)


def test_a_driver_error_of_the_reader_is_classified_like_any_other() -> None:
    error = reader_error(via_sqlalchemy(mysql_error(2013, "Lost connection")), "orders")
    assert type(error) is TransientError
    assert "MySQL error 2013: Lost connection" in str(error)


def certificate_refused() -> BaseException:
    """What PyMySQL raises when the server's certificate does not verify."""
    import ssl

    reason = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    )
    reason.verify_message = "unable to get local issuer certificate"
    wrapper = pymysql.err.OperationalError(
        2003, f"Can't connect to MySQL server on 'db' ({reason})"
    )
    return via_sqlalchemy(raised(reason, wrapper))  # type: ignore[arg-type]


def test_a_refused_certificate_is_fatal_not_a_connection_retry() -> None:
    assert classify(certificate_refused()) is Outcome.FATAL


def test_a_refused_certificate_is_described_as_a_certificate_problem() -> None:
    assert describe(certificate_refused()).startswith(
        "TLS certificate verification failed: unable to get local issuer certificate"
    )
