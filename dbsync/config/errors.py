"""One exception tree, split by what the caller should do.

- ``FatalError``: retrying cannot help (bad config, missing table, incompatible schema,
  data errors). Fail the table at once, with a message that says what to do.
- ``TransientError``: the same call may succeed later (connection lost, deadlock, pool
  exhausted). Retry with backoff.
- ``TableBusy``: another process is syncing the table right now. Skip, don't fail.

``classify`` maps any exception (ours, PyMySQL's, SQLAlchemy's, dlt's wrappers, Redis')
to one of these three outcomes by walking its cause chain.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class DbsyncError(Exception):
    """Root of every error dbsync raises on purpose."""


class FatalError(DbsyncError):
    """Retrying will not help; fix the cause first."""


class TransientError(DbsyncError):
    """A passing fault; the same call may succeed when retried."""


class TableBusy(DbsyncError):
    """Another process holds the table's sync lock."""


@dataclass(frozen=True)
class ConfigProblem:
    """One configuration problem, located by a JSON path (``$[2].primary_key``) or env name."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(FatalError):
    """Invalid settings or tables.json; carries every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class SourceTableMissing(FatalError):
    """The configured table (or one of its key/cursor columns) is absent from the source."""


class IncompatibleSchema(FatalError):
    """The source schema changed in a way the target cannot follow in place."""


class RowCountMismatch(FatalError):
    """A full refresh staged a different number of rows than the source snapshot holds."""


class TooManyDeletes(FatalError):
    """Propagating deletes would remove more of the target than max_delete_fraction allows."""


class SafePointUnavailable(DbsyncError):
    """The source cannot tell its oldest open transaction (no PROCESS privilege, another
    server kind): incremental reads fall back to a lag (CURSOR_FALLBACK_LAG_SECONDS)."""


class LoadDataError(FatalError):
    """The bulk load reported warnings or lost rows: the data would not arrive unchanged."""


class LockLost(TransientError):
    """The table lock's connection died during the sync; the result is not committed."""


class SourceBusy(TransientError):
    """Every source read slot (SOURCE_MAX_CONCURRENT_READS) stayed taken: retry later."""


class MetadataLockTimeout(TransientError):
    """A target DDL kept timing out waiting for a table's metadata lock (another session
    holds it, typically an open transaction that read the table)."""


class Outcome(StrEnum):
    TRANSIENT = "transient"
    FATAL = "fatal"
    SKIP = "skip"


# MySQL/MariaDB error codes worth retrying.
TRANSIENT_MYSQL_CODES = frozenset(
    {
        1040,  # too many connections
        1050,  # table already exists: two first syncs creating dlt's tables at once
        1205,  # lock wait timeout
        1213,  # deadlock
        2002,  # can't connect through socket
        2003,  # can't connect to server
        2006,  # server has gone away
        2013,  # lost connection during query
        2014,  # commands out of sync (connection state broken)
        2055,  # lost connection (system error)
        1053,  # server shutdown in progress
        1317,  # query execution was interrupted (KILL QUERY)
        1927,  # connection was killed (MariaDB)
        4031,  # disconnected by server for inactivity
    }
)

_TRANSIENT_TYPE_NAMES = frozenset(
    {
        # SQLAlchemy pool exhausted (sqlalchemy.exc.TimeoutError)
        "sqlalchemy.exc.TimeoutError",
        # redis-py connection trouble
        "redis.exceptions.ConnectionError",
        "redis.exceptions.TimeoutError",
        "redis.exceptions.BusyLoadingError",
        # network trouble below the driver
        "builtins.ConnectionError",
        "builtins.ConnectionRefusedError",
        "builtins.ConnectionResetError",
        "builtins.BrokenPipeError",
        "builtins.TimeoutError",
        "socket.timeout",
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (cause, context, dlt's ``exception``)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for attr in ("__cause__", "__context__", "exception", "orig", "original_exception"):
            inner = getattr(current, attr, None)
            if isinstance(inner, BaseException):
                stack.append(inner)


def mysql_error_code(exc: BaseException) -> int | None:
    """The MySQL error number carried by a PyMySQL exception anywhere in the chain."""
    for item in _chain(exc):
        args = getattr(item, "args", ())
        if type(item).__module__.startswith("pymysql") and args and isinstance(args[0], int):
            return args[0]
    return None


def _type_names(exc: BaseException) -> set[str]:
    return {f"{klass.__module__}.{klass.__qualname__}" for klass in type(exc).__mro__}


def certificate_problem(exc: BaseException) -> str | None:
    """The reason a TLS certificate was refused, if that is what ``exc`` comes down to."""
    chain = list(_chain(exc))
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return item.verify_message or str(item)
    for item in reversed(chain):  # innermost first: wrappers repeat it with more noise
        text = str(item).strip()
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return text.splitlines()[0]
    return None


def classify(exc: BaseException) -> Outcome:
    """Decide whether ``exc`` is worth retrying, skipping, or failing for good."""
    chain = list(_chain(exc))
    if any(isinstance(item, TableBusy) for item in chain):
        return Outcome.SKIP
    if any(isinstance(item, FatalError) for item in chain):
        return Outcome.FATAL
    if certificate_problem(exc) is not None:
        return Outcome.FATAL  # a refused certificate stays refused: fix the CA or the host
    if any(isinstance(item, TransientError) for item in chain):
        return Outcome.TRANSIENT
    code = mysql_error_code(exc)
    if code is not None:
        return Outcome.TRANSIENT if code in TRANSIENT_MYSQL_CODES else Outcome.FATAL
    if any(_type_names(item) & _TRANSIENT_TYPE_NAMES for item in chain):
        return Outcome.TRANSIENT
    return Outcome.FATAL


_CODE_IN_TEXT = re.compile(r"ERROR (\d{4})(?: \(\w+\))?: ?([^}\n]*)")
_TRANSIENT_TEXT = re.compile(
    r"timed out|connection (refused|reset|closed|lost)|broken pipe|gone away|lost connection"
    r"|io ?error|server disconnected|bytes remaining on stream",
    re.IGNORECASE,
)


def is_panic(exc: BaseException) -> bool:
    """A Rust panic surfacing from a native extension (connectorx): pyo3's PanicException,
    a BaseException that ``except Exception`` does not catch."""
    return type(exc).__name__ == "PanicException"


def reader_error(exc: BaseException, table: str = "") -> DbsyncError:
    """The dbsync error for a failed source read, naming the table and the cause.

    Driver errors are classified like any other; what connectorx reports only as text (its
    RuntimeErrors and panics) is classified by the MySQL error number or the words it holds.
    """
    subject = f"reading table {table!r} from the source" if table else "source read"
    if not (is_panic(exc) or isinstance(exc, RuntimeError)):
        transient = classify(exc) is Outcome.TRANSIENT
        message = f"{subject} failed: {describe(exc)}"
        return TransientError(message) if transient else FatalError(message)
    text = str(exc).strip()
    match = _CODE_IN_TEXT.search(text)
    if match:
        transient = int(match.group(1)) in TRANSIENT_MYSQL_CODES
        cause = f"MySQL error {match.group(1)}: {match.group(2).strip()}"
    else:
        transient = bool(_TRANSIENT_TEXT.search(text))
        cause = text.splitlines()[0] if text else repr(exc)
    message = f"{subject} failed: {cause}"
    return TransientError(message) if transient else FatalError(message)


def describe(exc: BaseException) -> str:
    """A one-line message for summaries and logs: the most specific error in the chain."""
    for item in _chain(exc):
        if isinstance(item, DbsyncError):
            return f"{type(item).__name__}: {item}"
    certificate = certificate_problem(exc)
    if certificate is not None:
        return (
            f"TLS certificate verification failed: {certificate} (check *_DB_SSL_CA, "
            "*_DB_SSL_MODE and the host name the certificate is issued for)"
        )
    code = mysql_error_code(exc)
    if code is not None:
        for item in _chain(exc):
            if type(item).__module__.startswith("pymysql"):
                return f"MySQL error {code}: {item.args[1] if len(item.args) > 1 else item}"
    root = _root_cause(exc)
    text = str(root).strip()
    first_line = text.splitlines()[0] if text else ""
    return f"{type(root).__name__}: {first_line}"


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception wrapped by dlt's and SQLAlchemy's wrappers."""
    current = exc
    for _ in range(20):
        inner = current.__cause__ or getattr(current, "exception", None)
        if not isinstance(inner, BaseException):
            return current
        current = inner
    return current
