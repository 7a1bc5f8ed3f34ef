"""Names dbsync derives from a table's name for what it creates: dlt pipeline, staging table.

MySQL/MariaDB accept almost any table name (``a.b``, ``x|y``, ``say "hi"``); dlt does not:
its pipeline names are file names and its table names become parts of load-file names
(``<table>.<file id>.<retry>.parquet``). A name made only of ASCII letters, digits and
``_`` is used as it is; any other name becomes its sanitized form plus a short hash of the
original, so two different tables never share a derived name. The staging table dbsync
creates, loads (through dlt) and then merges or swaps in is always this derived name.
"""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[A-Za-z0-9_]+")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_]+")
_DLT_PREFIX = "_dlt"  # dlt's own tables in the staging database start with this
_MAX_PLAIN = 48  # a longer name is hashed, so every derived name fits MySQL's 64
_HASH_CHARS = 10
PIPELINE_MAX = 120


def _digest(name: str, chars: int = _HASH_CHARS) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:chars]


def safe_name(name: str) -> str:
    """``name`` itself when dlt and file systems take it unchanged, else sanitized + hash."""
    if _SAFE.fullmatch(name) and len(name) <= _MAX_PLAIN and not name.startswith(_DLT_PREFIX):
        return name
    base = _UNSAFE_RUN.sub("_", name).strip("_")[:40] or "t"
    return f"{base}_{_digest(name)}"


def staging_table(table: str) -> str:
    """The staging table (and dlt table/resource) name of a source table."""
    return safe_name(table)


def pipeline_name(target_database: str, table: str) -> str:
    """The dlt pipeline name of a table: a valid file name, unique per database and table."""
    name = f"dbsync__{safe_name(target_database)}__{safe_name(table)}"
    if len(name) <= PIPELINE_MAX:
        return name
    return "dbsync__" + _digest(f"{target_database}\x00{table}", 32)


def batch_pipeline_name(target_database: str, tables: tuple[str, ...]) -> str:
    """The dlt pipeline of a batch of tables (:class:`dbsync.sync.pipeline.Batch`): one per
    database and set of tables; never a table's own pipeline name (``dbsync__...``)."""
    return f"dbsync_batch__{_digest(target_database + chr(0) + chr(0).join(tables), 32)}"


UNSTORABLE_NAME = (
    "MySQL/MariaDB names cannot contain 4-byte UTF-8 characters (such as emoji), "
    "so no such table or column exists"
)


def storable_name(name: str) -> bool:
    """False for a name no MySQL/MariaDB table or column can have: identifiers are stored as
    utf8mb3, which has no 4-byte characters (comparing one fails with a collation error)."""
    return all(ord(character) <= 0xFFFF for character in name)
