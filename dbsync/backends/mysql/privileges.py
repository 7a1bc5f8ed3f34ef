"""What ``check-config`` asks a MySQL/MariaDB server about the user's privileges.

Reads ``information_schema``'s grant tables; the remedy in each problem is the GRANT or
CREATE DATABASE statement an administrator would run.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dbsync.backends.mysql.schema import quote
from dbsync.config.errors import ConfigProblem

# what a sync does on the target and staging databases (docs/configuration.md, "Privileges")
TARGET_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX")


def select_problems(engine: Engine, database: str, tables: list[str]) -> list[ConfigProblem]:
    """Source tables the user may not SELECT (global, database or table grants)."""
    with engine.connect() as conn:
        grantee = _grantee(conn)
        if grantee is None or "SELECT" in _privileges(conn, grantee, database):
            return []
        readable = {
            row[0]
            for row in conn.execute(
                sa.text(
                    "SELECT TABLE_NAME FROM information_schema.TABLE_PRIVILEGES "
                    "WHERE GRANTEE = :g AND TABLE_SCHEMA = :d AND PRIVILEGE_TYPE = 'SELECT'"
                ),
                {"g": grantee, "d": database},
            )
        }
    return [
        ConfigProblem(
            "SOURCE_DB",
            f"user {grantee} may not SELECT from {database}.{table} "
            f"(GRANT SELECT ON {quote(database)}.* TO {grantee})",
        )
        for table in tables
        if table not in readable
    ]


def _grantee(conn: Connection) -> str | None:
    """The current user as information_schema spells grantees ('user'@'host'); None when
    roles are in use, whose privileges those tables do not show: nothing is checked then."""
    try:
        roles = conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.APPLICABLE_ROLES"))
        if roles.scalar_one():
            return None
    except sa.exc.DBAPIError:
        pass  # a server without roles
    current = str(conn.execute(sa.text("SELECT CURRENT_USER()")).scalar_one())
    user, _, host = current.rpartition("@")
    return f"'{user}'@'{host}'"


def _privileges(conn: Connection, grantee: str, database: str) -> set[str]:
    """Privileges the user holds on every table of ``database`` (global or database grants,
    wildcard database names included)."""
    rows = conn.execute(
        sa.text(
            "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = :g "
            "UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
            "WHERE GRANTEE = :g AND :d LIKE TABLE_SCHEMA"
        ),
        {"g": grantee, "d": database},
    )
    return {row[0] for row in rows}


def database_problems(conn: Connection, databases: tuple[str, ...]) -> list[ConfigProblem]:
    """Target databases that are missing (and may not be created) or lack privileges."""
    grantee = _grantee(conn)
    problems: list[ConfigProblem] = []
    for database in databases if grantee is not None else ():
        have = _privileges(conn, grantee, database)
        exists = conn.execute(
            sa.text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :d"),
            {"d": database},
        ).first()
        if not exists and "CREATE" not in have:
            problems.append(
                ConfigProblem(
                    "TARGET_DB",
                    f"database {database!r} does not exist and user {grantee} may not create "
                    f"it: CREATE DATABASE {quote(database)}",
                )
            )
        missing = [p for p in TARGET_PRIVILEGES if p not in have]
        if missing:
            problems.append(
                ConfigProblem(
                    "TARGET_DB",
                    f"user {grantee} lacks {', '.join(missing)} on database {database!r} "
                    f"(GRANT {', '.join(TARGET_PRIVILEGES)} ON {quote(database)}.* "
                    f"TO {grantee})",
                )
            )
    return problems
