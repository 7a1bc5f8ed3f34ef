"""The target follows the source's definition: in place, by a rebuild, or not at all.

Policy only: the rules are :mod:`dbsync.sync.migration`'s, the statements the dialect's. Each
run compares the target with the source; a difference is followed in place (one ``ALTER
TABLE``) or makes the run a rebuild (the whole-copy path: staged, chunked and resumable for
big tables, swapped in atomically); under ``"on_schema_change": "fail"`` it stops the table
with one line instead. What was done and why lands in the result's ``schema_changes`` and in
the log. The target's definition as each sync leaves it is remembered (a fingerprint in the
status table), so a target changed by hand is named as such.
"""

from __future__ import annotations

import logging
from enum import Enum

from dbsync.backends import last_target_definition
from dbsync.config.errors import IncompatibleSchema, Outcome, classify, describe
from dbsync.config.result import SyncResult
from dbsync.config.tables import TableConfig
from dbsync.model import TableSchema
from dbsync.sync.migration import (
    Facts,
    Migration,
    Rules,
    facts_wanted,
    fingerprint,
    plan_migration,
    refusal,
)
from dbsync.sync.runtime import Runtime

log = logging.getLogger("dbsync.schema_sync")


class Followed(Enum):
    UNCHANGED = "unchanged"
    ALTERED = "altered"  # followed in place: the target's definition must be read again
    REBUILD = "rebuild"  # this run copies the table whole


def follow(
    runtime: Runtime,
    config: TableConfig,
    source: TableSchema,
    target: TableSchema,
    result: SyncResult,
) -> Followed:
    """Make the target follow the source before an incremental run, or say it cannot."""
    migration = compare(runtime, config, source, target)
    if not migration.needed:
        return Followed.UNCHANGED
    _refuse_if_asked(config, migration)
    if migration.rebuild:
        _report(result, migration.changes())
        return Followed.REBUILD
    return _alter_in_place(runtime, migration, result)


def _alter_in_place(runtime: Runtime, migration: Migration, result: SyncResult) -> Followed:
    """One ALTER TABLE; a rebuild instead when the target refuses it (not transiently)."""
    dialect, table = runtime.dialect, migration.table
    log.info("table %s: altering the target in place (%d step(s))", table, len(migration.clauses))
    try:
        plain = dialect.alter_table(
            runtime.engines.target, dialect.target_schema(), table, migration.clauses
        )
    except Exception as exc:
        if classify(exc) is not Outcome.FATAL:
            raise  # a metadata lock or a lost connection: the run is retried as it is
        failed = f"rebuilt (altering the target in place failed: {describe(exc)})"
        _report(result, migration.changes(done=failed))
        return Followed.REBUILD
    _report(result, migration.changes())
    if plain:
        _report(
            result,
            [
                f"deferred: unique index(es) {plain} added as plain ones: the target holds "
                "duplicate values in them until this run's merge; made unique next sync"
            ],
        )
    return Followed.ALTERED


def before_full_copy(
    runtime: Runtime,
    config: TableConfig,
    source: TableSchema,
    target: TableSchema,
    result: SyncResult,
) -> None:
    """A plain full-refresh run replaces the target from the source definition anyway: say
    what that changes, or refuse under ``"fail"``."""
    migration = compare(runtime, config, source, target, facts=False)
    if not migration.needed:
        return
    _refuse_if_asked(config, migration)
    _report(result, migration.changes(done="rebuilt by the full copy"))


def compare(
    runtime: Runtime,
    config: TableConfig,
    source: TableSchema,
    target: TableSchema,
    *,
    facts: bool = True,
) -> Migration:
    """Every difference between source and target, and what the target does about it."""
    dialect = runtime.dialect
    rules = Rules(
        dialect.widens,
        tuple(dialect.secondary_indexes(source, config.modifier)),
        dialect.alters_in_place,
    )
    migration = plan_migration(source, target, config.primary_key, rules)
    if not migration.needed:
        return migration  # the common case: no fact gathered, no status read
    known = _facts(runtime, source, target) if facts and rules.in_place else Facts()
    by_hand = _changed_by_hand(runtime, config.table, target)
    return plan_migration(source, target, config.primary_key, rules, known, target_changed=by_hand)


def _facts(runtime: Runtime, source: TableSchema, target: TableSchema) -> Facts:
    dialect, engines = runtime.dialect, runtime.engines
    nulls, values = facts_wanted(source, target, dialect.widens)
    if not nulls and not values:
        return Facts()
    return Facts(
        target_nulls=frozenset(
            dialect.columns_holding(
                engines.target, dialect.target_schema(), target.name, nulls, nulls=True
            )
        ),
        source_values=frozenset(
            dialect.columns_holding(
                engines.source, dialect.source_schema(), source.name, values, nulls=False
            )
        ),
    )


def _changed_by_hand(runtime: Runtime, table: str, target: TableSchema) -> bool:
    """Whether the target is not what the last sync left (unknown before the first record)."""
    left = last_target_definition(runtime.engines.target, runtime.settings.target.database, table)
    return left is not None and left != fingerprint(target)


def _refuse_if_asked(config: TableConfig, migration: Migration) -> None:
    if config.on_schema_change == "fail":
        raise IncompatibleSchema(refusal(migration))


def _report(result: SyncResult, lines: list[str]) -> None:
    for line in lines:
        log.info("table %s: schema %s", result.table, line)
    result.schema_changes.extend(lines)


def remember(result: SyncResult, target: TableSchema) -> None:
    """Note the definition this run leaves the target with (recorded with the status)."""
    result.target_definition = fingerprint(target)
