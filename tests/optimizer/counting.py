"""A test model function that counts the rows it evaluates.

``ml_score('m', x [, y ...])`` returns ``factor * (x + y + ...)`` where ``factor`` is the
model's current version number, so a new version gives new values. It is registered both
as a DuckDB Arrow UDF and in the optimizer's model-function registry (with a version and
a batch path), exactly as a real model function is.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from sqlml.errors import ServingError
from sqlml.optimizer.model_functions import ModelVersion, register_model_function, unregister_model_function


class CountingModel:
    def __init__(self, name: str = "ml_score", *, cost: float = 100.0, batch: bool = True):
        self.name = name
        self.cost = cost
        self.with_batch = batch
        self.versions: dict[str, int] = {"m": 1, "other": 1}
        self.rows = 0  # rows evaluated through the SQL UDF
        self.batch_rows = 0  # rows evaluated through the batch path
        self.inputs: list[tuple] = []  # every input evaluated, in order
        self.lock = threading.Lock()  # batch paths score on several threads

    @property
    def total(self) -> int:
        return self.rows + self.batch_rows

    def reset(self) -> None:
        self.rows = self.batch_rows = 0
        self.inputs.clear()

    def _compute(self, models, columns) -> np.ndarray:
        if "broken" in models:
            raise ServingError("broken model: cannot score")
        total = np.zeros(len(models))
        for column in columns:
            total += np.asarray(column, dtype=float)
        factors = np.array([self.versions[m] for m in models], dtype=float)
        with self.lock:
            self.inputs.extend(zip(models, *[list(c) for c in columns], strict=True))
        return total * factors

    def udf(self, model, *columns):
        models = model.to_pylist()
        with self.lock:
            self.rows += len(models)
        values = [c.to_numpy(zero_copy_only=False) for c in columns]
        return pa.array(self._compute(models, values))

    def batch(self, session, model, version, arrays, named):
        n = len(arrays[0])
        with self.lock:
            self.batch_rows += n
        assert version.number == self.versions[model], "batch called with a stale version"
        values = [a.to_numpy(zero_copy_only=False) if hasattr(a, "to_numpy") else a for a in arrays]
        return pa.array(self._compute([model] * n, values))

    def version(self, connection, model):
        if model not in self.versions:
            return None
        return ModelVersion(self.versions[model], f"{model}-v{self.versions[model]}")

    def install(self, con) -> CountingModel:
        con.duckdb.create_function(self.name, self.udf, None, "DOUBLE", type="arrow", side_effects=False)
        register_model_function(
            self.name,
            returns="DOUBLE",
            cost=self.cost,
            version=self.version,
            batch=self.batch if self.with_batch else None,
            nulls_reach_model=False,  # a plain DuckDB UDF: NULL arguments give NULL
            description="test model: version * sum(inputs)",
        )
        return self

    def uninstall(self) -> None:
        unregister_model_function(self.name)


def make_tables(con, rows: int = 10_000) -> None:
    """t(id, x, y, z, name) with skewed inputs; u(y, label) a small dimension table."""
    con.execute(
        f"""
        CREATE TABLE t AS SELECT i AS id, (i % 100)::DOUBLE AS x, i % 10 AS y, (i % 13)::DOUBLE AS z,
               'n' || (i % 7) AS name, CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 5)::DOUBLE END AS w
        FROM range({rows}) r(i);
        CREATE TABLE u AS SELECT i AS y, 'u' || i AS label FROM range(10) r(i);
        """
    )
