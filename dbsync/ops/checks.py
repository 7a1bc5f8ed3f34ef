"""check-config: validate settings and tables.json, connect to both servers as a sync would,
and check the source tables and the privileges it can see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from dbsync.config.errors import ConfigError, ConfigProblem, DbsyncError, describe
from dbsync.config.settings import DEFAULT_TABLES_CONFIG, DatabaseSettings, Settings, load_settings
from dbsync.config.tables import TableConfig, TablesFile, load_tables
from dbsync.dialect import Dialect

if TYPE_CHECKING:
    from dbsync.backends import Engines

def table_problems(
    dialect: Dialect, engine: Engine, database: str, tables: TablesFile
) -> list[ConfigProblem]:
    """Tables, key and cursor columns that tables.json names but the source lacks."""
    problems: list[ConfigProblem] = []
    with engine.connect() as conn:
        for table in tables.tables:
            path = f"$[{tables.positions.get(table.table, '?')}]"
            schema = dialect.read_table(conn, database, table.table)
            if schema is None:
                problems.append(
                    ConfigProblem(
                        f"{path}.table",
                        f"table {table.table!r} not found in source database {database!r}",
                    )
                )
                continue
            missing = _column_problems(path, table, schema.column_names)
            problems += missing
            nullable = schema.nullable_columns(table.primary_key) if not missing else []
            if nullable:
                problems.append(
                    ConfigProblem(
                        f"{path}.primary_key",
                        f"column(s) {nullable} of {table.table!r} allow NULL; "
                        "a merge key must be NOT NULL",
                    )
                )
            elif not missing and not _is_unique_key(table, schema.primary_key, schema.unique_keys):
                problems.append(
                    ConfigProblem(
                        f"{path}.primary_key",
                        f"{list(table.primary_key)} is not the primary key "
                        f"{list(schema.primary_key)} or a unique key of {table.table!r}",
                    )
                )
    return problems


def _column_problems(
    path: str, table: TableConfig, columns: tuple[str, ...]
) -> list[ConfigProblem]:
    problems = [
        ConfigProblem(
            f"{path}.primary_key", f"column {c!r} not found in source table {table.table!r}"
        )
        for c in table.primary_key
        if c not in columns
    ]
    if table.modifier and table.modifier not in columns:
        problems.append(
            ConfigProblem(
                f"{path}.modifier",
                f"column {table.modifier!r} not found in source table {table.table!r}",
            )
        )
    return problems


def _is_unique_key(
    table: TableConfig, primary: tuple[str, ...], unique: tuple[tuple[str, ...], ...]
) -> bool:
    wanted = set(table.primary_key)
    if not wanted:
        return True  # a full-refresh table without a key: copied and verified whole
    return wanted == set(primary) or any(wanted == set(u) for u in unique)


def check_config() -> tuple[list[ConfigProblem], Settings | None, TablesFile | None]:
    """Every problem with the environment, tables.json and the source, at once."""
    problems: list[ConfigProblem] = []
    settings: Settings | None = None
    tables: TablesFile | None = None
    try:
        settings = load_settings()
    except ConfigError as exc:
        problems += exc.problems
    path = settings.tables_config if settings else _tables_path_from_env()
    try:
        tables = load_tables(path)
        problems += tables.problems
    except ConfigError as exc:
        problems += exc.problems
    if settings is not None and tables is not None:
        problems += _source_problems(settings, tables)
    if settings is not None and settings.target.is_mysql:
        problems += _target_problems(settings)
    return problems, settings, tables


def cursor_warnings(settings: Settings, tables: TablesFile) -> list[str]:
    """One line when the source cannot give incremental tables a safe point (see
    :mod:`dbsync.cursor_guard`), with the grant that fixes it; none otherwise."""
    from dbsync.backends import create_engine, dialect_class
    from dbsync.config.errors import SafePointUnavailable

    if not any(t.incremental for t in tables.tables):
        return []
    engine = create_engine(settings.source, settings, target=False)
    try:
        dialect_class(settings.source.url.get_backend_name())(settings).oldest_activity(engine)
    except SafePointUnavailable as exc:
        return [
            f"SOURCE_DB: {exc}; incremental tables fall back to re-reading "
            f"{settings.cursor_fallback_lag_seconds:g}s before their newest cursor value "
            "(CURSOR_FALLBACK_LAG_SECONDS): a transaction committing later than that is missed"
        ]
    except Exception as exc:  # noqa: BLE001 - the connection problem is reported elsewhere
        return [f"SOURCE_DB: cannot read the source's open transactions: {describe(exc)}"]
    finally:
        engine.dispose()
    return []


def _tables_path_from_env() -> str:
    import os

    return os.environ.get("TABLES_CONFIG", DEFAULT_TABLES_CONFIG)


def _source_problems(settings: Settings, tables: TablesFile) -> list[ConfigProblem]:
    from dbsync.backends import create_engine, dialect_class

    engine = create_engine(settings.source, settings, target=False)
    dialect = dialect_class(engine.dialect.name)(settings)  # the source's: it reads there
    try:
        unreachable = unreachable_side("SOURCE_DB", engine, settings.source)
        if unreachable:
            return unreachable
        problems = table_problems(dialect, engine, settings.source.database, tables)
        if not settings.source.is_mysql:
            return problems
        absent = {p.path.removesuffix(".table") for p in problems if p.path.endswith(".table")}
        present = [t.table for t in tables.tables if _path(tables, t) not in absent]
        return problems + dialect.select_problems(engine, settings.source.database, present)
    except DbsyncError as exc:
        return [ConfigProblem("SOURCE_DB", describe(exc))]
    except Exception as exc:  # noqa: BLE001 - reported as a problem line
        return [ConfigProblem("SOURCE_DB", f"cannot check tables in the source: {describe(exc)}")]
    finally:
        engine.dispose()


def _path(tables: TablesFile, table: TableConfig) -> str:
    return f"$[{tables.positions.get(table.table, '?')}]"


def connection_problem(path: str, db: DatabaseSettings, exc: BaseException) -> ConfigProblem:
    """One line saying which server refused and why (the password masked)."""
    from dbsync.ops.logs import redact

    return ConfigProblem(path, redact(f"cannot connect to {db.safe_url()}: {describe(exc)}"))


def _target_problems(settings: Settings) -> list[ConfigProblem]:
    """Connect to the target server; its databases exist (or may be created) and the user
    holds the privileges a sync needs on them."""
    from dbsync.backends import dialect_for, server_engine

    engine = server_engine(settings.target, settings)
    try:
        with engine.connect() as conn:
            databases = (settings.target.database, settings.staging_database)
            return dialect_for(settings).database_problems(conn, databases)
    except Exception as exc:  # noqa: BLE001 - reported as a problem line
        return [connection_problem("TARGET_DB", settings.target, exc)]
    finally:
        engine.dispose()


def unreachable(engines: Engines, settings: Settings) -> list[ConfigProblem]:
    """One problem per side whose server cannot be reached with the configured settings."""
    return unreachable_side("SOURCE_DB", engines.source, settings.source) + unreachable_side(
        "TARGET_DB", engines.target, settings.target
    )


def unreachable_side(path: str, engine: Engine, db: DatabaseSettings) -> list[ConfigProblem]:
    """The problem connecting ``engine`` to its server, if any."""
    try:
        with engine.connect():
            return []
    except Exception as exc:  # noqa: BLE001 - reported as a problem line
        return [connection_problem(path, db, exc)]
