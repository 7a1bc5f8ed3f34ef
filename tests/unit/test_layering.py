"""The walls of ``dbsync/``, checked on its source (see docs/modules.md).

- The library never imports Celery (``workers/`` and ``beat/`` import the library, never the
  reverse).
- Policy packages (``sync``, ``copy``, ``compare``, ``ops``) and the protocol modules
  (``dbsync.dialect``, ``dbsync.model``) reach a database only through the ``Dialect``: they
  import no module inside ``dbsync.backends`` (only the package itself, whose ``__init__``
  picks the dialect of a URL and opens the engines).
- Backends import no policy module (nor the CLI or the demo).
- The configuration core (``dbsync.config``) imports nothing that talks to a database: no
  backend, no driver, no SQLAlchemy engine or connection (its URL type is a value), no dlt.
- No string outside ``dbsync/backends/`` looks like SQL.

Each rule is a function over a set of files, so a planted violation shows it failing.
"""

from __future__ import annotations

import ast
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import dbsync

PACKAGE = Path(dbsync.__file__).parent
ROOT = PACKAGE.parent

POLICY = (
    "dbsync.sync",
    "dbsync.copy",
    "dbsync.compare",
    "dbsync.ops",
    "dbsync.dialect",
    "dbsync.model",
)
CONFIG = ("dbsync.config",)
BACKENDS = ("dbsync.backends",)
ABOVE_BACKENDS = (*POLICY[:4], "dbsync.cli", "dbsync.demo")
# what "talks to a database": drivers, engines, dlt (its destinations open connections)
DATABASE_LIBRARIES = ("sqlalchemy", "pymysql", "MySQLdb", "connectorx", "dlt", "sqlite3", "redis")
# the configuration core may use SQLAlchemy's URL value type (it parses, it never connects)
URL_TYPES = {"sqlalchemy.engine.URL", "sqlalchemy.engine.make_url"}

SQL = re.compile(
    r"""
      ^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|RENAME|TRUNCATE|SHOW|SET|
           PRAGMA|ATTACH|BEGIN|COMMIT|ROLLBACK|START\ TRANSACTION|LOCK|UNLOCK|GRANT|KILL)\s+\S
    | \bSELECT\b[\s\S]*\bFROM\b
    | \bINSERT\s+INTO\b | \bUPDATE\s+\S+\s+SET\b | \bDELETE\s+FROM\b | \bREPLACE\s+INTO\b
    | \b(CREATE|ALTER|DROP|RENAME|TRUNCATE)\s+(TEMPORARY\s+)?(TABLE|DATABASE|SCHEMA|INDEX)\b
    | \bADD\s+(COLUMN|INDEX|PRIMARY\ KEY)\b
    | information_schema | performance_schema | sqlite_master
    | \b(GET_LOCK|RELEASE_LOCK|IS_USED_LOCK|BIT_XOR|CRC32|MD5|CONV)\(
    | \bLOAD\s+DATA\s+(LOCAL\s+)?INFILE\b | \bLOCK\s+TABLES\b | \bFORCE\s+INDEX\b
    | \bON\s+DUPLICATE\s+KEY\b | \bON\s+CONFLICT\b | \bWHERE\s+\S+\s*(=|<|>|IN\b|IS\b)
    | \bSET\s+(SESSION|GLOBAL|TRANSACTION|NAMES)\b | @@\w+
    """,
    re.VERBOSE,
)

def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imported(path: Path) -> Iterator[str]:
    """Every module (and ``module.name``) a file imports, anywhere in it."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def backend_imports_from_above(files: Iterable[Path]) -> list[str]:
    """Policy or protocol modules importing a module inside ``dbsync.backends``."""
    return [
        f"{module_name(f)} imports {name}"
        for f in files
        if within(module_name(f), POLICY)
        for name in imported(f)
        if within(name, BACKENDS) and name not in BACKENDS and not _package_member(name)
    ]


def _package_member(name: str) -> bool:
    """``dbsync.backends.X`` naming something ``dbsync/backends/__init__.py`` defines."""
    head, _, member = name.rpartition(".")
    return (
        head == "dbsync.backends"
        and not (PACKAGE / "backends" / member).exists()
        and not (PACKAGE / "backends" / f"{member}.py").exists()
    )


def policy_imports_from_backends(files: Iterable[Path]) -> list[str]:
    """Backend modules importing policy, the CLI or the demo."""
    return [
        f"{module_name(f)} imports {name}"
        for f in files
        if within(module_name(f), BACKENDS)
        for name in imported(f)
        if within(name, ABOVE_BACKENDS)
    ]


def database_imports_from_config(files: Iterable[Path]) -> list[str]:
    """Configuration modules importing a backend, a driver, an engine or dlt."""
    return [
        f"{module_name(f)} imports {name}"
        for f in files
        if within(module_name(f), CONFIG)
        for name in imported(f)
        if (within(name, (*BACKENDS, *DATABASE_LIBRARIES)) or within(name, POLICY))
        and name not in URL_TYPES
        and not (name == "sqlalchemy.engine" and _only_url_types(f))
    ]


def _only_url_types(path: Path) -> bool:
    names = {
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy.engine"
        for alias in node.names
    }
    return names <= URL_TYPES


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = [
        tree,
        *(
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ),
    ]
    return {
        id(node.body[0].value)
        for node in nodes
        if node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    }


def strings(path: Path) -> Iterator[tuple[int, str]]:
    """Every string literal and f-string (its literal parts, a ``{}`` per value) that is not a
    docstring (prose)."""
    tree = ast.parse(path.read_text(), str(path))
    prose = _docstrings(tree)
    parts_of_fstrings = {
        id(value)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for value in node.values
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield node.lineno, text
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in prose
            and id(node) not in parts_of_fstrings
        ):
            yield node.lineno, node.value


def sql_outside_backends(files: Iterable[Path]) -> list[str]:
    """Strings that look like SQL in modules outside ``dbsync/backends/``."""
    return [
        f"{f.relative_to(ROOT)}:{line}: {text.strip()[:70]!r}"
        for f in files
        if not within(module_name(f), BACKENDS)
        for line, text in strings(f)
        if SQL.search(text)
    ]


# --- the walls ---------------------------------------------------------------------------


def test_policy_and_protocol_modules_import_no_backend_module() -> None:
    assert backend_imports_from_above(library_files()) == []


def test_backends_import_no_policy_module() -> None:
    assert policy_imports_from_backends(library_files()) == []


def test_the_configuration_core_imports_nothing_that_talks_to_a_database() -> None:
    assert database_imports_from_config(library_files()) == []


def test_no_module_outside_the_backends_holds_sql() -> None:
    assert sql_outside_backends(library_files()) == []


# --- the rules see what they must --------------------------------------------------------


def test_the_sql_rule_sees_statements_and_ignores_prose(tmp_path: Path) -> None:
    for statement in (
        "SELECT a FROM t",
        "INSERT INTO t VALUES (1)",
        "UPDATE t SET a = 1",
        "DELETE FROM t WHERE a = 1",
        "RENAME TABLE a TO b",
        "SELECT GET_LOCK(:n, 1)",
        "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
        "LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
        "SELECT 1",
    ):
        assert SQL.search(statement), statement
    for prose in (
        "select the rows from the source",
        "the longest single statement: a LOAD DATA file",
        "SELECT",
        "may not SELECT from shop.orders",
    ):
        assert not SQL.search(prose), prose


# --- Celery ------------------------------------------------------------------------------

PROBE = """
import importlib, pkgutil, sys
import dbsync
for module in pkgutil.walk_packages(dbsync.__path__, "dbsync."):
    importlib.import_module(module.name)
print(",".join(sorted(name for name in sys.modules if name.split(".")[0] == "celery")))
"""


def test_importing_every_dbsync_module_loads_no_celery_module() -> None:
    # a fresh interpreter: this one may have imported celery for other tests
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == ""


def test_the_probe_sees_every_dbsync_module() -> None:
    names = {module.name for module in pkgutil.walk_packages(dbsync.__path__, "dbsync.")}
    assert {"dbsync.sync.run", "dbsync.ops.health", "dbsync.backends.mysql.target"} <= names
    assert {module_name(f) for f in library_files()} - {"dbsync"} <= names
