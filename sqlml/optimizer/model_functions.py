"""Which SQL functions are model calls: ``MODEL_FUNCTIONS``, a printable table the optimizer rules consult.

A model call is an expensive, deterministic scalar function whose first argument names a
model: ``ml_predict('delay_clf', dep_delay, distance)``. The optimizer computes such calls
once per distinct input, runs cheap predicates before them, caches their results and
shares them across queries. The built-in ones (``ml_predict`` and co.) are registered by
``sqlml.optimizer.runtime.trained_models``; other areas add their own with
``register_model_function``:

    >>> from sqlml.optimizer.model_functions import MODEL_FUNCTIONS
    >>> sorted(MODEL_FUNCTIONS)          # doctest: +SKIP
    ['ml_predict', 'ml_predict_proba']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelVersion:
    """What identifies the weights a call would use; ``token`` goes into cache keys.

    ``number`` is the version users see; ``token`` also changes when a model is dropped
    and created again under the same number, so stale cached predictions never match.
    """

    number: int
    token: str
    #: the model's own name when the reference differs (``'delay@2'`` -> ``'delay'``)
    name: str | None = None


@dataclass(frozen=True)
class ModelFunction:
    name: str
    #: SQL type of the result; None: the type declared by the UDF in ``sqlml.udf.FUNCTIONS``
    returns: str | None = None
    #: relative cost of one call, to order several model predicates (cheapest first)
    cost: float = 100.0
    #: (connection, model name) -> ModelVersion, or None when the model is unknown;
    #: without it results cannot be cached across queries (only shared within one)
    version: Callable[[Any, str], ModelVersion | None] | None = None
    #: (session, model name, version, [pyarrow arrays], {named constant args}) -> pyarrow
    #: array: predictions for many rows at once, used to fill the prediction cache in
    #: batches larger than DuckDB's 2048-row UDF chunks. None: fill through the SQL UDF.
    batch: Callable[..., Any] | None = None
    #: whether rows with a NULL argument reach the model (sqlml UDFs: yes, they decide);
    #: False mirrors DuckDB's default for UDFs: such rows give NULL without a call
    nulls_reach_model: bool = True
    description: str = ""


MODEL_FUNCTIONS: dict[str, ModelFunction] = {}
_pattern: re.Pattern | None = None


def register_model_function(name: str, **options: Any) -> ModelFunction:
    """Declare ``name`` a model call (replacing an earlier declaration of that name)."""
    global _pattern
    function = ModelFunction(name=name.lower(), **options)
    MODEL_FUNCTIONS[function.name] = function
    _pattern = None
    return function


def unregister_model_function(name: str) -> None:
    global _pattern
    MODEL_FUNCTIONS.pop(name.lower(), None)
    _pattern = None


def lookup(name: str) -> ModelFunction | None:
    return MODEL_FUNCTIONS.get(name.lower())


def mentions_model_call(sql: str) -> bool:
    """Cheap text test (no parsing): could ``sql`` call a registered model function?"""
    global _pattern
    if not MODEL_FUNCTIONS:
        return False
    if _pattern is None:
        names = "|".join(re.escape(n) for n in sorted(MODEL_FUNCTIONS))
        _pattern = re.compile(r"\b(?:" + names + r")\s*\(", re.IGNORECASE)
    return _pattern.search(sql) is not None


def return_type(function: ModelFunction) -> str:
    """The SQL type a call returns (for casting cached values back)."""
    if function.returns:
        return function.returns
    from sqlml import udf

    declared = udf.load_builtin().get(function.name)
    if declared is None:
        raise LookupError(f"model function {function.name!r} declares no return type and no UDF of that name exists")
    return declared.returns


def describe() -> list[dict[str, Any]]:
    """``MODEL_FUNCTIONS`` as rows (``ml_model_functions()`` shows them)."""
    rows = []
    for function in sorted(MODEL_FUNCTIONS.values(), key=lambda f: f.name):
        rows.append(
            {
                "name": function.name,
                "cost": function.cost,
                "cacheable": function.version is not None,
                "batch_path": function.batch is not None,
                "description": function.description,
            }
        )
    return rows
