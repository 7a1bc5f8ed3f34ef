"""Target-side statements: staging tables, the atomic swap and the key-based merge."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.errors import FatalError
from dbsync.schema import TableSchema, qualified, quote


def ensure_database(engine: Engine, database: str) -> None:
    """Create the (staging) database if missing; say how to pre-create it if not allowed."""
    with engine.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :d"),
            {"d": database},
        ).first()
        if exists:
            return
        try:
            conn.execute(sa.text(f"CREATE DATABASE IF NOT EXISTS {quote(database)}"))
        except sa.exc.DBAPIError as exc:
            raise FatalError(
                f"staging database {database!r} does not exist and the target user may not "
                f"create it; pre-create it (CREATE DATABASE {quote(database)}) and grant the "
                "target user all privileges on it, or set STAGING_DB_NAME"
            ) from exc


def execute(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def drop_table(engine: Engine, database: str, table: str) -> None:
    execute(engine, f"DROP TABLE IF EXISTS {qualified(database, table)}")


def recreate_like(engine: Engine, database: str, table: str, like: str) -> None:
    """An empty staging table with exactly the definition of ``like``."""
    drop_table(engine, database, table)
    execute(engine, f"CREATE TABLE {qualified(database, table)} LIKE {like}")


def count_rows(engine: Engine, database: str, table: str) -> int:
    with engine.connect() as conn:
        sql = f"SELECT COUNT(*) FROM {qualified(database, table)}"
        return int(conn.execute(sa.text(sql)).scalar_one())


def is_empty(engine: Engine, database: str, table: str) -> bool:
    with engine.connect() as conn:
        sql = f"SELECT 1 FROM {qualified(database, table)} LIMIT 1"
        return conn.execute(sa.text(sql)).first() is None


def _old_name(table: str) -> str:
    return "__dbsync_old_" + hashlib.sha256(table.encode()).hexdigest()[:24]


def swap_into_place(
    engine: Engine, staging: str, target: str, table: str, target_exists: bool
) -> None:
    """Make the staged table the target table in one atomic RENAME; drop the old one.

    Readers see the old table until the instant of the rename, then the new one: never an
    empty or half-loaded table.
    """
    old = _old_name(table)
    drop_table(engine, staging, old)
    if target_exists:
        execute(
            engine,
            f"RENAME TABLE {qualified(target, table)} TO {qualified(staging, old)}, "
            f"{qualified(staging, table)} TO {qualified(target, table)}",
        )
        drop_table(engine, staging, old)
    else:
        execute(engine, f"RENAME TABLE {qualified(staging, table)} TO {qualified(target, table)}")


def delete_keys(
    engine: Engine, table: str, key: Sequence[str], keys: Sequence[Sequence[Any]], placeholder: str
) -> int:
    """Delete the rows with these primary keys in one short transaction; returns how many."""
    if not keys:
        return 0
    if len(key) == 1:
        where = f"{quote(key[0])} IN ({', '.join(placeholder for _ in keys)})"
    else:
        match = "(" + " AND ".join(f"{quote(k)} = {placeholder}" for k in key) + ")"
        where = " OR ".join(match for _ in keys)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"DELETE FROM {table} WHERE {where}", [v for row in keys for v in row])
        deleted = cursor.rowcount
        raw.commit()
        return int(deleted)
    finally:
        raw.close()


def merge_sql(schema: TableSchema, staging: str, target: str) -> str:
    """Upsert the staged rows by primary key: one statement, touching only the staged keys.

    The key columns are updated too: under a case-insensitive collation ``'Key-1'`` and
    ``'KEY-1'`` are the same key, and the target must take the source's exact spelling (an
    unchanged value is not written again).
    """
    names = [quote(c) for c in schema.column_names]
    columns = ", ".join(names)
    updates = [f"{n} = VALUES({n})" for n in names]
    return (
        f"INSERT INTO {qualified(target, schema.name)} ({columns}) "
        f"SELECT {columns} FROM {qualified(staging, schema.name)} "
        "ON DUPLICATE KEY UPDATE " + ", ".join(updates)
    )
