"""The Python API of data validation, for users and for other sqlml areas.

Training gates on it (``WITH (validate := 'schema')`` refuses to train on error-level
anomalies) and serving validates its request log with ``environment='serving'``::

    from sqlml.validation import api

    found = api.validate(con, "SELECT * FROM serving_log", "flights_schema", environment="serving")
    errors = [a for a in found if a.is_error]
    api.assert_valid(con, "training_view", "flights_schema")   # raises DataAnomalyError on errors

``con`` may be an ``sqlml.Connection``, a raw ``duckdb`` connection (inside a statement
handler: ``ctx.duck``, which sees the statement's own uncommitted writes), or a
``Session`` (inside a UDF: a fresh cursor, which sees committed data only). Sources are
table or view names, queries (``SELECT ...``) or file paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlml.errors import DataAnomalyError, InvalidOptionError
from sqlml.validation import evolution, inference, scan, schema as schemas, sources, store
from sqlml.validation.anomalies import SEVERITY_ORDER, Anomaly, Measurement
from sqlml.validation.schema import DataSchema
from sqlml.validation.statistics import DatasetStats
from sqlml.validation.validate import anomalies, validate as _validate

__all__ = [
    "Anomaly",
    "DataSchema",
    "DatasetStats",
    "Measurement",
    "assert_valid",
    "create_schema",
    "drift",
    "load_schema",
    "statistics",
    "validate",
]


@contextmanager
def duck_of(con) -> Iterator:
    """The duckdb connection behind an sqlml Connection, a Session, or a duckdb connection."""
    if hasattr(con, "cursor") and hasattr(con, "errors") and hasattr(con, "caches"):  # a Session
        with con.cursor() as cur:
            yield cur
        return
    yield getattr(con, "duckdb", con)


def validate(
    con,
    source: str,
    schema: str,
    *,
    baseline: str | DatasetStats | None = None,
    environment: str | None = None,
    version: int | None = None,
) -> list[Anomaly]:
    """Anomalies of ``source`` against data schema ``schema`` (current version unless ``version``).

    Contract:
      * returns a list of ``Anomaly`` (frozen dataclass: ``column_name`` (None for
        dataset-level findings), ``anomaly_type`` (TFDV's name where TFDV has it),
        ``severity`` ('error' or 'warning'), ``description``, ``observed``, ``expected``,
        ``examples``, ``family``, ``metric``, ``threshold``, ``schema_name``,
        ``schema_version``; ``a.is_error`` tells errors). An empty list means the data
        conforms. The same rows as ``SELECT * FROM ml_validate(source, schema, ...)``.
      * ``environment``: 'training' (default: every column expected) or 'serving' (columns
        the schema marks training-only, such as the label, may be absent). In 'serving',
        training/serving skew is checked against the schema's training statistics
        unless ``baseline`` names other data.
      * ``baseline``: a dataset with stored statistics, a table, query or file (drift is
        measured against it), or a ``DatasetStats``.
      * errors: ``UnknownObjectError`` (no such schema), ``DataError`` (source unreadable),
        ``InvalidOptionError``; it never writes to the database.
    """
    with duck_of(con) as duck:
        run = _validate(duck, source, schema, baseline=baseline, environment=environment, version=version)
        return anomalies(run)


def assert_valid(
    con,
    source: str,
    schema: str,
    *,
    baseline: str | None = None,
    environment: str | None = None,
    severity: str = "error",
    action: str = "",
) -> list[Anomaly]:
    """``validate``, raising ``DataAnomalyError`` when an anomaly at or above ``severity`` exists.

    Returns every anomaly otherwise (warnings included when ``severity='error'``).
    ``action`` prefixes the error message (e.g. "CREATE MODEL m").
    """
    if severity not in SEVERITY_ORDER:
        raise InvalidOptionError("assert_valid", "severity", f"expected 'error' or 'warning', got {severity!r}")
    found = validate(con, source, schema, baseline=baseline, environment=environment)
    blocking = [a for a in found if SEVERITY_ORDER[a.severity] >= SEVERITY_ORDER[severity]]
    if blocking:
        raise DataAnomalyError(source, schema, blocking[0].schema_version, blocking, action=action)
    return found


def statistics(con, source: str, *, dataset: str | None = None, span: str | None = None, store_result: bool = True) -> DatasetStats:
    """Full statistics of ``source``; stored as (dataset, span) unless ``store_result`` is False.

    ``dataset`` defaults to the source's name (or text). Stored statistics serve later as
    baselines without a rescan, and a dataset stored in spans reads back merged.
    """
    with duck_of(con) as duck:
        stats, _ = scan.compute(duck, sources.resolve(duck, source))
        if store_result:
            store.save(duck, stats, dataset=dataset or sources.dataset_key(source), span=span)
        return stats


def stored_statistics(con, dataset: str, span: str | None = None) -> DatasetStats | None:
    """Stored statistics of ``dataset`` (its spans merged when no span is given), or None."""
    with duck_of(con) as duck:
        return store.load_dataset(duck, dataset, span)


def drift(con, source: str, baseline: str | DatasetStats, *, schema: str | None = None, environment: str | None = None) -> list[Measurement]:
    """Every comparison with the baseline (JSD, L-infinity, missing-rate and mean shift), anomalous or not.

    Without ``schema`` the thresholds are the defaults of an inferred schema.
    """
    with duck_of(con) as duck:
        if schema is None:
            base_stats = baseline if isinstance(baseline, DatasetStats) else None
            if base_stats is None:
                _, base_stats = _resolve_baseline(duck, baseline)
            target = inference.infer(base_stats, "(baseline)")
        else:
            target = schema
            base_stats = baseline
        run = _validate(duck, source, target, baseline=base_stats, environment=environment)
        anomalies(run)
        return run.measurements


def _resolve_baseline(duck, baseline: str):
    from sqlml.validation.validate import resolve_baseline

    placeholder = DataSchema(name="(baseline)", version=0, columns={})
    return resolve_baseline(duck, placeholder, baseline, None)


def create_schema(con, name: str, source: str, *, replace: bool = False, **options) -> DataSchema:
    """``CREATE [OR REPLACE] DATA SCHEMA name FROM source WITH (options)`` from Python."""
    with duck_of(con) as duck:
        from sqlml.transaction import transaction

        with transaction(duck):
            return evolution.create(duck, name, source, options, replace_existing=replace)


def load_schema(con, name: str, version: int | None = None) -> DataSchema:
    """A data schema version (the current one by default)."""
    with duck_of(con) as duck:
        return schemas.load(duck, name, version)
