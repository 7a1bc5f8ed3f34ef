"""Schema mirror for MySQL/MariaDB: read a table's definition and make the target follow it.

The target gets the source's column names and order, exact ``COLUMN_TYPE`` (ENUM/SET values,
UNSIGNED, DECIMAL(p,s), lengths, fractional seconds, TINYINT(1), YEAR, BLOB/TEXT sizes, JSON,
GEOMETRY), nullability, character set and collation, primary key, secondary and unique
indexes and the table's default collation. Foreign keys, triggers, defaults, comments,
AUTO_INCREMENT and the engine are not copied: the target is an InnoDB replica that only dbsync
writes. What the target does when the definitions differ later is decided by
:mod:`dbsync.sync.migration` and applied by :mod:`dbsync.backends.mysql.migration`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dbsync.config.errors import IncompatibleSchema, SourceTableMissing
from dbsync.config.names import storable_name
from dbsync.model import Column, Index, TableSchema


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def qualified(database: str, table: str) -> str:
    return f"{quote(database)}.{quote(table)}"


def column_definition(column: Column) -> str:
    """The column as a CREATE/ALTER TABLE clause defines it."""
    parts = [quote(column.name), column.column_type]
    if column.charset and column.collation and column.charset != "binary":
        parts.append(f"CHARACTER SET {column.charset} COLLATE {column.collation}")
    parts.append("NULL" if column.nullable else "NOT NULL")
    return " ".join(parts)


def index_definition(index: Index, unique: bool = True) -> str:
    """``[UNIQUE] KEY name (columns)``; ``unique=False`` gives a plain KEY whatever the index
    is (a staging table loaded from several snapshots, see :meth:`MySQLDialect.index_staging`)."""
    kind = "UNIQUE KEY" if index.unique and unique else "KEY"
    return f"{kind} {quote(index.name)} ({', '.join(index.columns)})"


_COLUMNS_SQL = sa.text(
    "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, "
    "COLLATION_NAME FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = :db AND TABLE_NAME = :t ORDER BY ORDINAL_POSITION"
)
_INDEXES_SQL = sa.text(
    "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE "
    "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = :db AND TABLE_NAME = :t "
    "ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX"
)
_TABLE_SQL = sa.text(
    "SELECT TABLE_COLLATION, TABLE_TYPE FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = :db AND TABLE_NAME = :t"
)


def read_table(conn: Connection, database: str, table: str) -> TableSchema | None:
    """The table's definition as information_schema shows it, or None if it does not exist."""
    if not storable_name(table):
        return None
    params = {"db": database, "t": table}
    info = conn.execute(_TABLE_SQL, params).first()
    if info is None:
        return None
    columns = read_columns(conn, database, table)
    keys: dict[str, list[tuple[str, str]]] = {}
    unique: dict[str, bool] = {}
    kinds: dict[str, str] = {}
    for name, non_unique, column, sub_part, index_type in conn.execute(_INDEXES_SQL, params):
        rendered = quote(column) + (f"({sub_part})" if sub_part else "")
        keys.setdefault(name, []).append((column, rendered))
        unique[name] = not int(non_unique)
        kinds[name] = index_type
    primary = keys.pop("PRIMARY", [])
    return TableSchema(
        name=table,
        columns=columns,
        primary_key=tuple(c for c, _ in primary),
        rendered_primary_key=tuple(r for _, r in primary),
        collation=info[0],
        unique_keys=tuple(tuple(c for c, _ in cols) for n, cols in keys.items() if unique[n]),
        indexes=tuple(
            Index(name, tuple(r for _, r in cols), unique[name])
            for name, cols in keys.items()
            if kinds[name] == "BTREE"
        ),
    )


def read_columns(conn: Connection, database: str, table: str) -> tuple[Column, ...]:
    """The table's columns in order (none: no such table)."""
    return tuple(
        Column(
            name=r[0],
            column_type=r[1],
            data_type=r[2].lower(),
            nullable=r[3] == "YES",
            charset=r[4],
            collation=r[5],
        )
        for r in conn.execute(_COLUMNS_SQL, {"db": database, "t": table})
    )


def require_source_table(
    conn: Connection,
    database: str,
    table: str,
    key: tuple[str, ...],
    modifier: str | None,
    read: Callable[[Connection, str, str], TableSchema | None] = read_table,
) -> TableSchema:
    """Read the source table and check that the configured key and cursor fit it."""
    schema = read(conn, database, table)
    if schema is None:
        raise SourceTableMissing(f"table {table!r} does not exist in source database {database!r}")
    missing = [c for c in (*key, *([modifier] if modifier else [])) if schema.column(c) is None]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise SourceTableMissing(f"table {table!r} has no column {names} in the source")
    if key and set(key) != set(schema.primary_key) and set(key) not in map(set, schema.unique_keys):
        raise IncompatibleSchema(key_mismatch(table, key, schema.primary_key))
    nullable = nullable_key_columns(schema, key)
    if nullable:
        raise IncompatibleSchema(
            f"primary_key {list(key)} of table {table!r}: column(s) {nullable} allow NULL, "
            "and rows with a NULL key cannot be merged by key; use a NOT NULL unique key"
        )
    return schema


def key_mismatch(table: str, key: tuple[str, ...], source_key: tuple[str, ...]) -> str:
    """One line for a tables.json key the source no longer has as primary or unique key."""
    wanted = "[" + ", ".join(f'"{c}"' for c in source_key) + "]"
    return (
        f"table {table!r}: the source's primary key is {list(source_key)} but tables.json "
        f'(the entry "table": "{table}") names primary_key {list(key)}, which is neither the '
        f"source's primary key nor a unique key, so rows could not be merged safely; update "
        f'that entry to "primary_key": {wanted} (the target was left as it was)'
    )


def nullable_key_columns(schema: TableSchema, key: tuple[str, ...]) -> list[str]:
    return schema.nullable_columns(key)


def create_table_sql(
    source: TableSchema,
    database: str,
    name: str,
    key: tuple[str, ...],
    cursor: str | None,
    secondary_indexes: bool = True,
    unique_indexes: bool = True,
) -> str:
    """CREATE TABLE for a target table that mirrors ``source`` (InnoDB, for atomic merges).

    The primary key is ``key`` (the merge key); without one (a keyless full-refresh table),
    the source's own primary key if it has one, else none: no key is invented.
    Without ``secondary_indexes`` only the primary key is created: a bulk load followed by
    ``add_indexes_sql`` builds the other indexes by sorting, instead of row by row. Without
    ``unique_indexes`` unique secondary indexes are created as plain ones (a staging table
    loaded from several snapshots may hold a value twice until the copy is complete).
    """
    lines = [column_definition(c) for c in source.columns]
    if not key or set(key) == set(source.primary_key):
        pk = list(source.rendered_primary_key)
    else:
        pk = [quote(c) for c in key]
    if pk:
        lines.append("PRIMARY KEY (" + ", ".join(pk) + ")")
    if secondary_indexes:
        lines += [index_definition(i, unique_indexes) for i in target_indexes(source, cursor)]
    collation = f" COLLATE={source.collation}" if source.collation else ""
    body = ",\n  ".join(lines)
    return f"CREATE TABLE {qualified(database, name)} (\n  {body}\n) ENGINE=InnoDB{collation}"


def add_indexes_sql(
    source: TableSchema,
    database: str,
    name: str,
    cursor: str | None,
    present: Sequence[Index] = (),
    unique: bool = True,
) -> str | None:
    """ALTER TABLE giving table ``name`` the secondary indexes ``create_table_sql`` would have
    created: those missing from ``present`` are added, a plain one that should be unique is
    made unique (without ``unique``, unique ones are added as plain ones and left so)."""
    have = {i.name: i for i in present}
    clauses: list[str] = []
    for index in target_indexes(source, cursor):
        current = have.get(index.name)
        if current is not None and (current.unique or not unique or not index.unique):
            continue
        if current is not None:
            clauses.append(f"DROP KEY {quote(index.name)}")
        clauses.append("ADD " + index_definition(index, unique))
    if not clauses:
        return None
    return f"ALTER TABLE {qualified(database, name)} " + ", ".join(clauses)


def target_indexes(source: TableSchema, cursor: str | None) -> list[Index]:
    """The target's secondary indexes: the source's, plus one on the cursor column unless an
    index already starts with it."""
    indexes = list(source.indexes)
    if cursor and not any(i.columns[0].startswith(quote(cursor)) for i in indexes):
        indexes.append(Index("dbsync_cursor", (quote(cursor),)))
    return indexes
