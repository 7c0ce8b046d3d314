"""The prediction cache: results of model calls in a DuckDB table, filled before a query.

The ``prediction_cache`` rule rewrites a query to read model results from a store
table (``sqlml.prediction_cache``, or a TEMP table for a read-only connection's
multi-query batches) and plans a *fill*: before the query runs, its distinct inputs
are hashed, looked up, and only the misses go through the model, in large batches when
the model function offers a batch path. The rewritten query falls back to calling the
model for any input the store lacks, so it is correct even if the fill never ran.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlml.optimizer.model_functions import ModelFunction, ModelVersion
from sqlml.sqlutil import fetch_value, quote_ident

PERSISTENT_STORE = "sqlml.prediction_cache"
TEMP_STORE = "temp.__sqlml_prediction_cache"
#: Show a progress bar for fills with at least this many misses (on a terminal).
PROGRESS_MIN_ROWS = 200_000


@dataclass
class Fill:
    """Everything one fill needs; built by the prediction_cache rule."""

    store: str
    keys_sql: str  # a query returning the distinct key columns
    key_columns: list[str]
    hash_sql: str  # SQL over the key columns: the cache key
    call_sql: str  # SQL over the key columns: the model call
    function: ModelFunction
    model: str  # the model's name (for counters and invalidation)
    version: ModelVersion
    reference: str = ""  # how the query named it ('delay' or 'delay@2'): what the batch path gets
    signature: str = ""  # the call with its model and row inputs as ?: equal calls share fills
    #: argument positions (1-based after the model name) of the key columns, and the
    #: named constant arguments, for the batch path; None when only SQL can fill
    batch_layout: dict[str, Any] | None = None
    report: dict[str, Any] = field(default_factory=dict)


def store_for(connection) -> str | None:
    """The persistent store when this connection may write it, else None."""
    if connection is None or connection.read_only:
        return None
    exists = fetch_value(
        connection.duckdb,
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'sqlml' AND table_name = 'prediction_cache'",
    )
    return PERSISTENT_STORE if exists else None


def ensure_temp_store(duck) -> str:
    duck.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {TEMP_STORE.split('.')[1]} ("
        "cache_key UBIGINT PRIMARY KEY, function VARCHAR, model VARCHAR, version INTEGER, "
        "value VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp)"
    )
    return TEMP_STORE


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _fill_lock(connection) -> threading.Lock:
    """One fill at a time per database in this process: cursors filling the same keys
    at once would collide on the primary key when the second one commits."""
    with _locks_guard:
        return _locks.setdefault(connection.session.database, threading.Lock())


def run_fill(connection, fill: Fill) -> dict[str, Any]:
    """Compute the misses of one fill and store them; returns counts."""
    with _fill_lock(connection):
        return _run_fill(connection, fill)


def _run_fill(connection, fill: Fill) -> dict[str, Any]:
    duck = connection.duckdb
    if fill.store == TEMP_STORE:
        ensure_temp_store(duck)
    else:
        _invalidate_old_versions(duck, fill)
    keys = ", ".join(quote_ident(c) for c in fill.key_columns)
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE __sqlml_fill AS "
        f"SELECT {keys}, {fill.hash_sql} AS __ml_key FROM ({fill.keys_sql}) AS __ml_k"
    )
    try:
        duck.execute(
            f"CREATE OR REPLACE TEMP TABLE __sqlml_misses AS SELECT f.* FROM __sqlml_fill AS f "
            f"ANTI JOIN {fill.store} AS s ON s.cache_key = f.__ml_key"
        )
        lookups = fetch_value(duck, "SELECT count(*) FROM __sqlml_fill")
        misses = fetch_value(duck, "SELECT count(*) FROM __sqlml_misses")
        if misses:
            if fill.batch_layout is not None and fill.function.batch is not None:
                _fill_in_batches(connection, fill, misses)
            else:
                duck.execute(
                    f"INSERT OR IGNORE INTO {fill.store} (cache_key, function, model, version, value) "
                    f"SELECT __ml_key, ?, ?, ?, CAST({fill.call_sql} AS VARCHAR) FROM __sqlml_misses",
                    [fill.function.name, fill.model, fill.version.number],
                )
    finally:
        duck.execute("DROP TABLE IF EXISTS temp.__sqlml_fill")
        duck.execute("DROP TABLE IF EXISTS temp.__sqlml_misses")
    report = {"lookups": lookups, "hits": lookups - misses, "misses": misses}
    if fill.store == PERSISTENT_STORE:
        _count(duck, fill, report)
    fill.report = report
    return report


def _fill_in_batches(connection, fill: Fill, misses: int) -> None:
    """Misses through the model's batch path: slices of ``bulk.batch_rows()`` rows at most,
    scored on as many threads as DuckDB uses (a fill is as parallel as the UDF path)."""
    import pyarrow as pa

    from sqlml.optimizer.runtime.bulk_stream import batch_rows, model_workers, ordered_map

    duck = connection.duckdb
    workers = model_workers(duck)
    size = max(1024, min(batch_rows(), -(-misses // workers)))
    keys = ", ".join(quote_ident(c) for c in fill.key_columns)

    def slices():
        for start in range(0, misses, size):
            yield duck.sql(
                f"SELECT {keys}, __ml_key FROM __sqlml_misses WHERE rowid >= ? AND rowid < ?",
                params=[start, start + size],
            ).to_arrow_table()

    def score(batch):
        if not fill.function.nulls_reach_model:
            batch, nulls = _split_nulls(batch, fill.key_columns)
        else:
            nulls = batch.slice(0, 0)
        values = None
        if batch.num_rows:
            arrays = [batch.column(c) for c in fill.key_columns]
            values = fill.function.batch(
                connection.session, fill.reference or fill.model, fill.version, arrays, fill.batch_layout["named"]
            )
        return batch, values, nulls

    progress = _progress(misses, f"{fill.function.name}('{fill.model}')")
    try:
        for batch, values, nulls in ordered_map(score, slices(), workers):
            if nulls.num_rows:
                _insert(duck, fill, pa.table({"cache_key": nulls.column("__ml_key"), "value": pa.nulls(nulls.num_rows)}))
            if values is not None:
                _insert(duck, fill, pa.table({"cache_key": batch.column("__ml_key"), "value": values}))
            if progress is not None:
                progress.update(batch.num_rows + nulls.num_rows)
    finally:
        if progress is not None:
            progress.close()


def _split_nulls(batch, columns):
    """(rows whose key columns are all non-NULL, the others): DuckDB's default for UDFs."""
    import pyarrow.compute as pc

    if not any(batch.column(c).null_count for c in columns):  # the usual case: no copies
        return batch, batch.slice(0, 0)
    keep = pc.is_valid(batch.column(columns[0]))
    for column in columns[1:]:
        keep = pc.and_(keep, pc.is_valid(batch.column(column)))
    return batch.filter(keep), batch.filter(pc.invert(keep))


def _insert(duck, fill: Fill, result) -> None:
    duck.register("__sqlml_batch", result)
    try:
        duck.execute(
            f"INSERT OR IGNORE INTO {fill.store} (cache_key, function, model, version, value) "
            f"SELECT cache_key, ?, ?, ?, CAST(value AS VARCHAR) FROM __sqlml_batch",
            [fill.function.name, fill.model, fill.version.number],
        )
    finally:
        duck.unregister("__sqlml_batch")


def _progress(total: int, label: str):
    if total < PROGRESS_MIN_ROWS:
        return None
    from sqlml import progress

    return progress.start(total, f"prediction cache fill {label}", unit="rows")


def _invalidate_old_versions(duck, fill: Fill) -> None:
    """Rows of older versions (or of a model re-created under this number) are dead weight."""
    stale = [
        version
        for version, token in duck.execute(
            "SELECT version, token FROM sqlml.prediction_cache_stats WHERE function = ? AND model = ?",
            [fill.function.name, fill.model],
        ).fetchall()
        if version < fill.version.number or (version == fill.version.number and token != fill.version.token)
    ]
    for version in stale:
        for table in ("sqlml.prediction_cache", "sqlml.prediction_cache_stats"):
            duck.execute(
                f"DELETE FROM {table} WHERE function = ? AND model = ? AND version = ?",
                [fill.function.name, fill.model, version],
            )


def _count(duck, fill: Fill, report: dict[str, Any]) -> None:
    duck.execute(
        "INSERT INTO sqlml.prediction_cache_stats (function, model, version, token, lookups, hits, misses) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (function, model, version) DO UPDATE SET "
        "lookups = lookups + excluded.lookups, hits = hits + excluded.hits, "
        "misses = misses + excluded.misses, updated_at = now()",
        [
            fill.function.name,
            fill.model,
            fill.version.number,
            fill.version.token,
            report["lookups"],
            report["hits"],
            report["misses"],
        ],
    )


def clear(duck, model: str | None = None) -> int:
    """Delete cached predictions (of one model, or all); returns rows deleted."""
    where, params = ("WHERE model = ?", [model]) if model is not None else ("", [])
    deleted = fetch_value(duck, f"SELECT count(*) FROM sqlml.prediction_cache {where}", params)
    duck.execute(f"DELETE FROM sqlml.prediction_cache {where}", params)
    duck.execute(f"DELETE FROM sqlml.prediction_cache_stats {where}", params)
    return deleted


def stats(duck) -> list[tuple]:
    return duck.execute(
        "SELECT s.function, s.model, s.version, s.lookups, s.hits, s.misses, "
        "(SELECT count(*) FROM sqlml.prediction_cache c WHERE c.function = s.function AND c.model = s.model "
        "AND c.version = s.version), s.updated_at FROM sqlml.prediction_cache_stats s ORDER BY s.function, s.model, s.version"
    ).fetchall()
