"""``View``: rows from SQL with a picture, shown in a notebook as an HTML table and the picture.

Every view is made from an sqlml (or duckdb) connection and plain SQL: ``rows`` are
dicts, ``df()`` a pandas DataFrame, ``figure()`` a matplotlib Figure (None when the view
has no picture), ``save_png(path)`` writes it, and ``_repr_html_`` is what Jupyter shows.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from sqlml import plots

MAX_ROWS = 30


def read(con, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` as dicts (``sql`` is built by the views, values as literals)."""
    relation = con.sql(sql)
    if relation is None:
        return []
    columns = list(relation.columns)
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


def function_exists(con, name: str) -> bool:
    rows = con.sql(f"SELECT count(*) FROM duckdb_functions() WHERE function_name = {literal(name)}").fetchall()
    return bool(rows[0][0])


def literal(value: Any) -> str:
    from sqlml.query.params import literal as sql_literal

    return sql_literal(value, "sqlml.views")


class View:
    """Rows and an optional picture; subclasses set ``title`` and draw ``figure()``."""

    title = "sqlml"
    columns_shown: tuple[str, ...] | None = None

    def __init__(self, rows: list[dict[str, Any]], title: str | None = None):
        self.rows = rows
        if title is not None:
            self.title = title
        self._figure = None

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.title!r}: {len(self.rows)} rows>"

    def df(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def figure(self):
        return None

    def _cached_figure(self):
        if self._figure is None:
            self._figure = self.figure()
        return self._figure

    def save_png(self, path: str) -> str:
        figure = self._cached_figure()
        if figure is None:
            raise ValueError(f"{type(self).__name__} has no picture")
        return plots.save(figure, path)

    def picture_html(self, kind: str = "png") -> str:
        """The picture as an inline <img> (PNG, base64) or <svg>; empty without one."""
        figure = self._cached_figure()
        if figure is None:
            return ""
        if kind == "svg":
            return f'<div class="sqlml-figure">{plots.svg(figure)}</div>'
        data = base64.b64encode(plots.png(figure)).decode("ascii")
        return f'<img class="sqlml-figure" alt="{html.escape(self.title)}" src="data:image/png;base64,{data}"/>'

    def table_html(self, max_rows: int = MAX_ROWS) -> str:
        return table_html(self.rows, self.columns_shown, max_rows)

    def html(self, picture: str = "png") -> str:
        """Title, picture and table as one HTML fragment (the report puts these on its page)."""
        return f'<section class="sqlml-view"><h3>{html.escape(self.title)}</h3>{self.picture_html(picture)}{self.table_html()}</section>'

    def _repr_html_(self) -> str:
        try:
            return self.html("png")
        except Exception as error:  # noqa: BLE001 - a notebook shows the table even if drawing fails
            return f"<p>picture failed: {html.escape(str(error))}</p>{self.table_html()}"


def table_html(rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None, max_rows: int = MAX_ROWS) -> str:
    if not rows:
        return '<p class="sqlml-empty">(no rows)</p>'
    names = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in names)
    body = []
    for row in rows[:max_rows]:
        cells = "".join(_cell(row.get(c)) for c in names)
        body.append(f"<tr>{cells}</tr>")
    more = f'<p class="sqlml-more">{len(rows) - max_rows} more rows</p>' if len(rows) > max_rows else ""
    return f'<table class="sqlml-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
        return f'<td style="text-align:right">{text}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td style="text-align:right">{value}</td>'
    if isinstance(value, (list, dict)):
        text = json.dumps(value, default=str)
    else:
        text = "NULL" if value is None else str(value)
    if len(text) > 120:
        text = text[:119] + "…"
    return f"<td>{html.escape(text)}</td>"
