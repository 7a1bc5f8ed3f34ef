"""Typed settings from the environment (pydantic-settings), built by entry points only."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from dbsync.config.errors import ConfigError, ConfigProblem

# connections one sync holds on the target at once (see Settings._require_pool_room)
MIN_POOL_CONNECTIONS = 4
DEFAULT_TABLES_CONFIG = "./tables.json"
DEFAULT_HEALTH_PORT = 8089

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

SslMode = Literal["disabled", "preferred", "required", "verify_ca", "verify_identity"]


@dataclass(frozen=True)
class DatabaseSettings:
    """Where one side (source or target) lives and how to reach it."""

    role: str
    url: URL
    ssl_ca: str | None = None
    ssl_cert: str | None = None
    ssl_key: str | None = None
    ssl_mode: SslMode = "preferred"

    @property
    def database(self) -> str:
        return self.url.database or ""

    @property
    def is_mysql(self) -> bool:
        return self.url.get_backend_name() in {"mysql", "mariadb"}

    def safe_url(self) -> str:
        """The URL with the password masked: the only form that may be printed."""
        return self.url.render_as_string(hide_password=True)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.ssl_mode == "disabled" or not (
            self.ssl_ca or self.ssl_cert or self.ssl_mode != "preferred"
        ):
            return None
        context = ssl.create_default_context(cafile=self.ssl_ca)
        if self.ssl_cert:
            context.load_cert_chain(self.ssl_cert, self.ssl_key)
        context.check_hostname = self.ssl_mode == "verify_identity"
        if self.ssl_mode in ("required", "preferred") and not self.ssl_ca:
            context.verify_mode = ssl.CERT_NONE
        return context


class Settings(BaseSettings):
    """Every setting dbsync reads from the environment (or a .env file)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    source_db_url: SecretStr | None = None
    source_db_host: str = "127.0.0.1"
    source_db_port: int = Field(3306, ge=1, le=65535)
    source_db_name: str | None = None
    source_db_user: str = "root"
    source_db_pass: SecretStr = SecretStr("")
    source_db_ssl_ca: str | None = None
    source_db_ssl_cert: str | None = None
    source_db_ssl_key: str | None = None
    source_db_ssl_mode: SslMode = "preferred"

    target_db_url: SecretStr | None = None
    target_db_host: str = "127.0.0.1"
    target_db_port: int = Field(3306, ge=1, le=65535)
    target_db_name: str | None = None
    target_db_user: str = "root"
    target_db_pass: SecretStr = SecretStr("")
    target_db_ssl_ca: str | None = None
    target_db_ssl_cert: str | None = None
    target_db_ssl_key: str | None = None
    target_db_ssl_mode: SslMode = "preferred"
    # dlt's default staging dataset name is "<dataset>_staging"; override when the target
    # user may not create databases and an admin pre-created one with another name.
    staging_db_name: str | None = None

    pool_size: int = Field(20, ge=1)
    max_overflow: int = Field(30, ge=0)
    pool_timeout: float = Field(60, gt=0)
    pool_recycle: int = Field(3600, ge=-1)
    pool_pre_ping: bool = True
    db_connect_timeout: float = Field(
        10, gt=0, description="seconds to open a database connection (TCP connect)"
    )
    db_read_timeout: float = Field(
        3600,
        gt=0,
        description="seconds dbsync waits for one reply of a database server; must exceed "
        "the longest single statement: a LOAD DATA file, an index build on the largest staged "
        "table, a merge, a COUNT(*)",
    )

    interval: int = Field(300, ge=1, description="seconds between scheduled syncs of a table")
    fetch_limit: int = Field(50_000, ge=1, description="rows per extraction chunk")
    default_lag_seconds: float = Field(
        0, ge=0, description="re-read window for late commits when a table sets none"
    )
    cursor_fallback_lag_seconds: float = Field(
        300,
        ge=0,
        description="re-read window for late commits when the source cannot tell its oldest "
        "open transaction (no PROCESS privilege): see README, Incremental semantics",
    )
    cursor_time_zone: str | None = Field(
        None,
        description="time zone writers stamp DATETIME/DATE cursors in (default: the source "
        "server's global time_zone)",
    )
    tables_config: str = DEFAULT_TABLES_CONFIG
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    health_port: int = Field(DEFAULT_HEALTH_PORT, ge=1, le=65535)
    lock_heartbeat_seconds: float = Field(20, gt=0)
    lock_stale_seconds: int = Field(
        120, ge=10, description="a dead lock holder is evicted after at most this long"
    )
    retry_max: int = Field(6, ge=0)
    retry_backoff_base: float = Field(2, gt=0)
    retry_backoff_max: float = Field(300, gt=0)
    work_dir: str | None = Field(None, description="where dlt keeps load packages (temp)")
    chunk_rows: int = Field(
        250_000, ge=1, description="full copies of larger tables go in key ranges of this size"
    )
    chunk_workers: int | None = Field(
        None, ge=1, description="participants in one chunked copy (default: cores, at most 4)"
    )
    chunk_lease_seconds: float = Field(
        30, ge=1, description="a chunk whose holder stops renewing it is claimable after this"
    )
    copy_resume_seconds: int = Field(
        6 * 3600, ge=60, description="an unfinished chunked copy older than this is discarded"
    )
    target_lock_wait_timeout: int = Field(
        5, ge=1, description="seconds a target statement waits for a metadata lock"
    )
    source_max_concurrent_reads: int = Field(
        4, ge=0, description="fleet-wide cap on concurrent reads of the source server (0: none)"
    )
    sync_batch_tables: int = Field(
        16,
        ge=1,
        description="tables one `dbsync sync` process syncs side by side, their small reads "
        "staged by one dlt run (1: one table after another)",
    )
    source_read_wait_seconds: float = Field(
        60, gt=0, description="a read waits this long for a slot, then its sync is retried"
    )

    @model_validator(mode="after")
    def _require_databases(self) -> Settings:
        missing = [
            f"{role.upper()}_DB_NAME (or {role.upper()}_DB_URL) must be set"
            for role in ("source", "target")
            if getattr(self, f"{role}_db_url") is None and not getattr(self, f"{role}_db_name")
        ]
        if missing:
            raise ValueError("; ".join(missing))
        return self

    @model_validator(mode="after")
    def _require_pool_room(self) -> Settings:
        if self.pool_size + self.max_overflow < MIN_POOL_CONNECTIONS:
            raise ValueError(
                f"POOL_SIZE + MAX_OVERFLOW is {self.pool_size + self.max_overflow} but must be "
                f"at least {MIN_POOL_CONNECTIONS}: a sync holds up to {MIN_POOL_CONNECTIONS} "
                "target connections at once (its table lock, dlt's first-run lock, dlt's "
                "client and the bulk load); with fewer it waits POOL_TIMEOUT and fails"
            )
        return self

    def database(self, role: Literal["source", "target"]) -> DatabaseSettings:
        return DatabaseSettings(
            role=role,
            url=self._url(role),
            ssl_ca=getattr(self, f"{role}_db_ssl_ca"),
            ssl_cert=getattr(self, f"{role}_db_ssl_cert"),
            ssl_key=getattr(self, f"{role}_db_ssl_key"),
            ssl_mode=getattr(self, f"{role}_db_ssl_mode"),
        )

    @property
    def source(self) -> DatabaseSettings:
        return self.database("source")

    @property
    def target(self) -> DatabaseSettings:
        return self.database("target")

    @property
    def staging_database(self) -> str:
        return self.staging_db_name or f"{self.target.database}_staging"

    def _url(self, role: str) -> URL:
        full: SecretStr | None = getattr(self, f"{role}_db_url")
        if full is not None:
            return make_url(full.get_secret_value())
        return URL.create(
            "mysql+pymysql",
            username=getattr(self, f"{role}_db_user"),
            password=getattr(self, f"{role}_db_pass").get_secret_value() or None,
            host=getattr(self, f"{role}_db_host"),
            port=getattr(self, f"{role}_db_port"),
            database=getattr(self, f"{role}_db_name"),
        )


def _env_name(loc: tuple[Any, ...]) -> str:
    return str(loc[0]).upper() if loc else "settings"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, reporting every problem at once."""
    return build_settings(Settings, overrides)


def build_settings(cls: type[SettingsT], overrides: dict[str, Any]) -> SettingsT:
    """An instance of ``cls`` from its sources and ``overrides``, or a ConfigError with
    every problem: field errors by variable name, then the model checks."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = _problems(exc)
        # pydantic runs the model checks (database names, pool room) only once every field
        # is valid: run them again, from the same sources, with the failed fields at their
        # defaults
        failed = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        problems += [p for p in _model_problems(cls, overrides, failed) if p not in problems]
        raise ConfigError(problems) from None


def _problems(exc: ValidationError) -> list[ConfigProblem]:
    return [
        ConfigProblem(_env_name(err["loc"]), _plain_message(err["msg"]))
        for err in exc.errors(include_input=False, include_url=False)
    ]


def _model_problems(
    cls: type[BaseSettings], overrides: dict[str, Any], failed: set[str]
) -> list[ConfigProblem]:
    fields = cls.model_fields
    defaults = {
        name: fields[name].get_default(call_default_factory=True)
        for name in failed
        if name in fields
    }
    try:
        cls(**{**overrides, **defaults})
    except ValidationError as exc:
        return [p for p in _problems(exc) if p.path == "settings"]
    return []


def _plain_message(message: str) -> str:
    return message.removeprefix("Value error, ")
