"""Schema migrations: what the target does about each difference from the source.

Pure decision rules: no SQL, no database. The caller reads both definitions, gathers the
few facts a rule needs (:func:`facts_wanted`: target columns holding NULLs, source columns
holding values), and gets a :class:`Migration`: every difference, and for each whether the
target **follows in place** (an ``ALTER`` that keeps every row exactly and costs no copy
from the source) or is **rebuilt** (a full copy from the source, staged and swapped in
atomically, chunked and resumable for big tables) because in place would not be exact or
could fail. ``on_schema_change: "fail"`` turns any difference into a refusal instead
(:func:`refusal`).

The database's own knowledge comes in as arguments: which type changes keep every value
(``widens``, :meth:`dbsync.dialect.Dialect.widens`) and which secondary indexes the target
should have (:meth:`dbsync.dialect.Dialect.secondary_indexes`). The in-place steps are
:mod:`dbsync.model`'s clauses, which the dialect turns into one ``ALTER TABLE``.

In place: a widened type, a NULL-able column added that holds no value in the source yet, a
dropped column, NOT NULL loosened, NOT NULL tightened when the target holds no NULL in the
column, a collation changed (not on a key column), a column converted to utf8mb4, column
order, secondary and unique indexes, the table's default collation.

Rebuilt: any other type change (narrowing, INT to VARCHAR, signedness, ENUM/SET members
reordered or inserted mid-list, DATETIME to TIMESTAMP), an added column the source already
holds values in, NOT NULL tightened while the target holds NULLs (a backfill the cursor did
not see), another character set change, a collation change on a key column, and a primary
key change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from dbsync.model import (
    AddColumn,
    AddIndex,
    Clause,
    Column,
    DropColumn,
    DropIndex,
    Index,
    ModifyColumn,
    TableCollation,
    TableSchema,
)

CONVERTS_LOSSLESSLY_TO = "utf8mb4"  # holds every character of every character set

Widens = Callable[[str, str], bool]  # (new, old) column types: every old value fits new


@dataclass(frozen=True)
class Rules:
    """What the database knows that the rules need (from the dialect)."""

    widens: Widens  # which type changes keep every value
    indexes: tuple[Index, ...] = ()  # the secondary indexes the target should have
    in_place: bool = True  # False: the database cannot alter a table so; always rebuild


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One way the target differs from the source, and whether it forces a rebuild."""

    what: str
    rebuild: bool = False
    why: str = ""  # why in place would not do (rebuilds only)


@dataclass(frozen=True)
class Facts:
    """What the data says, where a rule depends on it (see :func:`facts_wanted`)."""

    target_nulls: frozenset[str] = frozenset()  # target columns holding a NULL
    source_values: frozenset[str] = frozenset()  # source columns holding a non-NULL value


@dataclass
class Migration:
    """Every difference between source and target, and the in-place steps for them."""

    table: str
    differences: list[Difference] = field(default_factory=list)
    clauses: list[Clause] = field(default_factory=list)
    target_changed: bool = False  # the target is not what the last sync left

    @property
    def needed(self) -> bool:
        return bool(self.differences)

    @property
    def rebuild(self) -> bool:
        return any(d.rebuild for d in self.differences)

    @property
    def origin(self) -> str:
        if self.target_changed:
            return "the TARGET table was changed since the last sync (not by dbsync)"
        return "the source changed"

    def changes(self, done: str = "") -> list[str]:
        """One line per difference, saying what the target did about it (``done``, else
        followed in place or rebuilt) and why."""
        if not done:
            done = "rebuilt" if self.rebuild else "followed in place"
            if self.target_changed:
                done = "repaired by a rebuild" if self.rebuild else "repaired in place"
        lines = []
        for d in self.differences:
            why = f" ({d.why})" if d.rebuild and d.why else ""
            lines.append(f"{done}: {self.origin}: {d.what}{why}")
        return lines

    def summary(self) -> str:
        return "; ".join(d.what for d in self.differences)


def refusal(migration: Migration) -> str:
    """The one line a table with ``on_schema_change: "fail"`` stops with."""
    table = migration.table
    return (
        f"table {table!r}: {migration.origin}: {migration.summary()}; on_schema_change is "
        f'"fail": run `dbsync sync {table} --full-refresh` to rebuild the target table from '
        'the source definition (or set "on_schema_change": "follow")'
    )


def fingerprint(schema: TableSchema) -> str:
    """A digest of everything dbsync mirrors of a table's definition: what the last sync
    left in the target, to tell a target changed by hand from a source that changed."""
    indexes = sorted((i.name, i.columns, i.unique) for i in schema.indexes)
    text = repr((schema.columns, schema.primary_key, indexes, schema.collation))
    return hashlib.sha256(text.encode()).hexdigest()


# --- the rules ----------------------------------------------------------------------------


def expected_key(source: TableSchema, key: tuple[str, ...]) -> tuple[str, ...]:
    """The target's primary key: the source's when the merge key is it (or none is set),
    else the merge key (a unique key of the source)."""
    if not key or set(key) == set(source.primary_key):
        return source.primary_key
    return key


def facts_wanted(
    source: TableSchema, target: TableSchema, widens: Widens
) -> tuple[list[str], list[str]]:
    """(target columns to look for NULLs in, source columns to look for values in): only
    where a rule depends on the data."""
    nulls, values = [], []
    for column in source.columns:
        current = target.column(column.name)
        if current is None:
            if column.nullable:
                values.append(column.name)
        elif current.nullable and not column.nullable and _type_follows(column, current, widens):
            nulls.append(column.name)
    return nulls, values


def plan_migration(
    source: TableSchema,
    target: TableSchema,
    key: tuple[str, ...],
    rules: Rules,
    facts: Facts = Facts(),
    *,
    target_changed: bool = False,
) -> Migration:
    """Compare ``target`` with ``source`` and decide, difference by difference.

    Without ``rules.in_place`` (a database that cannot alter tables so: SQLite, the demo's,
    which keeps no secondary indexes either) any difference is a rebuild.
    """
    migration = Migration(source.name, target_changed=target_changed)
    differences = migration.differences
    key_columns = set(expected_key(source, key)) | {c for u in source.unique_keys for c in u}
    wanted_key = expected_key(source, key)
    if target.primary_key != wanted_key:
        differences.append(
            Difference(
                f"primary key changed from {list(target.primary_key)} to {list(wanted_key)}",
                rebuild=True,
                why="rows are keyed differently",
            )
        )
    for column in target.columns:
        if source.column(column.name) is None:
            where = "exists only in the target" if target_changed else "was dropped or renamed"
            differences.append(Difference(f"column {column.name!r} {where}"))
    for column in source.columns:
        current = target.column(column.name)
        if current is None:
            differences.append(_added(column, facts, target_changed))
        elif current != column:
            differences.append(_changed(column, current, facts, key_columns, rules.widens))
    order = _order_changed(source, target)
    if order:
        differences.append(Difference("column order changed"))
    wanted = {i.name: i for i in rules.indexes}
    if rules.in_place:
        differences += _index_differences(wanted, target, target_changed)
    if source.collation and target.collation and source.collation != target.collation:
        differences.append(
            Difference(
                f"table default collation changed from {target.collation} to {source.collation}"
            )
        )
    if not rules.in_place and differences:
        differences[:] = [
            Difference(d.what, True, d.why or "this database is not altered in place")
            for d in differences
        ]
    if not migration.rebuild:
        migration.clauses = _clauses(source, target, wanted, order)
    return migration


def _added(column: Column, facts: Facts, target_changed: bool) -> Difference:
    where = "is missing in the target" if target_changed else "was added"
    what = f"column {column.name!r} {where}"
    if not column.nullable:
        return Difference(what, rebuild=True, why="NOT NULL: existing rows hold values for it")
    if column.name in facts.source_values:
        return Difference(what, rebuild=True, why="existing source rows hold values for it")
    return Difference(what)


def _type_follows(new: Column, old: Column, widens: Widens) -> bool:
    return new.column_type == old.column_type or widens(new.column_type, old.column_type)


def _changed(
    column: Column, current: Column, facts: Facts, key_columns: set[str], widens: Widens
) -> Difference:
    """One column whose definition differs: every aspect named, rebuilt if any needs it."""
    name = repr(column.name)
    aspects: list[str] = []
    reasons: list[str] = []
    if current.column_type != column.column_type:
        widened = widens(column.column_type, current.column_type)
        verb = "widened" if widened else "changed"
        aspects.append(f"column {name} {verb} from {current.column_type} to {column.column_type}")
        if not widened:
            reasons.append("in place would not keep every value exactly")
    if None in (current.charset, column.charset):
        pass  # a type change to or from a type without characters: said above
    elif current.charset != column.charset:
        aspects.append(
            f"column {name} character set changed from {current.charset} to {column.charset}"
        )
        if column.charset != CONVERTS_LOSSLESSLY_TO or current.charset == "binary":
            reasons.append("converting in place could lose or alter characters")
    elif current.collation != column.collation:
        aspects.append(
            f"column {name} collation changed from {current.collation} to {column.collation}"
        )
        if column.name in key_columns:
            reasons.append("a key column's values may collide under the new collation")
    if current.nullable != column.nullable:
        became = "NULL" if column.nullable else "NOT NULL"
        aspects.append(f"column {name} became {became}")
        if not column.nullable and column.name in facts.target_nulls:
            reasons.append("the target still holds NULLs the source has backfilled")
    return Difference("; ".join(aspects), rebuild=bool(reasons), why="; ".join(reasons))


def _order_changed(source: TableSchema, target: TableSchema) -> bool:
    shared = set(source.column_names) & set(target.column_names)
    return [n for n in source.column_names if n in shared] != [
        n for n in target.column_names if n in shared
    ]


def _index_differences(
    wanted: dict[str, Index], target: TableSchema, target_changed: bool
) -> list[Difference]:
    present = {i.name: i for i in target.indexes}
    added, dropped = "added", "dropped"
    if target_changed:
        added, dropped = "is missing in the target", "exists only in the target"
    found = []
    for name in sorted(set(wanted) | set(present)):
        index = wanted.get(name) or present[name]
        kind = "unique index" if index.unique else "index"
        if name not in present:
            found.append(Difference(f"{kind} {name!r} ({', '.join(index.columns)}) {added}"))
        elif name not in wanted:
            found.append(Difference(f"{kind} {name!r} {dropped}"))
        elif wanted[name] != present[name]:
            found.append(Difference(f"{kind} {name!r} changed"))
    return found


def _clauses(
    source: TableSchema, target: TableSchema, wanted: dict[str, Index], order_changed: bool
) -> list[Clause]:
    """The in-place steps, in an order MySQL accepts in one ALTER TABLE: indexes and columns
    dropped first, then columns added or modified in source order (each placed after its
    predecessor), then indexes added, then the table's collation."""
    present = {i.name: i for i in target.indexes}
    stale = [n for n in present if wanted.get(n) != present[n]]
    clauses: list[Clause] = [DropIndex(n) for n in stale]
    clauses += [DropColumn(c.name) for c in target.columns if source.column(c.name) is None]
    previous: str | None = None
    for column in source.columns:
        current = target.column(column.name)
        if current is None:
            clauses.append(AddColumn(column, previous))
        elif current != column or order_changed:
            clauses.append(ModifyColumn(column, previous))
        previous = column.name
    clauses += [AddIndex(i) for n, i in wanted.items() if present.get(n) != i]
    if source.collation and source.collation != target.collation:
        clauses.append(TableCollation(source.collation))
    return clauses
