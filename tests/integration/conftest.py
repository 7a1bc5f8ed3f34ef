"""Integration fixtures: scratch databases on the real MariaDB, dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

from dbsync.config.settings import Settings, load_settings
from dbsync.config.tables import load_tables
from dbsync.sync.runtime import Runtime
from tests import helpers


def _mysql_available() -> bool:
    try:
        helpers.connect().close()
    except pymysql.err.OperationalError:
        return False
    return True


@pytest.fixture(scope="session", autouse=True)
def _require_mysql() -> None:
    if not _mysql_available():
        pytest.fail(
            f"MariaDB/MySQL is not reachable at {helpers.MYSQL_HOST}:{helpers.MYSQL_PORT} "
            "(user root, empty password); start it (see README) before running integration tests"
        )


@dataclass
class Scratch:
    """A source/target pair of scratch databases and a tables.json beside them."""

    source: str
    target: str
    tables_path: Path

    @property
    def staging(self) -> str:
        return f"{self.target}_staging"

    def env(self) -> dict[str, str]:
        return {
            "SOURCE_DB_HOST": helpers.MYSQL_HOST,
            "SOURCE_DB_PORT": str(helpers.MYSQL_PORT),
            "SOURCE_DB_NAME": self.source,
            "SOURCE_DB_USER": helpers.MYSQL_USER,
            "TARGET_DB_HOST": helpers.MYSQL_HOST,
            "TARGET_DB_PORT": str(helpers.MYSQL_PORT),
            "TARGET_DB_NAME": self.target,
            "TARGET_DB_USER": helpers.MYSQL_USER,
            "TABLES_CONFIG": str(self.tables_path),
        }

    def settings(self, **overrides: object) -> Settings:
        values = {k.lower(): v for k, v in self.env().items()}
        values.update(overrides)
        return load_settings(**values)

    def write_tables(self, tables: list[dict]) -> Path:
        return helpers.write_tables(self.tables_path, tables)

    def runtime(self, **overrides: object) -> Runtime:
        settings = self.settings(**overrides)
        return Runtime.create(settings, load_tables(self.tables_path))


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Scratch]:
    name = helpers.unique_name()
    pair = Scratch(source=f"{name}_src", target=f"{name}_tgt", tables_path=tmp_path / "tables.json")
    helpers.execute(None, f"CREATE DATABASE `{pair.source}`", f"CREATE DATABASE `{pair.target}`")
    pair.write_tables([])
    yield pair
    for database in (pair.source, pair.target, pair.staging):
        helpers.execute(None, f"DROP DATABASE IF EXISTS `{database}`")


@pytest.fixture
def runtime_factory(scratch: Scratch) -> Iterator:
    created: list[Runtime] = []

    def make(**overrides: object) -> Runtime:
        runtime = scratch.runtime(**overrides)
        created.append(runtime)
        return runtime

    yield make
    for runtime in created:
        runtime.dispose()
