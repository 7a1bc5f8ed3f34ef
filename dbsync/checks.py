"""check-config: validate settings, tables.json and (when reachable) the source tables."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from dbsync.errors import ConfigError, ConfigProblem, DbsyncError, describe
from dbsync.schema import nullable_key_columns, read_table
from dbsync.settings import DEFAULT_TABLES_CONFIG, Settings, load_settings
from dbsync.tables import TableConfig, TablesFile, load_tables


def table_problems(engine: Engine, database: str, tables: TablesFile) -> list[ConfigProblem]:
    """Tables, key and cursor columns that tables.json names but the source lacks."""
    problems: list[ConfigProblem] = []
    with engine.connect() as conn:
        for table in tables.tables:
            path = f"$[{tables.positions.get(table.table, '?')}]"
            schema = read_table(conn, database, table.table)
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
            nullable = nullable_key_columns(schema, table.primary_key) if not missing else []
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
    return problems, settings, tables


def _tables_path_from_env() -> str:
    import os

    return os.environ.get("TABLES_CONFIG", DEFAULT_TABLES_CONFIG)


def _source_problems(settings: Settings, tables: TablesFile) -> list[ConfigProblem]:
    from dbsync.engines import create_engine

    engine = create_engine(settings.source, settings, target=False)
    try:
        return table_problems(engine, settings.source.database, tables)
    except DbsyncError as exc:
        return [ConfigProblem("SOURCE_DB", describe(exc))]
    except Exception as exc:  # noqa: BLE001 - reported as a problem line
        return [ConfigProblem("SOURCE_DB", f"cannot check tables in the source: {describe(exc)}")]
    finally:
        engine.dispose()
