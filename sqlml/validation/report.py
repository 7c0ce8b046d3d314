"""Statistics as rows: what ``ml_statistics`` returns, one row per column."""

from __future__ import annotations

from sqlml.validation import kinds
from sqlml.validation.statistics import HISTOGRAM_BUCKETS, QUANTILE_POINTS, DatasetStats

_HISTOGRAM = "STRUCT(low DOUBLE, high DOUBLE, count DOUBLE)[]"

#: Output columns of ml_statistics, in order: the keys of every ``statistics_rows`` row.
STATISTICS_COLUMNS = [
    ("column_name", "VARCHAR"),
    ("data_type", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("row_count", "BIGINT"),
    ("count", "BIGINT"),
    ("missing", "BIGINT"),
    ("missing_fraction", "DOUBLE"),
    ("distinct_count", "DOUBLE"),
    ("distinct_exact", "BOOLEAN"),
    ("min", "DOUBLE"),
    ("max", "DOUBLE"),
    ("mean", "DOUBLE"),
    ("std", "DOUBLE"),
    ("median", "DOUBLE"),
    ("zeros", "BIGINT"),
    ("nan", "BIGINT"),
    ("inf", "BIGINT"),
    ("min_value", "VARCHAR"),
    ("max_value", "VARCHAR"),
    ("quantiles", "STRUCT(q DOUBLE, value DOUBLE)[]"),
    ("equal_width_histogram", _HISTOGRAM),
    ("quantile_histogram", _HISTOGRAM),
    ("top_values", "STRUCT(value VARCHAR, count BIGINT)[]"),
    ("avg_length", "DOUBLE"),
    ("min_length", "BIGINT"),
    ("max_length", "BIGINT"),
    ("empty", "BIGINT"),
    ("stats_id", "BIGINT"),
]


def statistics_rows(stats: DatasetStats) -> list[dict]:
    rows = []
    for col in stats.columns.values():
        numeric = col.kind in kinds.NUMERIC and bool(col.sketch.counts)
        quantiles = col.quantiles() if numeric else None
        rows.append({
            "column_name": col.name,
            "data_type": col.data_type,
            "kind": col.kind,
            "row_count": stats.row_count,
            "count": col.count,
            "missing": col.missing,
            "missing_fraction": col.missing_fraction,
            "distinct_count": col.distinct,
            "distinct_exact": col.distinct_exact,
            "min": col.min,
            "max": col.max,
            "mean": col.mean,
            "std": col.std,
            "median": col.quantile(0.5) if numeric else None,
            "zeros": col.zeros,
            "nan": col.nan,
            "inf": col.inf,
            "min_value": col.min_value,
            "max_value": col.max_value,
            "quantiles": [{"q": q, "value": v} for q, v in zip(QUANTILE_POINTS, quantiles, strict=True)] if quantiles else None,
            "equal_width_histogram": _bins(col.sketch.equal_width(col.min, col.max, HISTOGRAM_BUCKETS)) if numeric else None,
            "quantile_histogram": _bins(col.sketch.equal_mass(col.min, col.max, HISTOGRAM_BUCKETS)) if numeric else None,
            "top_values": [{"value": v, "count": c} for v, c in col.top_values()] if col.values else None,
            "avg_length": col.avg_length,
            "min_length": col.min_length,
            "max_length": col.max_length,
            "empty": col.empty if col.kind in (kinds.STRING, kinds.LIST) else None,
            "stats_id": stats.stats_id,
        })
    return rows


def _bins(bins) -> list[dict]:
    return [{"low": lo, "high": hi, "count": round(c, 3)} for lo, hi, c in bins]
