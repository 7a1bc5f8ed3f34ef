"""MySQL/MariaDB statements for schema migrations (:mod:`dbsync.sync.migration` decides,
this module only writes the SQL): one ``ALTER TABLE`` for the in-place steps, and the queries
for the facts a rule needs."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dbsync.backends.mysql.schema import column_definition, index_definition, qualified, quote
from dbsync.model import (
    AddColumn,
    AddIndex,
    Clause,
    DropColumn,
    DropIndex,
    ModifyColumn,
    TableCollation,
)


def _position(after: str | None) -> str:
    return f"AFTER {quote(after)}" if after else "FIRST"


def clause_sql(clause: Clause, unique: bool = True) -> str:
    """One clause of ALTER TABLE; ``unique=False`` adds unique indexes as plain ones."""
    match clause:
        case AddColumn(column, after):
            return f"ADD COLUMN {column_definition(column)} {_position(after)}"
        case ModifyColumn(column, after):
            return f"MODIFY COLUMN {column_definition(column)} {_position(after)}"
        case DropColumn(name):
            return f"DROP COLUMN {quote(name)}"
        case DropIndex(name):
            return f"DROP KEY {quote(name)}"
        case AddIndex(index):
            return "ADD " + index_definition(index, unique)
        case TableCollation(collation):
            return f"COLLATE {collation}"
    raise TypeError(f"not a migration clause: {clause!r}")


def alter_sql(database: str, table: str, clauses: Sequence[Clause], unique: bool = True) -> str:
    """ALTER TABLE applying ``clauses`` in order, in one statement."""
    body = ", ".join(clause_sql(c, unique) for c in clauses)
    return f"ALTER TABLE {qualified(database, table)} {body}"


def holding_sql(database: str, table: str, columns: Sequence[str], nulls: bool) -> str:
    """SELECT giving, per column, 1 if some row holds a NULL (``nulls``) or a value in it;
    each probe stops at the first such row."""
    test = "IS NULL" if nulls else "IS NOT NULL"
    name = qualified(database, table)
    probes = [f"EXISTS(SELECT 1 FROM {name} WHERE {quote(c)} {test} LIMIT 1)" for c in columns]
    return "SELECT " + ", ".join(probes)


def columns_holding(
    engine: Engine, database: str, table: str, columns: Sequence[str], nulls: bool
) -> set[str]:
    """The ``columns`` some row holds a NULL in (``nulls``) or a value in (the SQL is plain
    enough for both MySQL/MariaDB and the demo's SQLite)."""
    if not columns:
        return set()
    with engine.connect() as conn:
        found = conn.execute(sa.text(holding_sql(database, table, columns, nulls))).one()
    return {column for column, held in zip(columns, found, strict=True) if held}
