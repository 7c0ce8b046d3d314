"""Printing query results: aligned tables (ASCII or box drawing) whose wide cells wrap, lines, CSV, JSON lines, Markdown."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import math
import textwrap
from collections.abc import Sequence
from typing import Any

MODES = ("table", "box", "line", "csv", "json", "markdown")
_MIN_WIDTH = 8  # a column squeezed to fit the screen keeps at least this many characters


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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def render(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], mode: str = "table", *, total: int | None = None, width: int | None = None
) -> str:
    """``rows`` under ``columns`` in ``mode``; ``total`` > len(rows) says the rows were cut.

    ``width``: the screen's width; table and box cells wrap so a row fits it (no cell is
    ever cut). None: no limit, each cell on one line per line of its text.
    """
    if mode == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else format_value(v) if isinstance(v, (list, dict, bytes)) else v for v in row])
        return buffer.getvalue().rstrip("\n")
    if mode == "json":
        return "\n".join(json.dumps(dict(zip(columns, row)), default=_json_default) for row in rows)
    if mode == "line":
        label = max((len(c) for c in columns), default=0)
        records = []
        for row in rows:
            lines = []
            for name, value in zip(columns, row):
                text = format_value(value).replace("\n", "\n" + " " * (label + 3))
                lines.append(f"{name.rjust(label)} = {text}")
            records.append("\n".join(lines))
        return "\n\n".join(records)
    if mode not in MODES:
        raise ValueError(f"unknown output mode {mode!r}; use one of {', '.join(MODES)}")
    numeric = [bool(rows) and all(_is_number(r[i]) or r[i] is None for r in rows) for i in range(len(columns))]
    if mode == "markdown":
        cells = [[format_value(v).replace("\n", " ").replace("|", "\\|") for v in row] for row in rows]
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
        out = ["| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(columns)) + " |"]
        out.append("|" + "|".join(("-" * (w + 1) + ":") if numeric[i] else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
        out += ["| " + " | ".join(v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(r)) + " |" for r in cells]
        return "\n".join(out)
    blocks: list[list[list[str]]] = [[format_value(v).expandtabs(4).splitlines() or [""] for v in row] for row in rows]
    widths = [max([len(c), *(len(line) for r in blocks for line in r[i])]) for i, c in enumerate(columns)]
    if width is not None:
        widths = _fit(widths, [len(c) for c in columns], width - (3 * len(columns) + 1))
        blocks = [[_wrap(lines, widths[i]) for i, lines in enumerate(r)] for r in blocks]
    frame = _BOX if mode == "box" else _ASCII

    def line(values: list[str]) -> list[str]:
        return [v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)]

    def border(left: str, middle: str, right: str) -> str:
        return left + frame["h"] + (frame["h"] + middle + frame["h"]).join(frame["h"] * w for w in widths) + frame["h"] + right

    bar = frame["v"]
    out = [border(*frame["top"]), f"{bar} " + f" {bar} ".join(c.ljust(widths[i]) for i, c in enumerate(columns)) + f" {bar}", border(*frame["mid"])]
    for r in blocks:
        for k in range(max(len(lines) for lines in r)):
            out.append(f"{bar} " + f" {bar} ".join(line([lines[k] if k < len(lines) else "" for lines in r])) + f" {bar}")
    out.append(border(*frame["bottom"]))
    if total is not None and total > len(rows):
        out.append(f"({len(rows)} of {total} rows shown)")
    else:
        out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


_ASCII: dict[str, Any] = {"h": "-", "v": "|", "top": ("+", "+", "+"), "mid": ("+", "+", "+"), "bottom": ("+", "+", "+")}
_BOX: dict[str, Any] = {"h": "─", "v": "│", "top": ("┌", "┬", "┐"), "mid": ("├", "┼", "┤"), "bottom": ("└", "┴", "┘")}


def _fit(widths: list[int], headers: list[int], room: int) -> list[int]:
    """Shrink the widest columns until the row fits in ``room`` characters (each keeps a minimum)."""
    widths = list(widths)
    floor = [min(w, max(_MIN_WIDTH, min(h, 16))) for w, h in zip(widths, headers, strict=True)]
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i] - floor[i])
        if widths[widest] <= floor[widest]:
            break  # as narrow as it goes: the terminal wraps the rest
        widths[widest] -= 1
    return widths


def _wrap(lines: list[str], width: int) -> list[str]:
    out = []
    for text in lines:
        if len(text) <= width:
            out.append(text)
            continue
        out.extend(textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False, drop_whitespace=False) or [""])
    return [piece.rstrip() if len(piece) > width else piece for piece in out]


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
