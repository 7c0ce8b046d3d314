"""Row count out of the schema's bounds (an empty batch is the common case)."""

from __future__ import annotations


def plan(run) -> list:
    return []


def detect(run) -> list:
    rows = run.stats.row_count
    schema = run.schema
    if schema.min_rows is not None and rows < schema.min_rows:
        what = "the batch is empty" if rows == 0 else f"{rows:,} rows, fewer than min_rows {schema.min_rows:,}"
        return [run.anomaly("DATASET_LOW_NUM_EXAMPLES", None, what, observed=f"{rows:,} rows", expected=f">= {schema.min_rows:,} rows")]
    if schema.max_rows is not None and rows > schema.max_rows:
        return [run.anomaly(
            "DATASET_HIGH_NUM_EXAMPLES", None, f"{rows:,} rows, more than max_rows {schema.max_rows:,}",
            observed=f"{rows:,} rows", expected=f"<= {schema.max_rows:,} rows",
        )]
    return []
