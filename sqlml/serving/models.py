"""Trained models as the optimizer and the endpoint see them: versions and batch scoring.

The registry (``sqlml.models``) owns models; this module adapts it:
``model_version`` gives the cache token of a model reference (``'name'`` or
``'name@N'``), and ``predict_batch`` scores many rows at once through the very function
DuckDB calls for ``ml_predict`` / ``ml_predict_proba``, so cached, batched and
row-by-row results cannot differ.
"""

from __future__ import annotations

from typing import Any

from sqlml.optimizer.model_functions import ModelVersion


def model_version(connection, reference: str) -> ModelVersion | None:
    """Version and cache token of a model reference; None when there is no such model."""
    from sqlml.sqlutil import fetch_one

    from sqlml.models.registry import split_reference

    duck = connection.duckdb
    exists = fetch_one(
        duck, "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'sqlml' AND table_name = 'models'"
    )
    if exists is None:
        return None
    name, pinned = split_reference(duck, reference)
    row = fetch_one(  # the pinned version, else the latest: one query (this runs per statement)
        duck,
        "SELECT version, created_at FROM sqlml.models WHERE name = ? AND (? IS NULL OR version = ?) "
        "ORDER BY version DESC LIMIT 1",
        [name, pinned, pinned],
    )
    if row is None:
        return None
    version, created = int(row[0]), row[1].isoformat() if row[1] else ""
    return ModelVersion(version, f"{name}@{version}:{created}", name)


def pinned_reference(reference: str, version: ModelVersion) -> str:
    """``'name@N'`` for the exact version a token names (``reference`` may be ``'name'``)."""
    suffix = f"@{version.number}"
    return reference if reference.endswith(suffix) else reference + suffix


def predict_batch(function_name: str, session, model: str, version: ModelVersion, arrays: list, named: dict[str, Any]):
    """Results of ``function_name(model, *arrays)`` for all rows at once (a pyarrow array)."""
    import pyarrow as pa

    from sqlml import udf

    if named:
        raise ValueError(f"{function_name} takes no named arguments")
    declared = udf.load_builtin()[function_name]
    rows = len(arrays[0]) if arrays else 0
    models = pa.array([pinned_reference(model, version)] * rows, pa.string())
    return declared.fn(session, models, *arrays)
