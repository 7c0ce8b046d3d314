"""Column kinds: the few families of DuckDB types that validation treats alike.

A kind decides which statistics a column gets and which constraints a schema can hold
for it. Widening inside a kind (INTEGER -> BIGINT, FLOAT -> DOUBLE) is not a type change.
"""

from __future__ import annotations

import re

INTEGER = "integer"
FLOAT = "float"
BOOLEAN = "boolean"
STRING = "string"
TEMPORAL = "temporal"
LIST = "list"
OTHER = "other"

NUMERIC = frozenset({INTEGER, FLOAT})

_INTEGER_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
_STRING_TYPES = {"VARCHAR", "UUID", "JSON"}
_TEMPORAL_PREFIXES = ("DATE", "TIME", "TIMESTAMP", "INTERVAL")


def kind_of(data_type: str) -> str:
    """The kind of a DuckDB type name as DESCRIBE prints it."""
    t = data_type.strip().upper()
    if t.endswith("]"):
        return LIST
    if t in _INTEGER_TYPES:
        return INTEGER
    if t in _FLOAT_TYPES or t.startswith("DECIMAL") or t.startswith("NUMERIC"):
        return FLOAT
    if t == "BOOLEAN":
        return BOOLEAN
    if t in _STRING_TYPES or t.startswith("ENUM") or t.startswith("VARCHAR"):
        return STRING
    if t.startswith(_TEMPORAL_PREFIXES):
        return TEMPORAL
    return OTHER


def is_ieee_float(data_type: str) -> bool:
    """FLOAT and DOUBLE hold NaN and infinities; DECIMAL does not."""
    return data_type.strip().upper() in _FLOAT_TYPES


def compatible(expected_kind: str, actual_kind: str) -> bool:
    """Whether data of ``actual_kind`` satisfies a schema column of ``expected_kind``."""
    return expected_kind == actual_kind


def list_element_type(data_type: str) -> str | None:
    """``INTEGER[]`` -> ``INTEGER``; ``DOUBLE[3]`` -> ``DOUBLE``; None if not a list."""
    match = re.match(r"^(.*)\[\d*\]$", data_type.strip())
    return match.group(1) if match else None
