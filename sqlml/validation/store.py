"""Statistics in the catalog: saved by dataset and span, read back, merged without rescans.

A dataset may hold many spans (a month, a day, a serving hour). Reading a dataset
without naming a span merges all its spans from their stored statistics. Bulk rows
(sketch buckets, values, histograms) go in through Arrow, not row-by-row inserts.
"""

from __future__ import annotations

from sqlml.errors import UnknownObjectError
from sqlml.sqlutil import fetch_value
from sqlml.validation import kinds
from sqlml.validation.rows import insert_rows
from sqlml.validation.sketch import Sketch
from sqlml.validation.statistics import (
    HISTOGRAM_BUCKETS,
    ColumnStats,
    DatasetStats,
    merge_datasets,
)

_COLUMN_FIELDS = (
    "position", "column_name", "data_type", "kind", "count", "missing", "nan", "pos_inf", "neg_inf", "zeros",
    "distinct_count", "distinct_exact", "min", "max", "min_value", "max_value", "finite", "mean", "m2", "std",
    "sum_length", "min_length", "max_length", "empty", "values_exact", "values_floor", "quantiles",
)


def save(duck, stats: DatasetStats, *, dataset: str, span: str | None = None) -> int:
    """Store ``stats`` as (dataset, span); the newest set of a (dataset, span) is the one read.

    Older sets stay (a history of the dataset's statistics, and the training statistics a
    schema version points to never change under it).
    """
    stats_id = fetch_value(duck, "SELECT nextval('sqlml.statistics_ids')")
    duck.execute(
        "INSERT INTO sqlml.statistics (stats_id, dataset, span, source, row_count, merged_from) VALUES (?, ?, ?, ?, ?, ?)",
        [stats_id, dataset, span, stats.source, stats.row_count, list(stats.merged_from) or None],
    )
    rows, sketches, values, histograms = [], [], [], []
    for col in stats.columns.values():
        rows.append(_column_row(stats_id, col))
        sketches += [(stats_id, col.name, k, c) for k, c in col.sketch.counts.items()]
        values += [(stats_id, col.name, v, c) for v, c in col.values.items()]
        histograms += _histogram_rows(stats_id, col)
    _insert(duck, "statistics_columns", ["stats_id", *_COLUMN_FIELDS], rows)
    _insert(duck, "statistics_sketches", ["stats_id", "column_name", "bucket", "count"], sketches)
    _insert(duck, "statistics_values", ["stats_id", "column_name", "value", "count"], values)
    _insert(duck, "statistics_histograms", ["stats_id", "column_name", "kind", "bucket", "low", "high", "count"], histograms)
    stats.stats_id, stats.dataset, stats.span = stats_id, dataset, span
    return stats_id


def _column_row(stats_id: int, col: ColumnStats) -> tuple:
    quantiles = col.quantiles()
    return (
        stats_id, col.position, col.name, col.data_type, col.kind, col.count, col.missing, col.nan, col.pos_inf,
        col.neg_inf, col.zeros, col.distinct, col.distinct_exact, col.min, col.max, col.min_value, col.max_value,
        col.finite, col.mean, col.m2, col.std, col.sum_length, col.min_length, col.max_length, col.empty,
        col.values_exact, col.values_floor, quantiles,
    )


def _histogram_rows(stats_id: int, col: ColumnStats) -> list[tuple]:
    if col.kind not in kinds.NUMERIC or not col.sketch.counts:
        return []
    rows = []
    for kind, bins in (
        ("equal_width", col.sketch.equal_width(col.min, col.max, HISTOGRAM_BUCKETS)),
        ("quantiles", col.sketch.equal_mass(col.min, col.max, HISTOGRAM_BUCKETS)),
    ):
        rows += [(stats_id, col.name, kind, i, lo, hi, float(c)) for i, (lo, hi, c) in enumerate(bins)]
    return rows


def _insert(duck, table: str, columns: list[str], rows: list[tuple]) -> None:
    types = _TYPES[table]
    insert_rows(duck, f"sqlml.{table}", {c: types[c] for c in columns}, rows)


_TYPES = {
    "statistics_columns": {
        "stats_id": "BIGINT", "position": "INTEGER", "column_name": "VARCHAR", "data_type": "VARCHAR", "kind": "VARCHAR",
        "count": "BIGINT", "missing": "BIGINT", "nan": "BIGINT", "pos_inf": "BIGINT", "neg_inf": "BIGINT",
        "zeros": "BIGINT", "distinct_count": "DOUBLE", "distinct_exact": "BOOLEAN", "min": "DOUBLE", "max": "DOUBLE",
        "min_value": "VARCHAR", "max_value": "VARCHAR", "finite": "BIGINT", "mean": "DOUBLE", "m2": "DOUBLE",
        "std": "DOUBLE", "sum_length": "BIGINT", "min_length": "BIGINT", "max_length": "BIGINT", "empty": "BIGINT",
        "values_exact": "BOOLEAN", "values_floor": "BIGINT", "quantiles": "DOUBLE[]",
    },
    "statistics_sketches": {"stats_id": "BIGINT", "column_name": "VARCHAR", "bucket": "INTEGER", "count": "BIGINT"},
    "statistics_values": {"stats_id": "BIGINT", "column_name": "VARCHAR", "value": "VARCHAR", "count": "BIGINT"},
    "statistics_histograms": {
        "stats_id": "BIGINT", "column_name": "VARCHAR", "kind": "VARCHAR", "bucket": "INTEGER",
        "low": "DOUBLE", "high": "DOUBLE", "count": "DOUBLE",
    },
}


def datasets(duck) -> list[str]:
    return [r[0] for r in duck.execute("SELECT DISTINCT dataset FROM sqlml.statistics ORDER BY 1").fetchall()]


def find(duck, dataset: str, span: str | None = None) -> list[int]:
    """The newest set of each span of a dataset (only ``span`` when given), in span order."""
    rows = duck.execute(
        "SELECT stats_id FROM sqlml.statistics WHERE dataset = ? AND (? IS NULL OR span = ?) "
        "QUALIFY row_number() OVER (PARTITION BY span ORDER BY stats_id DESC) = 1 ORDER BY span NULLS FIRST",
        [dataset, span, span],
    ).fetchall()
    return [r[0] for r in rows]


def load_dataset(duck, dataset: str, span: str | None = None) -> DatasetStats | None:
    """Stored statistics of a dataset, or None when nothing is stored.

    Without ``span``: the merge of all its spans when it was stored in spans, else the
    newest set stored for the dataset as a whole.
    """
    ids = find(duck, dataset, span)
    if not ids:
        return None
    parts = [load(duck, i) for i in ids]
    if span is None and len(parts) > 1:
        parts = [p for p in parts if p.span is not None]
    if len(parts) == 1:
        return parts[0]
    return merge_datasets(parts, dataset=dataset, span=None)


def load(duck, stats_id: int) -> DatasetStats:
    head = duck.execute(
        "SELECT row_count, source, dataset, span, merged_from FROM sqlml.statistics WHERE stats_id = ?", [stats_id]
    ).fetchall()
    if not head:
        raise UnknownObjectError("statistics", str(stats_id))
    row_count, source, dataset, span, merged_from = head[0]
    names = ", ".join(f'"{f}"' for f in _COLUMN_FIELDS)
    columns: dict[str, ColumnStats] = {}
    for row in duck.execute(f"SELECT {names} FROM sqlml.statistics_columns WHERE stats_id = ? ORDER BY position", [stats_id]).fetchall():
        r = dict(zip(_COLUMN_FIELDS, row, strict=True))
        columns[r["column_name"]] = ColumnStats(
            name=r["column_name"], data_type=r["data_type"], position=r["position"], count=r["count"],
            missing=r["missing"], nan=r["nan"], pos_inf=r["pos_inf"], neg_inf=r["neg_inf"], zeros=r["zeros"],
            distinct=r["distinct_count"], distinct_exact=r["distinct_exact"], min=r["min"], max=r["max"],
            min_value=r["min_value"], max_value=r["max_value"], finite=r["finite"], mean=r["mean"], m2=r["m2"],
            sum_length=r["sum_length"], min_length=r["min_length"], max_length=r["max_length"], empty=r["empty"],
            values_exact=r["values_exact"], values_floor=r["values_floor"],
        )
    sketches: dict[str, dict[int, int]] = {}
    for name, bucket, count in duck.execute(
        "SELECT column_name, bucket, count FROM sqlml.statistics_sketches WHERE stats_id = ?", [stats_id]
    ).fetchall():
        sketches.setdefault(name, {})[bucket] = count
    for name, counts in sketches.items():
        if name in columns:
            columns[name].sketch = Sketch(counts)
    for name, value, count in duck.execute(
        "SELECT column_name, value, count FROM sqlml.statistics_values WHERE stats_id = ?", [stats_id]
    ).fetchall():
        if name in columns:
            columns[name].values[value] = count
    for col in columns.values():  # numbers stored without value counts (before catalog 10, or many values)
        if col.kind in kinds.NUMERIC and not col.values and not col.values_exact:
            col.values_floor = col.count
    return DatasetStats(
        row_count=row_count, columns=columns, source=source or "", dataset=dataset, span=span,
        stats_id=stats_id, merged_from=tuple(merged_from or ()),
    )
