"""MySQL/MariaDB column types: what each kind of type is and how its values travel.

The one home of type knowledge. Values leave the source as the server's own text form and
enter the target from that text, so nothing is reinterpreted on the way:

- **extraction** (:func:`text_expression`): ``CAST(... AS CHAR)`` in a UTC session, the
  textual types as they are, ``HEX()`` for bytes, BIT as its number, FLOAT through its
  DOUBLE text; for checksums the same text in utf8mb4 (:func:`comparable_text`);
- **loading** (:func:`load_expression`, :func:`needs_escaping`): LOAD DATA assigns the text
  as is, except ``UNHEX()`` for bytes and ``CAST(... AS UNSIGNED)`` for BIT; only textual
  values can hold tabs, newlines, backslashes or NULs that need escaping;
- **literals** (:func:`literal`): a value as PyMySQL returns it, written into SQL text (key
  bounds of chunked copies, cursor values for connectorx);
- **schema evolution** (:func:`widens`): which type changes keep every existing value.

A new column type means a look at each type set below and at these functions. This module
imports nothing from dbsync at run time but :data:`dbsync.model.TEMPORAL` (the model is a
leaf), so every other module may use it.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dbsync.model import TEMPORAL

if TYPE_CHECKING:
    from dbsync.model import Column

# --- type sets (DATA_TYPE of information_schema.COLUMNS, lower case) -----------------------

CHARACTER = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})
"""Types with a character set; with the ``binary`` character set they hold bytes."""

TEXTUAL = CHARACTER | frozenset({"enum", "set", "json"})
"""Types whose value is text already: read as they are, and the only ones whose text may
contain tabs, newlines, backslashes or NULs."""

BINARY = frozenset(
    {
        "binary",
        "varbinary",
        "tinyblob",
        "blob",
        "mediumblob",
        "longblob",
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
    }
)
"""Types whose values are bytes: they travel hex-encoded, never as text."""

"""Types a cursor's lag (``lag_seconds``) can be subtracted from."""

BIT = "bit"
FLOAT = "float"
DOUBLE = "double"
ENUM = "enum"
TIMESTAMP = "timestamp"

INTEGER_RANK = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "bigint": 5}
TEXT_RANK = {"tinytext": 1, "text": 2, "mediumtext": 3, "longtext": 4}
BLOB_RANK = {"tinyblob": 1, "blob": 2, "mediumblob": 3, "longblob": 4}
FRACTIONAL = frozenset({"datetime", "timestamp", "time"})
"""Types with fractional seconds, ``(0)`` to ``(6)``."""


def is_binary(data_type: str, charset: str | None) -> bool:
    """Values that must travel as bytes (hex-encoded), never as text."""
    return data_type in BINARY or (data_type in CHARACTER and charset == "binary")


def is_temporal(data_type: str) -> bool:
    return data_type in TEMPORAL


# --- extraction: source value -> exact text ------------------------------------------------


def text_expression(column: Column, operand: str) -> str:
    """SELECT expression giving ``operand`` (the column, quoted) as exact text (hex for
    bytes)."""
    if is_binary(column.data_type, column.charset):
        return f"HEX({operand})"
    if column.data_type == BIT:
        return f"CAST(CAST({operand} AS UNSIGNED) AS CHAR)"
    if column.data_type in TEXTUAL:
        return operand
    if column.data_type == FLOAT:
        # a FLOAT prints with 6 significant digits; as a DOUBLE it prints every digit it has,
        # and that text rounds back to the very same FLOAT
        return f"CAST(CAST({operand} AS DOUBLE) AS CHAR)"
    return f"CAST({operand} AS CHAR)"


def comparable_text(column: Column, operand: str) -> str:
    """The column's exact text in one character set, for hashing rows: CONCAT_WS refuses to
    mix utf8mb4 with utf16, ucs2 or utf32 ("Illegal mix of collations"), and conversion to
    utf8mb4 keeps every character of every character set."""
    expression = text_expression(column, operand)
    if is_binary(column.data_type, column.charset) or column.charset in (None, "utf8mb4"):
        return expression
    return f"CONVERT({expression} USING utf8mb4)"


# --- literals: a value written into SQL text ----------------------------------------------


def literal(value: Any) -> str:
    """A MySQL literal for a value as PyMySQL returns it (key bounds, cursor values)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return f"X'{bytes(value).hex()}'" if value else "''"
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


# --- loading: exact text -> target value ---------------------------------------------------


def load_expression(column: Column, variable: str) -> str | None:
    """How a text value (in LOAD DATA's ``variable``) becomes the column's value; None when
    LOAD DATA assigns the text as is."""
    if is_binary(column.data_type, column.charset):
        return f"UNHEX({variable})"
    if column.data_type == BIT:
        return f"CAST({variable} AS UNSIGNED)"
    return None


def needs_escaping(column: Column) -> bool:
    """False when the column's text cannot hold a tab, newline, backslash or NUL (numbers,
    dates and hex digits), so the loader may skip scanning it."""
    return column.data_type in TEXTUAL


# --- schema evolution: which type changes keep every value ---------------------------------


def parse_column_type(column_type: str) -> tuple[str, str, bool]:
    """(base type, arguments, unsigned) of a ``COLUMN_TYPE``. Only the base type is
    case-folded: ENUM and SET members in the arguments are case-sensitive."""
    head, paren, rest = column_type.partition("(")
    args, tail = rest.rpartition(")")[::2] if paren else ("", "")
    base, _, modifiers = head.strip().partition(" ")
    return base.lower(), args, "unsigned" in f"{modifiers} {tail}".lower()


def enum_values(args: str) -> list[str]:
    return re.findall(r"'((?:[^']|'')*)'", args)


def _ints(args: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", args)]


def widens(new: str, old: str) -> bool:
    """True if every value of column type ``old`` fits column type ``new`` unchanged."""
    nb, na, nu = parse_column_type(new)
    ob, oa, ou = parse_column_type(old)
    if nb in INTEGER_RANK and ob in INTEGER_RANK:
        if nu == ou:
            return INTEGER_RANK[nb] >= INTEGER_RANK[ob]
        return not nu and INTEGER_RANK[nb] > INTEGER_RANK[ob]
    if nb == "decimal" and ob == "decimal":
        (np_, ns), (op, os_) = (_ints(na) + [0])[:2], (_ints(oa) + [0])[:2]
        return np_ - ns >= op - os_ and ns >= os_ and nu == ou
    if (nb, ob) == ("double", "float"):
        return nu == ou
    if nb in ("varchar", "char") and ob in ("varchar", "char"):
        return (nb == "varchar" or ob == "char") and _ints(na)[0] >= _ints(oa)[0]
    if nb == "varbinary" and ob in ("varbinary", "binary"):
        return _ints(na)[0] >= _ints(oa)[0]
    if nb in TEXT_RANK and ob in ("char", "varchar"):
        # TINYTEXT holds 255 bytes; a character takes up to 4 (utf8mb4)
        return nb != "tinytext" or _ints(oa)[0] * 4 <= 255
    if nb in TEXT_RANK and ob in TEXT_RANK:
        return TEXT_RANK[nb] >= TEXT_RANK[ob]
    if nb in BLOB_RANK and ob in ("binary", "varbinary"):
        return nb != "tinyblob" or _ints(oa)[0] <= 255
    if nb in BLOB_RANK and ob in BLOB_RANK:
        return BLOB_RANK[nb] >= BLOB_RANK[ob]
    if nb in ("enum", "set") and nb == ob:
        old_values = enum_values(oa)
        return enum_values(na)[: len(old_values)] == old_values
    if nb in FRACTIONAL and nb == ob:
        return (_ints(na) or [0])[0] >= (_ints(oa) or [0])[0]
    return False
