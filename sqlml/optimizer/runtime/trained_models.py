"""Trained models as the optimizer sees them: ``ml_predict`` and co. as model functions.

The registry (``sqlml.models``) owns models; this module adapts it and registers the
built-in model functions (``ml_predict``, ``ml_predict_value``, ``ml_predict_proba``) in
``MODEL_FUNCTIONS``: ``model_version`` gives the cache token of a model reference
(``'name'`` or ``'name@N'``), and ``predict_batch`` scores many rows at once through the
very function DuckDB calls for them, so cached, batched and row-by-row results cannot
differ. ``sqlml.optimizer`` imports this module, so the three are registered whenever
the optimizer is.
"""

from __future__ import annotations

from typing import Any

from sqlml.optimizer.model_functions import ModelVersion, register_model_function


def model_version(connection, reference: str) -> ModelVersion | None:
    """Version and cache token of a model reference; None when there is no such model."""
    from sqlml.models.registry import version_token

    found = version_token(connection.duckdb, reference)
    if found is None:
        return None
    name, number, token = found
    return ModelVersion(number, token, name)


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


def _udf_batch(name: str):
    """A batch path that calls the function's own vectorized implementation on big arrays."""

    def batch(session, model, version, arrays, named):
        return predict_batch(name, session, model, version, arrays, named)

    return batch


for _name, _description in (
    ("ml_predict", "class name (or a regression value as text) a trained model predicts"),
    ("ml_predict_value", "a regression model's prediction"),
    ("ml_predict_proba", "class probabilities of a trained classifier"),
):
    register_model_function(
        _name, cost=100.0, version=model_version, batch=_udf_batch(_name), description=_description
    )
