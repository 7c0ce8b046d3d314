"""Data validation functions: ml_statistics, ml_validate, ml_drift, ml_anomaly_types.

Thin wrappers over ``sqlml.validation``. A call with constant arguments runs before its
statement on the caller's connection (``sources=``; registered views, DataFrames and an
open transaction's writes are seen); otherwise through a fresh cursor (committed data). The schema, history, diff and stored-statistics readers are pure
SQL macros in ``sql/macros/20_validation.sql``.
"""

from sqlml.udf import table_function
from sqlml.validation.anomalies.model import COLUMNS as ANOMALY_COLUMNS
from sqlml.validation.report import STATISTICS_COLUMNS


@table_function(
    "ml_statistics",
    columns=STATISTICS_COLUMNS,
    params=[("source", "VARCHAR")],
    named=[("dataset", "VARCHAR", None), ("span", "VARCHAR", None), ("store", "BOOLEAN", True)],
    sources=("source",),
)
def ml_statistics(session, source, dataset, span, store):
    """Per-column statistics of a table, query or file, stored by (dataset, span) unless store := false.

    A read-only connection computes them without storing.
    """
    from sqlml.transaction import transaction
    from sqlml.validation import api
    from sqlml.validation.report import statistics_rows

    keep = bool(store) and not session.read_only
    with session.cursor() as cur:
        with transaction(cur):
            stats = api.statistics(cur, source, dataset=dataset, span=span, store_result=keep)
    return statistics_rows(stats)


@table_function(
    "ml_validate",
    columns=ANOMALY_COLUMNS,
    params=[("source", "VARCHAR"), ("data_schema", "VARCHAR")],
    named=[("baseline", "VARCHAR", None), ("environment", "VARCHAR", None), ("version", "INTEGER", None), ("record", "BOOLEAN", True)],
    sources=("source", "baseline"),
)
def ml_validate(session, source, data_schema, baseline, environment, version, record):
    """One row per anomaly of ``source`` against a data schema (empty: the data conforms).

    The run is kept in ``sqlml.validation_runs`` (for the report) unless record := false.
    """
    from sqlml.validation import api

    found = api.validate(session, source, data_schema, baseline=baseline, environment=environment, version=version)
    rows = [a.as_row() for a in found]
    if record and not session.read_only:
        from sqlml.validation.runs import record as record_run

        with session.cursor() as cur:
            record_run(cur, data_schema, version, source, rows, environment=environment, baseline=baseline)
    return rows


@table_function(
    "ml_drift",
    columns=[
        ("column_name", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("value", "DOUBLE"),
        ("threshold", "DOUBLE"),
        ("is_anomaly", "BOOLEAN"),
        ("baseline_rows", "BIGINT"),
        ("rows", "BIGINT"),
        ("detail", "VARCHAR"),
    ],
    params=[("source", "VARCHAR"), ("baseline", "VARCHAR")],
    named=[("data_schema", "VARCHAR", None), ("environment", "VARCHAR", None)],
    sources=("source", "baseline"),
)
def ml_drift(session, source, baseline, data_schema, environment):
    """Every drift/skew measurement of ``source`` against ``baseline``, anomalous or not."""
    from sqlml.validation import api

    measured = api.drift(session, source, baseline, schema=data_schema, environment=environment)
    return [
        (m.column_name, m.metric, m.value, m.threshold, m.is_anomaly, m.baseline_rows, m.rows, m.detail)
        for m in measured
    ]


@table_function(
    "ml_anomaly_types",
    columns=[("anomaly_type", "VARCHAR"), ("severity", "VARCHAR"), ("family", "VARCHAR"), ("description", "VARCHAR")],
    side_effects=False,
)
def ml_anomaly_types(session):
    """The anomaly types ml_validate reports, with their severity."""
    from sqlml.validation.anomalies import TYPES

    return [(name, severity, family, text) for name, (severity, family, text) in TYPES.items()]
