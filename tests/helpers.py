"""Test helpers shared by unit and integration tests (no fixtures here)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pymysql

MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306
MYSQL_USER = "root"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAKILA = SHARED / "datasets" / "sakila"


def unique_name(prefix: str = "dbsync_t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def connect(database: str | None = None, **kwargs: object) -> pymysql.Connection:
    return pymysql.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, database=database,
        charset="utf8mb4", autocommit=True, init_command="SET time_zone = '+00:00'",
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS, **kwargs,
    )


def execute(database: str | None, *statements: str) -> None:
    with connect(database) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def query(database: str | None, sql: str, args: Iterable[object] | None = None) -> list[tuple]:
    with connect(database) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def write_tables(path: Path, tables: list[dict]) -> Path:
    path.write_text(json.dumps(tables), encoding="utf-8")
    return path


def column_types(database: str, table: str) -> list[tuple]:
    return query(
        "information_schema",
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME "
        "FROM COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION",
        (database, table),
    )


def primary_key(database: str, table: str) -> list[str]:
    rows = query(
        "information_schema",
        "SELECT COLUMN_NAME FROM STATISTICS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
        "AND INDEX_NAME='PRIMARY' ORDER BY SEQ_IN_INDEX",
        (database, table),
    )
    return [r[0] for r in rows]


def table_rows(database: str, table: str, order_by: str) -> list[tuple]:
    return query(database, f"SELECT * FROM `{table}` ORDER BY {order_by}")


def sakila_sql(database: str) -> tuple[str, str]:
    """Sakila schema and data rewritten for ``database``, with MariaDB's GEOMETRY enabled."""
    texts = []
    for name in ("sakila-schema.sql", "sakila-data.sql"):
        text = (SAKILA / name).read_text(encoding="utf-8")
        text = re.sub(r"/\*!50705 (.*?)\*/", r"\1", text, flags=re.S)
        text = re.sub(r"\bsakila\b(?!-)", database, text)
        texts.append(text)
    return texts[0], texts[1]


def sakila_base_tables(database: str) -> list[str]:
    rows = query(
        "information_schema",
        "SELECT TABLE_NAME FROM TABLES WHERE TABLE_SCHEMA=%s AND TABLE_TYPE='BASE TABLE' "
        "ORDER BY TABLE_NAME",
        (database,),
    )
    return [r[0] for r in rows]


def load_sakila(database: str) -> None:
    """Load Sakila (with GEOMETRY) into ``database`` using the mysql client (DELIMITER aware)."""
    import subprocess

    for text in sakila_sql(database):
        subprocess.run(
            ["mysql", "-h", MYSQL_HOST, "-P", str(MYSQL_PORT), "-u", MYSQL_USER],
            input=text.encode(), check=True, capture_output=True,
        )


# --- exact value comparison, CLI runs and target inspection (integration tests) -------------

_HEX_TYPES = frozenset(
    {
        "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry",
        "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
        "geometrycollection", "bit", "char", "varchar", "tinytext", "text", "mediumtext",
        "longtext",
    }
)


def exact_expression(name: str, data_type: str) -> str:
    """A column's exact value as text: stored bytes (HEX) for strings, bytes and bits; the
    exact double for FLOAT (its own text form keeps only 6 digits); CAST AS CHAR otherwise."""
    column = "`" + name.replace("`", "``") + "`"
    if data_type in _HEX_TYPES:
        return f"HEX({column})"
    if data_type == "float":
        return f"CAST(CAST({column} AS DOUBLE) AS CHAR)"
    return f"CAST({column} AS CHAR)"


def exact_rows(database: str, table: str, order_by: str | None = None) -> list[tuple]:
    """Every row of ``table`` as exact text per column (UTC session), NULLs as None."""
    columns = query(
        "information_schema",
        "SELECT COLUMN_NAME, DATA_TYPE FROM COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
        "ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    assert columns, f"{database}.{table} does not exist"
    select = ", ".join(exact_expression(name, data_type.lower()) for name, data_type in columns)
    keys = primary_key(database, table)
    order = order_by or ", ".join(f"`{k}`" for k in keys) or "1"
    return query(database, f"SELECT {select} FROM `{table}` ORDER BY {order}")


def table_names(database: str) -> set[str]:
    rows = query(
        "information_schema",
        "SELECT TABLE_NAME FROM TABLES WHERE TABLE_SCHEMA=%s",
        (database,),
    )
    return {r[0] for r in rows}


def count(database: str, table: str) -> int:
    return int(query(database, f"SELECT COUNT(*) FROM `{table}`")[0][0])


_DBSYNC_ENV_PREFIXES = (
    "SOURCE_DB_", "TARGET_DB_", "STAGING_DB_", "POOL_", "TABLES_CONFIG", "DEFAULT_LAG",
    "FETCH_LIMIT", "LOCK_",
)


def run_dbsync(
    env: dict[str, str], *args: str, cwd: Path | str | None = None, timeout: float = 300
):
    """Run the ``dbsync`` console script with exactly ``env`` as its dbsync settings."""
    import os
    import subprocess
    import sys

    script = Path(sys.executable).with_name("dbsync")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dbsync.cli"]
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith(_DBSYNC_ENV_PREFIXES)}
    clean.update(env)
    return subprocess.run(
        [*command, *args], env=clean, cwd=cwd, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """dbsync's log configuration writing into a buffer; the root logger restored after."""
    from dbsync.ops import logs

    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    logs.configure_logging("DEBUG", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logs.clear_secrets()


def waiting_for_metadata_lock(info_like: str, timeout: float = 120) -> int:
    """The processlist id of a statement whose text is ``LIKE info_like``, once it waits for
    a table's metadata lock (held by a test's ``LOCK TABLES``)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = query(
            None,
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s "
            "AND STATE = 'Waiting for table metadata lock'",
            (info_like,),
        )
        if rows:
            return int(rows[0][0])
        assert time.monotonic() < deadline, f"no statement like {info_like!r} is waiting"
        time.sleep(0.02)


def definition(database: str, table: str) -> dict[str, object]:
    """What dbsync mirrors of a table, from information_schema: columns (name, type,
    nullability, character set, collation, in order), primary key, secondary and unique
    indexes (name, uniqueness, columns with prefix lengths) and the table's collation."""
    indexes = query(
        "information_schema",
        "SELECT INDEX_NAME, NON_UNIQUE, GROUP_CONCAT(CONCAT(COLUMN_NAME, '(', "
        "COALESCE(SUB_PART, ''), ')') ORDER BY SEQ_IN_INDEX) FROM STATISTICS "
        "WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND INDEX_NAME <> 'PRIMARY' "
        "GROUP BY INDEX_NAME, NON_UNIQUE ORDER BY INDEX_NAME",
        (database, table),
    )
    collation = query(
        "information_schema",
        "SELECT TABLE_COLLATION FROM TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s",
        (database, table),
    )
    return {
        "columns": column_types(database, table),
        "primary_key": primary_key(database, table),
        "indexes": indexes,
        "collation": collation,
    }


@contextlib.contextmanager
def load_refused_for(database: str, table: str, condition: str) -> Iterator[None]:
    """While inside, inserting a row matching ``condition`` into ``database.table`` fails (a
    trigger's SIGNAL): a load into it fails as one the target refuses does, whatever the
    data."""
    trigger = f"`{database}`.`dbsync_test_refuse`"
    execute(
        database,
        f"CREATE TRIGGER {trigger} BEFORE INSERT ON `{table}` FOR EACH ROW "
        f"IF NEW.{condition} THEN SIGNAL SQLSTATE '45000' "
        "SET MESSAGE_TEXT = 'refused by a test trigger'; END IF",
    )
    try:
        yield
    finally:
        execute(database, f"DROP TRIGGER IF EXISTS {trigger}")
