"""``params=`` for sqlml statements: each placeholder becomes the value's SQL literal.

DuckDB binds parameters of the one statement it runs; an sqlml statement carries queries
(``CREATE MODEL m AS SELECT ... WHERE n > ?``) and options (``WITH (epochs := ?)``) that
its handler runs or reads later, often several times. So the statement's placeholders
(``?``, ``?2``, ``$1``, ``$name``) are replaced by literals before it is parsed: each
value is rendered by type (strings quoted and escaped, dates, timestamps, decimals and
lists typed), never pasted as text. A value with no literal, or a count that differs,
is refused with a ParameterError that says what to do.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlml.errors import ParameterError
from sqlml.query.tokens import tokenize


def placeholders(tokens) -> list[tuple[int, int, str]]:
    """(start, end, key) of each placeholder; key '1', '2'... for positional, a name for ``$name``."""
    found = []
    highest = 0
    for i, token in enumerate(tokens):
        if token.kind != "operator" or token.text not in ("?", "$"):
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) and tokens[i + 1].start == token.end else None
        number = following is not None and following.kind == "number" and following.text.isdigit()
        if token.text == "?":
            if following is not None and number:
                key, end = int(following.text), following.end
            else:
                key, end = highest + 1, token.end
            highest = max(highest, key)
            found.append((token.start, end, str(key)))
        elif following is not None and number:
            highest = max(highest, int(following.text))
            found.append((token.start, following.end, str(int(following.text))))
        elif following is not None and following.kind in ("identifier", "keyword"):
            found.append((token.start, following.end, following.text))
    return found


def bind(text: str, params: Any, statement: str) -> str:
    """``text`` with every placeholder replaced by the literal of its value."""
    marks = placeholders(tokenize(text))
    if params is None:
        if marks:
            raise ParameterError(statement, f"the statement has {len(marks)} parameter placeholder(s) but no params were given")
        return text
    if isinstance(params, Mapping):
        values = {str(k).lstrip("$"): v for k, v in params.items()}
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        values = {str(i + 1): v for i, v in enumerate(params)}
    else:
        raise ParameterError(statement, f"params must be a list, a tuple or a dict, not {type(params).__name__}")
    wanted = {key for _, _, key in marks}
    if wanted != set(values):
        raise ParameterError(
            statement,
            f"{len(values)} parameter value(s) given for placeholder(s) {sorted(wanted) or 'none'}; "
            "give one value per placeholder (a list for ? and $1, a dict for $name)",
        )
    out, last = [], 0
    for start, end, key in marks:
        out.append(text[last:start])
        out.append(literal(values[key], statement))
        last = end
    out.append(text[last:])
    return "".join(out)


def literal(value: Any, statement: str = "params") -> str:
    """The SQL literal of one Python value."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"CAST('{value!r}' AS DOUBLE)"
    if isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        if not value.is_finite() or not isinstance(exponent, int):
            return f"CAST('{value}' AS DOUBLE)"
        return f"CAST('{value}' AS DECIMAL(38, {max(0, -exponent)}))"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "from_hex('" + bytes(value).hex() + "')"
    if isinstance(value, datetime.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"CAST('{value.isoformat(sep=' ')}' AS {kind})"
    if isinstance(value, datetime.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    if isinstance(value, datetime.time):
        return f"CAST('{value.isoformat()}' AS TIME)"
    if isinstance(value, datetime.timedelta):
        return f"to_microseconds({round(value.total_seconds() * 1_000_000)})"
    if isinstance(value, uuid.UUID):
        return f"CAST('{value}' AS UUID)"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v, statement) for v in value) + "]"
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return "{" + ", ".join(f"{literal(k, statement)}: {literal(v, statement)}" for k, v in value.items()) + "}"
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item) and getattr(value, "shape", None) == ():
        return literal(item(), statement)
    raise ParameterError(
        statement,
        f"a parameter of type {type(value).__name__} has no SQL literal; pass numbers, strings, dates, "
        "timestamps, bytes or lists of them (register a DataFrame or table with con.register(name, data) "
        "and name it in the query instead)",
    )
