"""Printing query results: aligned tables, CSV, JSON lines, Markdown."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import math
from collections.abc import Sequence
from typing import Any

MODES = ("table", "csv", "json", "markdown")
_MAX_CELL = 60


def format_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(format_value(v) for v in value[:8])
        more = ", ..." if len(value) > 8 else ""
        return f"[{inner}{more}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def _clip(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], mode: str = "table", *, total: int | None = None) -> str:
    """``rows`` under ``columns`` in ``mode``; ``total`` > len(rows) says the rows were cut."""
    if mode == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else format_value(v) if isinstance(v, (list, dict, bytes)) else v for v in row])
        return buffer.getvalue().rstrip("\n")
    if mode == "json":
        return "\n".join(json.dumps(dict(zip(columns, row)), default=_json_default) for row in rows)
    cells = [[_clip(format_value(v)) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows) for i in range(len(columns))]

    def line(values):
        parts = []
        for i, v in enumerate(values):
            parts.append(v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]))
        return parts

    if mode == "markdown":
        out = ["| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(columns)) + " |"]
        out.append("|" + "|".join(("-" * (w + 1) + ":") if numeric[i] else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
        out += ["| " + " | ".join(line(r)) + " |" for r in cells]
        return "\n".join(out)
    if mode != "table":
        raise ValueError(f"unknown output mode {mode!r}; use one of {', '.join(MODES)}")
    border = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [border, "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(columns)) + " |", border]
    out += ["| " + " | ".join(line(r)) + " |" for r in cells]
    out.append(border)
    if total is not None and total > len(rows):
        out.append(f"({len(rows)} of {total} rows shown)")
    else:
        out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return str(value)
