"""A schema's drift reference: the few numbers drift needs, kept with each schema version.

``ml_validate(batch, schema)`` compares a batch with this reference when no baseline is
given, so drift, mean and missing-rate shifts are checked by default. Per column it holds
what the comparisons read and no more (about 30 numbers for a numeric column, at most
``REFERENCE_VALUES`` values for a categorical one, against the thousands of sketch buckets
of full statistics):

* counts: rows, non-NULL values, finite values; mean and M2 (the variance); a clip range
  (the 0.1%-99.9% quantiles widened by half their spread) with the mean and variance of
  the values clipped to it, for mean shifts;
* numeric columns: the drift bins, i.e. the sketch grid keys cutting the training values
  into ``DRIFT_BINS`` near-equal-mass bins, with the count per bin. A batch is counted into
  the same bins exactly (comparisons equivalent to the grid keys), so nothing is
  approximated;
* string and boolean columns: the most frequent values with their counts, and a floor
  no unlisted value exceeds (as in ``statistics``).

CREATE DATA SCHEMA builds it from the training statistics, ACCEPT from the accepted
batch's (drift since the data last accepted); every other new version copies it.
"""

from __future__ import annotations

from dataclasses import replace

from sqlml.validation import kinds
from sqlml.validation.rows import insert_rows
from sqlml.validation.statistics import ColumnStats, DatasetStats

#: Equal-mass bins numeric drift is measured over.
DRIFT_BINS = 10
#: Values kept per categorical column (the rest share the floor).
REFERENCE_VALUES = 200

_TYPES = {
    "schema_name": "VARCHAR", "version": "INTEGER", "column_name": "VARCHAR", "data_type": "VARCHAR", "rows": "BIGINT",
    "count": "BIGINT", "finite": "BIGINT", "mean": "DOUBLE", "m2": "DOUBLE", "cuts": "INTEGER[]", "bin_counts": "BIGINT[]",
    "values": "VARCHAR[]", "value_counts": "BIGINT[]", "values_exact": "BOOLEAN", "values_floor": "BIGINT",
    "clip_low": "DOUBLE", "clip_high": "DOUBLE", "clipped_mean": "DOUBLE", "clipped_var": "DOUBLE",
}


def drift_bins(col: ColumnStats) -> tuple[list[int], list[int]]:
    """(cut keys, counts per bin) of a numeric column: a reference's own, else from its sketch."""
    if col.bins is not None:
        return col.bins
    cuts = col.sketch.cut_points(DRIFT_BINS)
    return cuts, col.sketch.binned(cuts)


#: Mean shifts are measured on values clipped to the baseline's 0.1%-99.9% quantiles widened by
#: half their spread (the tolerant range inference gives a column), so one extreme value (a
#: 960-minute delay in a 100-row batch) cannot move the mean alone, while a shifted batch is
#: still inside the clip (clipping at the quantiles themselves hides a shift past them).
CLIP_POINTS = (0.001, 0.999)
CLIP_MARGIN = 0.5


def clipped_summary(col: ColumnStats) -> tuple[float, float, float, float] | None:
    """(low, high, mean, variance) of a numeric column's values clipped to [low, high]: a
    reference's own, else from the sketch; None without values."""
    if col.clipped is not None:
        return col.clipped
    if not col.sketch.counts:
        return None
    q_low, q_high = col.quantiles(CLIP_POINTS)
    spread = q_high - q_low
    low, high = q_low - CLIP_MARGIN * spread, q_high + CLIP_MARGIN * spread
    return (low, high, *col.sketch.clipped_moments(low, high))


def build(stats: DatasetStats) -> DatasetStats:
    """The reference of full statistics (with sketches and values)."""
    columns = {name: _column(col) for name, col in stats.columns.items()}
    return DatasetStats(row_count=stats.row_count, columns=columns, source=stats.source)


def _column(col: ColumnStats) -> ColumnStats:
    ref = ColumnStats(
        name=col.name, data_type=col.data_type, position=col.position, count=col.count, missing=col.missing,
        finite=col.finite, mean=col.mean, m2=col.m2, values_exact=False, values_floor=col.count,
    )
    if col.kind in kinds.NUMERIC and col.sketch.counts:
        ref.bins = drift_bins(col)
        ref.clipped = clipped_summary(col)
    if col.kind in (kinds.STRING, kinds.BOOLEAN):
        ref.values, ref.values_exact, ref.values_floor = _top(col.values, col.values_exact, col.values_floor)
    return ref


def _top(values: dict[str, int], exact: bool, floor: int) -> tuple[dict[str, int], bool, int]:
    if len(values) <= REFERENCE_VALUES:
        return dict(values), exact, floor
    kept = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:REFERENCE_VALUES]
    return dict(kept), False, max(floor, kept[-1][1])


def save(duck, schema_name: str, version: int, reference: DatasetStats) -> None:
    rows = []
    for col in reference.columns.values():
        cuts, counts = col.bins if col.bins is not None else (None, None)
        ordered = sorted(col.values.items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append((
            schema_name, version, col.name, col.data_type, col.rows, col.count, col.finite, col.mean, col.m2, cuts, counts,
            [v for v, _ in ordered], [c for _, c in ordered], col.values_exact, col.values_floor,
            *(col.clipped or (None, None, None, None)),
        ))
    insert_rows(duck, "sqlml.data_schema_reference", _TYPES, rows)


def load(duck, schema_name: str, version: int) -> DatasetStats | None:
    """The reference of a schema version, or None (a schema written before references)."""
    fields = [f for f in _TYPES if f not in ("schema_name", "version")]
    found = duck.execute(
        f"SELECT {', '.join(chr(34) + f + chr(34) for f in fields)} FROM sqlml.data_schema_reference "
        "WHERE schema_name = ? AND version = ? ORDER BY rowid",
        [schema_name, version],
    ).fetchall()
    if not found:
        return None
    columns = {}
    for position, row in enumerate(found):
        r = dict(zip(fields, row, strict=True))
        col = ColumnStats(
            name=r["column_name"], data_type=r["data_type"], position=position, count=r["count"],
            missing=r["rows"] - r["count"], finite=r["finite"], mean=r["mean"], m2=r["m2"],
            values=dict(zip(r["values"] or [], r["value_counts"] or [], strict=True)),
            values_exact=r["values_exact"], values_floor=r["values_floor"],
        )
        if r["cuts"] is not None:
            col.bins = (list(r["cuts"]), list(r["bin_counts"]))
        if r["clipped_mean"] is not None:
            col.clipped = (r["clip_low"], r["clip_high"], r["clipped_mean"], r["clipped_var"])
        columns[col.name] = col
    return DatasetStats(row_count=max(c.rows for c in columns.values()), columns=columns, source="(schema reference)")


def copy(reference: DatasetStats | None) -> DatasetStats | None:
    """A copy a new schema version can change without touching its parent's."""
    if reference is None:
        return None
    return replace(reference, columns={k: replace(v, values=dict(v.values)) for k, v in reference.columns.items()})
