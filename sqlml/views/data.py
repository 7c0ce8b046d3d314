"""Data validation views: statistics with the schema's bounds and domains, anomalies, drift."""

from __future__ import annotations

import itertools
import json
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
    name = f"sqlml_frame_{next(_names)}"
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


def stored_statistics(con, dataset: str, *, schema: str | None = None) -> Statistics:
    """The stored statistics of ``dataset`` (what ml_statistics or CREATE DATA SCHEMA kept), drawn like ``statistics``."""
    return Statistics(_stored_rows(con, dataset), _schema_columns(con, schema), f"stored statistics of {_label(dataset)}")


def _stored_rows(con, dataset: str) -> list[dict[str, Any]]:
    """The latest stored statistics of ``dataset`` (as ``ml_statistics`` rows, histograms included); [] if none."""
    rows = read(con, f"SELECT * FROM ml_stored_statistics({literal(dataset)})")
    if not rows:
        return []
    ids = sorted({r["stats_id"] for r in rows if r.get("stats_id") is not None})
    buckets = read(
        con,
        "SELECT column_name, list({'low': low, 'high': high, 'count': count} ORDER BY bucket) AS buckets "
        f"FROM sqlml.statistics_histograms WHERE kind = 'equal_width' AND stats_id IN (SELECT unnest({literal(ids)})) GROUP BY ALL",
    )
    by_column = {b["column_name"]: b["buckets"] for b in buckets}
    for row in rows:
        row.setdefault("equal_width_histogram", by_column.get(row["column_name"]))
    return rows


def _reference(con, name: str) -> list[dict[str, Any]]:
    """Statistics of a table, query or file, else the stored statistics of a dataset of that name."""
    try:
        return _statistics(con, name)
    except Exception:  # noqa: BLE001 - not readable now (a DataFrame gone, a dataset name): what was stored
        stored = _stored_rows(con, name)
        if not stored:
            raise
        return stored


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

    def __init__(self, rows, statistics, schema, title, run: dict[str, Any] | None = None):
        super().__init__(rows, title)
        self.statistics = statistics
        self.schema = schema
        self.run = run  # the recorded validation run, for latest_validation

    def figure(self):
        if not self.statistics:
            return None
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
    return Statistics(rows, _schema_columns(con, schema), f"statistics of {_label(source)}")


def latest_validation(con, schema: str) -> Anomalies | None:
    """The last recorded ``ml_validate`` run against ``schema`` (None if it was never validated)."""
    if not read(con, "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'sqlml' AND table_name = 'validation_runs'"):
        return None  # a database from before catalog version 13, opened read-only
    runs = read(
        con,
        f"SELECT * FROM sqlml.validation_runs WHERE schema_name = {literal(schema)} ORDER BY created_at DESC, run_id DESC LIMIT 1",
    )
    if not runs:
        return None
    run = runs[0]
    rows = json.loads(run["anomalies"]) if isinstance(run["anomalies"], str) else run["anomalies"]
    try:
        stats = _statistics(con, run["source"])
    except Exception:  # noqa: BLE001 - the data is gone (a DataFrame, a temporary table): the anomalies stay
        stats = []
    title = f"latest validation against {schema} v{run['schema_version']}: {_label(run['source'])} at {run['created_at']:%Y-%m-%d %H:%M}"
    return Anomalies(rows, stats, _schema_columns(con, schema), title, run=run)


def anomalies(con, source: Any, schema: str, **options) -> Anomalies:
    """``ml_validate(source, schema, ...)``; options: baseline, environment, version."""
    named = "".join(f", {key} := {literal(value)}" for key, value in options.items() if value is not None)
    with source_name(con, source) as name:
        rows = read(con, f"SELECT * FROM ml_validate({literal(name)}, {literal(schema)}{named})")
        stats = _statistics(con, name)
    return Anomalies(rows, stats, _schema_columns(con, schema), f"validation of {_label(source)} against {schema}")


def drift(con, source: Any, baseline: Any, *, schema: str | None = None, max_columns: int = 12) -> Drift:
    """Drift of ``source`` against ``baseline`` (a table, query or DataFrame): every measurement and the distributions."""
    named = f", data_schema := {literal(schema)}" if schema else ""
    with source_name(con, source) as current_name, source_name(con, baseline) as baseline_name:
        rows = read(con, f"SELECT * FROM ml_drift({literal(current_name)}, {literal(baseline_name)}{named})")
        current = {r["column_name"]: r for r in _statistics(con, current_name)}
        reference = {r["column_name"]: r for r in _reference(con, baseline_name)}
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
    return Drift(rows, columns, f"drift of {_label(source)} against {_label(baseline)}")


def _label(source: Any) -> str:
    """A source as a title shows it: a name, a shortened query, or the type of a DataFrame."""
    return plots.short(source, 70) if isinstance(source, str) else type(source).__name__
