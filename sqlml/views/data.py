"""Data validation views: statistics with the schema's bounds and domains, anomalies, drift."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from typing import Any

from sqlml import plots
from sqlml.views.base import View, literal, read

_names = itertools.count(1)


@contextmanager
def source_name(con, source: Any):
    """A name for ``source``: a table, view or query as given, or a DataFrame/Arrow object registered for the call."""
    if isinstance(source, str):
        yield source
        return
    name = f"__sqlml_view_source_{next(_names)}"
    con.register(name, source)
    try:
        yield name
    finally:
        con.unregister(name)


def _schema_columns(con, schema: str | None) -> dict[str, dict[str, Any]]:
    if schema is None:
        return {}
    return {r["column_name"]: r for r in read(con, f"SELECT * FROM ml_schema({literal(schema)})")}


def _statistics(con, name: str) -> list[dict[str, Any]]:
    return read(con, f"SELECT * FROM ml_statistics({literal(name)}, store := false)")


class Statistics(View):
    """``ml_statistics`` of a source, drawn per column against the schema's bounds and domain."""

    columns_shown = ("column_name", "data_type", "kind", "row_count", "missing_fraction", "distinct_count", "min", "max", "mean", "std")

    def __init__(self, rows, schema, title):
        super().__init__(rows, title)
        self.schema = schema

    def figure(self):
        return plots.column_statistics(self.rows, self.schema)


class Anomalies(View):
    """``ml_validate``: one row per anomaly; the picture shows the columns concerned."""

    columns_shown = ("column_name", "anomaly_type", "severity", "description", "observed", "expected")

    def __init__(self, rows, statistics, schema, title):
        super().__init__(rows, title)
        self.statistics = statistics
        self.schema = schema

    def figure(self):
        named = {r.get("column_name") for r in self.rows}
        columns = [c for c in self.statistics if c["column_name"] in named] or self.statistics
        return plots.column_statistics(columns, self.schema, title="columns with anomalies" if self.rows else "no anomalies")

    def table_html(self, max_rows: int = 30) -> str:
        if not self.rows:
            return '<p class="sqlml-ok">no anomalies: the data conforms to the schema</p>'
        return super().table_html(max_rows)


class Drift(View):
    """``ml_drift`` measurements, with reference and current distributions per column."""

    columns_shown = ("column_name", "metric", "value", "threshold", "is_anomaly", "baseline_rows", "rows")

    def __init__(self, rows, columns, title):
        super().__init__(rows, title)
        self.columns = columns

    def figure(self):
        return plots.drift(self.columns, title=self.title)


def statistics(con, source: Any, *, schema: str | None = None) -> Statistics:
    """Per-column statistics of ``source`` (not stored), with ``schema``'s bounds and domains drawn in."""
    with source_name(con, source) as name:
        rows = _statistics(con, name)
    label = source if isinstance(source, str) else type(source).__name__
    return Statistics(rows, _schema_columns(con, schema), f"statistics of {label}")


def anomalies(con, source: Any, schema: str, **options) -> Anomalies:
    """``ml_validate(source, schema, ...)``; options: baseline, environment, version."""
    named = "".join(f", {key} := {literal(value)}" for key, value in options.items() if value is not None)
    with source_name(con, source) as name:
        rows = read(con, f"SELECT * FROM ml_validate({literal(name)}, {literal(schema)}{named})")
        stats = _statistics(con, name)
    label = source if isinstance(source, str) else type(source).__name__
    return Anomalies(rows, stats, _schema_columns(con, schema), f"validation of {label} against {schema}")


def drift(con, source: Any, baseline: Any, *, schema: str | None = None, max_columns: int = 12) -> Drift:
    """Drift of ``source`` against ``baseline`` (a table, query or DataFrame): every measurement and the distributions."""
    named = f", data_schema := {literal(schema)}" if schema else ""
    with source_name(con, source) as current_name, source_name(con, baseline) as baseline_name:
        rows = read(con, f"SELECT * FROM ml_drift({literal(current_name)}, {literal(baseline_name)}{named})")
        current = {r["column_name"]: r for r in _statistics(con, current_name)}
        reference = {r["column_name"]: r for r in _statistics(con, baseline_name)}
    measured = list(dict.fromkeys(r["column_name"] for r in rows if r["column_name"] in current and r["column_name"] in reference))
    measured.sort(key=lambda c: (not any(r["is_anomaly"] for r in rows if r["column_name"] == c)))
    columns = [
        {
            "column_name": c,
            "reference": reference[c],
            "current": current[c],
            "measurements": [r for r in rows if r["column_name"] == c],
        }
        for c in measured[:max_columns]
    ]
    label = source if isinstance(source, str) else type(source).__name__
    base = baseline if isinstance(baseline, str) else type(baseline).__name__
    return Drift(rows, columns, f"drift of {label} against {base}")
