"""Statistics of a dataset: what one scan learns about each column, and how batches merge.

Every field is chosen to merge without the rows: counts and sums add; min and max take
the extreme; mean and variance merge through (n, mean, M2) with Chan's formula; numeric
distributions are a fixed-grid ``Sketch`` whose counts add; string values are an exact
dictionary while a column has at most ``MAX_VALUES`` distinct values, otherwise the top
values with a floor (no unlisted value occurs more often than the floor), which merges
with an error bound as in Misra-Gries. Distinct counts are exact for dictionaries and
otherwise HyperLogLog estimates; a merged estimate is the largest of the parts (a lower
bound), marked approximate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sqlml.validation import kinds
from sqlml.validation.sketch import Sketch

#: String values kept per column: every value while there are at most this many.
MAX_VALUES = 1000
#: Quantiles reported by ml_statistics (min, deciles, max plus the tails).
QUANTILE_POINTS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0)
HISTOGRAM_BUCKETS = 10
TOP_K = 10


@dataclass
class ColumnStats:
    name: str
    data_type: str
    position: int = 0
    count: int = 0  # non-NULL values
    missing: int = 0  # NULL values
    nan: int = 0
    pos_inf: int = 0
    neg_inf: int = 0
    zeros: int = 0
    distinct: float | None = None
    distinct_exact: bool = False
    min: float | None = None  # finite numeric values
    max: float | None = None
    min_value: str | None = None  # any ordered type, as text
    max_value: str | None = None
    finite: int = 0  # values entering mean/M2/sketch
    mean: float | None = None
    m2: float | None = None  # sum of squared deviations from the mean
    sum_length: int = 0  # strings: characters; lists: elements
    min_length: int | None = None
    max_length: int | None = None
    empty: int = 0  # empty strings or lists
    sketch: Sketch = field(default_factory=Sketch)
    values: dict[str, int] = field(default_factory=dict)
    values_exact: bool = False
    values_floor: int = 0  # no unlisted value occurs more than this
    #: drift bins fixed by a schema's reference (cut keys, counts); None: from the sketch
    bins: tuple[list[int], list[int]] | None = None
    #: a reference's (low, high, mean, variance) of the values clipped to [low, high]; None: from the sketch
    clipped: tuple[float, float, float, float] | None = None

    @property
    def kind(self) -> str:
        return kinds.kind_of(self.data_type)

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def missing_fraction(self) -> float | None:
        return self.missing / self.rows if self.rows else None

    @property
    def inf(self) -> int:
        return self.pos_inf + self.neg_inf

    @property
    def std(self) -> float | None:
        """The sample standard deviation, sqrt(M2 / (n - 1)) over the finite values (pandas' and
        SQL ``stddev``'s convention). TFDV's ``std_dev`` is the population one, sqrt(M2 / n):
        smaller by a factor sqrt((n - 1) / n), which only matters on small batches."""
        if self.m2 is None or self.finite < 2:
            return 0.0 if self.finite == 1 else None
        return math.sqrt(max(self.m2, 0.0) / (self.finite - 1))

    @property
    def avg_length(self) -> float | None:
        return self.sum_length / self.count if self.count and self.min_length is not None else None

    @property
    def other_count(self) -> int:
        """Non-NULL values not in ``values`` (0 for an exact dictionary)."""
        return max(0, self.count - sum(self.values.values()))

    def quantiles(self, points=QUANTILE_POINTS) -> list[float | None] | None:
        """Quantiles from the sketch (rank floor(q (n-1)), within 0.5% relative error), clipped to
        the exact min/max; on integer columns an integer wherever that keeps the error bound."""
        if self.kind not in kinds.NUMERIC or not self.sketch.counts:
            return None
        return self.sketch.quantiles(points, self.min, self.max, integer=self.kind == kinds.INTEGER)

    def quantile(self, q: float) -> float | None:
        found = self.quantiles((q,))
        return found[0] if found else None

    def top_values(self, k: int = TOP_K) -> list[tuple[str, int]]:
        return sorted(self.values.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


@dataclass
class DatasetStats:
    row_count: int
    columns: dict[str, ColumnStats]
    source: str = ""
    dataset: str | None = None
    span: str | None = None
    stats_id: int | None = None
    merged_from: tuple[int, ...] = ()

    def column(self, name: str) -> ColumnStats | None:
        return self.columns.get(name)


# -- merging --------------------------------------------------------------------------


def merge_datasets(parts: list[DatasetStats], *, dataset: str | None = None, span: str | None = None) -> DatasetStats:
    """Statistics of the union of the parts' rows, from the parts alone."""
    if not parts:
        raise ValueError("nothing to merge")
    merged = parts[0]
    for part in parts[1:]:
        columns = dict(merged.columns)
        for name, col in part.columns.items():
            columns[name] = merge_columns(columns[name], col) if name in columns else _padded(col, merged.row_count)
        for name in merged.columns:
            if name not in part.columns:
                columns[name] = merge_columns(columns[name], _absent(columns[name], part.row_count))
        merged = DatasetStats(row_count=merged.row_count + part.row_count, columns=columns)
    ids = tuple(p.stats_id for p in parts if p.stats_id is not None)
    sources = sorted({p.source for p in parts if p.source})
    return replace(merged, dataset=dataset, span=span, stats_id=None, merged_from=ids, source=" + ".join(sources))


def merge_columns(a: ColumnStats, b: ColumnStats) -> ColumnStats:
    """Merge two columns' statistics (same column, disjoint rows)."""
    n = a.finite + b.finite
    if a.finite == 0:
        mean, m2 = b.mean, b.m2
    elif b.finite == 0:
        mean, m2 = a.mean, a.m2
    else:  # Chan et al.: parallel mean and M2
        delta = b.mean - a.mean
        mean = a.mean + delta * b.finite / n
        m2 = a.m2 + b.m2 + delta * delta * a.finite * b.finite / n
    values, exact, floor = _merge_values(a, b)
    if exact:
        distinct, distinct_exact = float(len(values)), True
    else:
        distinct = max(x for x in (a.distinct, b.distinct, 0.0) if x is not None)
        distinct_exact = False
    return ColumnStats(
        name=a.name,
        data_type=a.data_type,
        position=a.position,
        count=a.count + b.count,
        missing=a.missing + b.missing,
        nan=a.nan + b.nan,
        pos_inf=a.pos_inf + b.pos_inf,
        neg_inf=a.neg_inf + b.neg_inf,
        zeros=a.zeros + b.zeros,
        distinct=distinct,
        distinct_exact=distinct_exact,
        min=_extreme(min, a.min, b.min),
        max=_extreme(max, a.max, b.max),
        min_value=_extreme(min, a.min_value, b.min_value),
        max_value=_extreme(max, a.max_value, b.max_value),
        finite=n,
        mean=mean,
        m2=m2,
        sum_length=a.sum_length + b.sum_length,
        min_length=_extreme(min, a.min_length, b.min_length),
        max_length=_extreme(max, a.max_length, b.max_length),
        empty=a.empty + b.empty,
        sketch=a.sketch.merge(b.sketch),
        values=values,
        values_exact=exact,
        values_floor=floor,
    )


def _merge_values(a: ColumnStats, b: ColumnStats) -> tuple[dict[str, int], bool, int]:
    """Exact dictionaries add exactly; a truncated side adds its floor to the error bound."""
    values = dict(a.values)
    for v, c in b.values.items():
        values[v] = values.get(v, 0) + c
    exact = (a.values_exact or a.count == 0) and (b.values_exact or b.count == 0)
    floor = a.values_floor + b.values_floor
    if exact and len(values) > MAX_VALUES:
        exact = False
    if len(values) > MAX_VALUES:
        kept = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_VALUES]
        floor = max(floor, kept[-1][1])
        values = dict(kept)
    return values, exact, floor


def _extreme(fn, x, y):
    if x is None:
        return y
    if y is None:
        return x
    return fn(x, y)


def _padded(col: ColumnStats, rows_before: int) -> ColumnStats:
    """A column first seen in a later part was absent (NULL) in the earlier rows."""
    return merge_columns(_absent(col, rows_before), col)


def _absent(col: ColumnStats, rows: int) -> ColumnStats:
    return ColumnStats(name=col.name, data_type=col.data_type, position=col.position, missing=rows, values_exact=True, distinct=0.0, distinct_exact=True)
