"""Scratch databases, server-side data generation, row changes and the content checksum."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pymysql

TABLE_DDL = """
CREATE TABLE `{table}` (
  `id` BIGINT NOT NULL,
  `name` VARCHAR(64) NOT NULL,
  `status` ENUM('new','paid','shipped','cancelled','refunded') NOT NULL,
  `amount` DECIMAL(12,2) NOT NULL,
  `active` TINYINT(1) NOT NULL,
  `note` TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL,
  `created_at` DATETIME(6) NOT NULL,
  `quantity` INT NOT NULL,
  `score` DOUBLE NOT NULL,
  `updated_at` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
      ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""

# Every value derives from seq; updated_at values are distinct and in the past, so the first
# change made by the benchmark is the only thing newer than what a full copy already holds.
FILL_SQL = """
INSERT INTO `{table}`
SELECT seq,
       CONCAT('customer-', seq),
       ELT(1 + seq % 5, 'new', 'paid', 'shipped', 'cancelled', 'refunded'),
       (seq % 1000000) / 100 + 0.01,
       seq % 2,
       IF(seq % 97 = 0, NULL,
          CONCAT('Grüße aus Köln — 東京 №', seq, ' 🚀 ', REPEAT('ß', seq % 40))),
       TIMESTAMP('2020-01-01 00:00:00') + INTERVAL seq SECOND
           + INTERVAL (seq * 7919) % 1000000 MICROSECOND,
       CAST((seq * 31) % 200001 AS SIGNED) - 100000,
       seq * 1.0e0 / 7,
       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND
           + INTERVAL (seq * 104729) % 1000000 MICROSECOND
FROM seq_1_to_{rows}
"""

CHANGE_SQL = """
UPDATE `{table}`
SET quantity = quantity + 1, amount = amount + 1.00, status = 'paid',
    note = CONCAT('geändert #{round} ✓ ', id)
WHERE id % {step} = {offset}
"""


@dataclass(frozen=True)
class Server:
    """Where the scratch databases live; the password travels only in MYSQL_PWD."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""

    @classmethod
    def from_env(cls, host: str, port: int, user: str) -> Server:
        return cls(host, port, user, os.environ.get("BENCH_DB_PASS", ""))

    def url(self, database: str, scheme: str = "mysql+pymysql") -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{database}"

    def client_args(self) -> list[str]:
        return ["-h", self.host, "-P", str(self.port), "-u", self.user]

    def client_env(self) -> dict[str, str]:
        return {"MYSQL_PWD": self.password} if self.password else {}


@contextmanager
def connect(server: Server, database: str | None = None) -> Iterator[pymysql.Connection]:
    conn = pymysql.connect(
        host=server.host, port=server.port, user=server.user, password=server.password,
        database=database, charset="utf8mb4", autocommit=True,
        init_command="SET time_zone = '+00:00'",
    )
    try:
        yield conn
    finally:
        conn.close()


def execute(server: Server, database: str | None, sql: str) -> int:
    with connect(server, database) as conn, conn.cursor() as cur:
        return int(cur.execute(sql))


def query(server: Server, database: str | None, sql: str, args: Sequence[object] = ()) -> list:
    with connect(server, database) as conn, conn.cursor() as cur:
        cur.execute(sql, args or None)
        return list(cur.fetchall())


def unique_prefix() -> str:
    return f"dbsync_bench_{uuid.uuid4().hex[:8]}"


def create_database(server: Server, name: str) -> None:
    execute(
        server, None,
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    )


def drop_databases(server: Server, prefix: str) -> list[str]:
    """Drop every database whose name starts with ``prefix`` (this run's scratch space)."""
    pattern = prefix.replace("_", r"\_") + "%"
    names = [
        r[0]
        for r in query(
            server, None, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME LIKE %s", (pattern,),
        )
    ]
    for name in names:
        execute(server, None, f"DROP DATABASE IF EXISTS `{name}`")
    return names


def generate_table(server: Server, database: str, table: str, rows: int) -> None:
    execute(server, database, TABLE_DDL.format(table=table))
    execute(server, database, FILL_SQL.format(table=table, rows=rows))


def change_rows(
    server: Server, database: str, table: str, rows: int, changed: int, round_no: int
) -> int:
    """Update ``changed`` rows spread evenly over the key range (bumps updated_at)."""
    step = max(1, rows // changed)
    offset = round_no % step
    sql = CHANGE_SQL.format(table=table, round=round_no, step=step, offset=offset)
    return execute(server, database, sql)


SHARE_SQL = "UPDATE `{table}` SET updated_at = '2024-06-01 00:00:00'"
# the cursor no longer stamped by the server: the application sets it (here: never changes it)
APP_SET_SQL = (
    "ALTER TABLE `{table}` MODIFY updated_at TIMESTAMP(6) NOT NULL "
    "DEFAULT CURRENT_TIMESTAMP(6)"
)


def share_cursor(server: Server, database: str, table: str, *, app_set: bool) -> None:
    """Give every row one cursor value (as after ALTER TABLE ... ADD updated_at ...);
    ``app_set``: the server stops stamping updates (an application-set cursor)."""
    if app_set:
        execute(server, database, APP_SET_SQL.format(table=table))
    execute(server, database, SHARE_SQL.format(table=table))


DELETE_SQL = "DELETE FROM `{table}` WHERE id % {step} = {offset}"


def delete_rows(
    server: Server, database: str, table: str, rows: int, deleted: int, round_no: int
) -> int:
    """Delete about ``deleted`` rows spread evenly over the key range (counting down from
    the last residue class, so the rows ``change_rows`` updates are rarely the same)."""
    step = max(1, rows // deleted)
    offset = (step - 1 - round_no) % step
    return execute(server, database, DELETE_SQL.format(table=table, step=step, offset=offset))


# --- content check ------------------------------------------------------------------------

_INTEGER = {"tinyint", "smallint", "mediumint", "int", "bigint"}
_TEXT = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}


def normalized(name: str, data_type: str) -> str:
    """A column as text that is the same for equal values whatever type a copier chose
    (BOOL vs TINYINT(1), VARCHAR vs ENUM, DECIMAL(38,9) vs (12,2), DATETIME vs TIMESTAMP)."""
    col = f"`{name}`"
    if data_type in _INTEGER:
        expr = f"CAST({col} AS SIGNED)"
    elif data_type == "decimal":
        expr = f"CAST({col} AS DECIMAL(65,10))"
    elif data_type in {"double", "float"}:
        expr = f"CAST(CAST({col} AS DOUBLE) AS CHAR)"
    elif data_type in {"datetime", "timestamp", "date"}:
        expr = f"DATE_FORMAT({col}, '%Y-%m-%d %H:%i:%s.%f')"
    elif data_type in _TEXT:
        expr = f"HEX(CONVERT({col} USING utf8mb4))"
    else:
        expr = f"HEX({col})"
    return f"IFNULL({expr}, '\\\\N')"


def source_columns(server: Server, database: str, table: str) -> list[tuple[str, str]]:
    return [
        (r[0], r[1].lower())
        for r in query(
            server, "information_schema",
            "SELECT COLUMN_NAME, DATA_TYPE FROM COLUMNS WHERE TABLE_SCHEMA=%s "
            "AND TABLE_NAME=%s ORDER BY ORDINAL_POSITION", (database, table),
        )
    ]


@dataclass(frozen=True)
class Checksum:
    rows: int
    digest: str


def checksum(
    server: Server, database: str, table: str, columns: Sequence[tuple[str, str]]
) -> Checksum | None:
    """Row count and an order-independent 64-bit XOR of per-row MD5s (UTC session).

    ``columns`` are the source's; only those are compared (a copier's own extra columns,
    such as dlt's ``_dlt_id``, are ignored). None if the table is missing."""
    exists = query(
        server, "information_schema",
        "SELECT 1 FROM TABLES WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s", (database, table),
    )
    if not exists:
        return None
    row = "CONCAT_WS('#', " + ", ".join(normalized(n, t) for n, t in columns) + ")"
    sql = (
        f"SELECT COUNT(*), BIT_XOR(CAST(CONV(LEFT(MD5({row}), 16), 16, 10) AS UNSIGNED)) "
        f"FROM `{database}`.`{table}`"
    )
    count, digest = query(server, None, sql)[0]
    return Checksum(int(count), f"{int(digest or 0):016x}")
