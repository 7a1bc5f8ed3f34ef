"""The written dialect interface: both dialects implement every member, as siblings."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbsync.backends import MySQLDialect, SQLiteDialect, dialect_class
from dbsync.backends.mysql.lock import FileLock
from dbsync.config.errors import LockLost, TableBusy
from dbsync.dialect import Dialect

MEMBERS = sorted(
    name for name in vars(Dialect) if not name.startswith("_") and name != "settings"
) + sorted(name for name in Dialect.__annotations__ if name != "settings")


@pytest.mark.parametrize("dialect", [MySQLDialect, SQLiteDialect])
@pytest.mark.parametrize("member", MEMBERS)
def test_every_member_of_the_interface_is_implemented(dialect: type, member: str) -> None:
    assert member in vars(dialect), f"{dialect.__name__} lacks {member}"


def test_the_dialects_are_siblings() -> None:
    assert not issubclass(SQLiteDialect, MySQLDialect)
    assert not issubclass(MySQLDialect, SQLiteDialect)


def test_backend_names_map_to_dialects() -> None:
    assert dialect_class("sqlite") is SQLiteDialect
    assert dialect_class("mysql") is MySQLDialect
    assert dialect_class("mariadb") is MySQLDialect


def test_status_table_lives_in_the_target_database_or_sqlite_main() -> None:
    assert MySQLDialect.status_schema("shop") == "shop"
    assert SQLiteDialect.status_schema("shop") == "main"


def test_file_lock_is_exclusive_and_knows_it_is_held(tmp_path: Path) -> None:
    path = str(tmp_path / "t.lock")
    with FileLock(path) as lock:
        lock.ensure_held()
        with pytest.raises(TableBusy), FileLock(path):
            pass
    with FileLock(path):  # free again once released
        pass
    with pytest.raises(LockLost):
        lock.ensure_held()
