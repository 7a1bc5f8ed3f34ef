"""tables.json: the list of tables to sync, validated with every problem reported at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dbsync.config.errors import ConfigError, ConfigProblem
from dbsync.config.names import UNSTORABLE_NAME, storable_name

_OMITTED: tuple[str, ...] = ()  # JSON cannot spell a tuple: this default means "no key given"


class TableConfig(BaseModel):
    """One entry of tables.json.

    ``primary_key`` may be omitted for a full-refresh table (no ``modifier``): such a table
    is copied and verified whole, and the target gets the source's own key, if any.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    table: str = Field(min_length=1, max_length=64)
    # before primary_key: whether a key is required depends on it
    modifier: str | None = Field(None, min_length=1, max_length=64)
    primary_key: tuple[str, ...] = Field(_OMITTED, validate_default=True)
    lag_seconds: float | None = Field(None, ge=0)
    interval: int | None = Field(None, ge=1)
    chunk_rows: int | None = Field(None, ge=1)
    # rows deleted in the source: "propagate" (incremental tables) or "ignore" (keep them)
    deletes: Literal["propagate", "ignore"] = "propagate"
    max_delete_fraction: float = Field(0.5, ge=0, le=1)  # safety valve (dbsync.compare.deletes)
    delete_check_interval: float = Field(0, ge=0)  # seconds between key comparisons; 0: each run
    # seconds between row-content comparisons of an incremental table (dbsync.reconcile)
    reconcile_interval: float = Field(86_400, ge=0)
    # a table without modifier: "diff" syncs its differences, "replace" copies it whole
    strategy: Literal["diff", "replace"] = "diff"
    # the source's definition changed: "follow" (in place or by a rebuild) or "fail" (refuse)
    on_schema_change: Literal["follow", "fail"] = "follow"

    @field_validator("table", "modifier")
    @classmethod
    def _usable_name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        if value is not None and not storable_name(value):
            raise ValueError(UNSTORABLE_NAME)
        return value

    @field_validator("primary_key", mode="before")
    @classmethod
    def _key_columns(cls, value: Any, info: ValidationInfo) -> tuple[str, ...]:
        if isinstance(value, tuple) and not value:
            if info.data.get("modifier") is not None:
                raise ValueError(
                    "is required for an incremental table (one with a modifier); "
                    "without modifier the table is copied whole"
                )
            return _OMITTED
        columns = [value] if isinstance(value, str) else value
        if not isinstance(columns, list):
            raise ValueError("must be a column name or a non-empty list of column names")
        if not columns:
            raise ValueError("must not be an empty list")
        if not all(isinstance(c, str) and c.strip() for c in columns):
            raise ValueError("every key column must be a non-blank string")
        if len(set(columns)) != len(columns):
            raise ValueError("lists a column twice")
        if not all(storable_name(c) for c in columns):
            raise ValueError(UNSTORABLE_NAME)
        return tuple(columns)

    @property
    def incremental(self) -> bool:
        return self.modifier is not None

    @property
    def propagates_deletes(self) -> bool:
        """Incremental syncs compare keys; full refreshes mirror deletes by their swap."""
        return self.incremental and self.deletes == "propagate"

    @property
    def mode(self) -> str:
        return "incremental" if self.incremental else "full_refresh"


class TablesFile(BaseModel):
    """The tables that validated, and a problem line for each entry that did not."""

    tables: list[TableConfig]
    problems: list[ConfigProblem]
    positions: dict[str, int] = {}

    def get(self, name: str) -> TableConfig | None:
        return next((t for t in self.tables if t.table == name), None)


def _path(index: int, loc: tuple[Any, ...]) -> str:
    path = f"$[{index}]"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "is required"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_tables(raw: str) -> TablesFile:
    """Validate tables.json text; invalid JSON or a non-array is a ConfigError."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = ConfigProblem(
            "$", f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        )
        raise ConfigError([problem]) from None
    if not isinstance(data, list):
        raise ConfigError([ConfigProblem("$", "must be a JSON array of table objects")])
    tables: list[TableConfig] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(ConfigProblem(f"$[{index}]", "must be an object"))
            continue
        try:
            table = TableConfig.model_validate(item)
        except ValidationError as exc:
            problems.extend(
                ConfigProblem(_path(index, tuple(e["loc"])), _message(e)) for e in exc.errors()
            )
            continue
        if table.table in seen:
            problems.append(
                ConfigProblem(
                    f"$[{index}].table", f"duplicate of $[{seen[table.table]}] ({table.table})"
                )
            )
            continue
        seen[table.table] = index
        tables.append(table)
    return TablesFile(tables=tables, problems=problems, positions=seen)


def load_tables(path: str | Path) -> TablesFile:
    """Read and validate a tables.json file."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), f"cannot read: {exc.strerror}")]) from None
    return parse_tables(raw)
