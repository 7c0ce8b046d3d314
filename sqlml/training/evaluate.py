"""``ml_evaluate(model, query)``: a model's metrics on labelled rows, streamed from DuckDB."""

from __future__ import annotations

from typing import Any

import numpy as np

from sqlml import progress
from sqlml.errors import DataError
from sqlml.models.loading import load_model
from sqlml.sqlutil import column_list, relation_sql
from sqlml.training.metrics import Metrics

READ_ROWS = 65_536


def evaluate_model(session, model: str, query: str, label: str | None = None) -> dict[str, Any]:
    """Metrics of ``model`` on ``query`` (a query or table with the feature columns and the label)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    loaded = load_model(session, model)
    record = loaded.record
    label = label or record.label
    if not label:
        raise DataError(f"model {record.name!r} was imported without a label column; it cannot be evaluated by name")
    wanted = [*record.feature_names, label]
    metrics = Metrics(record.task, record.n_outputs)
    skipped = 0
    source = relation_sql(query, argument="query", where="ml_evaluate")
    with session.cursor() as cur:
        relation = cur.sql(f"SELECT * FROM {source} AS q LIMIT 0")
        missing = [c for c in wanted if c not in relation.columns]
        if missing:
            raise DataError(
                f"ml_evaluate: the query lacks column(s) {', '.join(map(repr, missing))} that model {record.name!r} "
                f"needs (features {record.feature_names}, label {label!r})"
            )
        reader = cur.sql(f"SELECT {column_list(wanted)} FROM {source} AS q").to_arrow_reader(READ_ROWS)
        for batch in progress.counted(reader, f"ml_evaluate {record.name}", size=lambda b: b.num_rows):
            labels = batch.column(len(wanted) - 1)
            x, valid = loaded.encode_valid(batch.columns[:-1])
            if record.task == "classification":
                index = pc.index_in(pc.cast(labels, pa.string()), value_set=pa.array(record.classes, pa.string()))
                y = pc.fill_null(index, -1).to_numpy(zero_copy_only=False)
            else:
                y = pc.cast(labels, pa.float64()).to_numpy(zero_copy_only=False)
                y = np.where(labels.is_null().to_numpy(zero_copy_only=False), np.nan, y)
            use = valid & ((y >= 0) if record.task == "classification" else ~np.isnan(y))
            skipped += int((~use).sum())
            if not use.any():
                continue
            rows = np.flatnonzero(use)
            kind = "proba" if record.task == "classification" else "value"
            predicted, finite = loaded.predictions(x[rows], np.ones(len(rows), dtype=bool), kind)
            skipped += int((~finite).sum())  # the model's output overflowed for these rows
            predicted, rows = predicted[finite], rows[finite]
            if record.task == "classification":
                metrics.update_classification(predicted, y[rows].astype(np.int64))
            else:
                metrics.update_regression(predicted, y[rows])
    result = metrics.result()
    return {
        "model": record.name,
        "version": record.version,
        "rows": metrics.rows,
        "skipped": skipped,
        **{k: result.get(k) for k in ("accuracy", "f1", "log_loss", "rmse", "mae", "r2")},
    }
