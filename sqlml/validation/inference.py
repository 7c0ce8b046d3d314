"""Inferring a data schema from statistics, where TFDV's heuristics are known to fail.

* **Presence** is the Wilson lower bound (z = 3) of the observed non-NULL fraction, not
  TFDV's "min_fraction = 1 if never missing, else nothing": a column missing 2% of the
  time may not go missing 50% of the time unnoticed.
* **String domains** for low-cardinality columns (at most ``max_domain_size`` values, each
  seen twice on average), with a tolerated out-of-domain mass from Good-Turing: the
  chance of a value never seen is about (values seen once + 1) / (n + 1).
* **Numeric bounds** from the 0.1% and 99.9% quantiles widened by half their spread (and
  kept at 0 for columns never negative), never the exact training min/max; the mass the
  training data itself had outside the bounds is tolerated.
* **Constant columns** (a month, a year in one partition) get no bounds or domain: a
  partition column is constant inside its partition by construction. TFDV made a
  ``bool_domain`` of January's ``month`` and flagged every other month.
* **Key uniqueness** for integer or string columns whose values are all distinct over
  at least ``MIN_KEY_ROWS`` rows (exact count), or that the user names as keys. A key
  gets no range and no drift comparison: new ids are what keys do.
* **Environments**: label columns are expected in training only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sqlml import bounds
from sqlml.errors import InvalidOptionError
from sqlml.validation import kinds
from sqlml.validation.schema import ColumnSchema, DataSchema
from sqlml.validation.significance import DEFAULT_ALPHA, wilson_bounds
from sqlml.validation.statistics import ColumnStats, DatasetStats

MAX_DOMAIN_SIZE = 100
MIN_KEY_ROWS = 20
RANGE_MARGIN = 0.5  # bounds = [q0.001, q0.999] widened by this share of their spread
TRAINING = "training"

#: Options of CREATE DATA SCHEMA ... WITH (...), with their defaults.
OPTIONS = {
    "label": None,  # a column (or list) expected only in training
    "key": None,  # a column (or list) that must be unique
    "max_domain_size": MAX_DOMAIN_SIZE,
    "min_rows": 1,
    "max_rows": None,
    "significance": DEFAULT_ALPHA,
    "drift_jsd": 0.01,
    "drift_linf": 0.01,
    "dataset": None,  # where the training statistics are stored (default: the source text)
    "span": None,
}


#: The range of each numeric option (docs/limits.md).
RANGES = {
    "max_domain_size": bounds.whole(0, 1_000_000),
    "min_rows": bounds.whole(0, bounds.MAX_COUNT),
    "max_rows": bounds.whole(0, bounds.MAX_COUNT),
    "significance": bounds.number(0, 0.5, low_open=True, high_open=True),
    "drift_jsd": bounds.number(0, 1),
    "drift_linf": bounds.number(0, 1),
}


def check_options(options: dict, where: str = "CREATE DATA SCHEMA") -> dict:
    unknown = [k for k in options if k not in OPTIONS]
    if unknown:
        raise InvalidOptionError(where, unknown[0], allowed=OPTIONS)
    merged = {**OPTIONS, **options}
    for name, check in RANGES.items():
        if merged[name] is not None:
            bounds.require(where, name, merged[name], check)
    if merged["max_rows"] is not None and merged["min_rows"] is not None and merged["min_rows"] > merged["max_rows"]:
        raise InvalidOptionError(where, "min_rows", f"min_rows {merged['min_rows']} is above max_rows {merged['max_rows']}")
    return merged


def columns_option(value, where: str, option: str, available: Iterable[str]) -> list[str]:
    """A column name or list of names, each present in the data."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    available = list(available)
    for n in names:
        if not isinstance(n, str) or n not in available:
            raise InvalidOptionError(where, option, f"no column {n!r} in the data", allowed=available)
    return names


def key_candidates(stats: DatasetStats) -> list[ColumnStats]:
    """Columns whose uniqueness needs an exact distinct count to decide."""
    return [
        c for c in stats.columns.values()
        if c.kind in (kinds.INTEGER, kinds.STRING) and c.count >= MIN_KEY_ROWS and c.missing == 0
        and not c.distinct_exact and (c.distinct or 0) >= 0.9 * c.count
    ]


def infer(stats: DatasetStats, name: str, options: dict | None = None) -> DataSchema:
    """A version-1 schema for data like ``stats`` describes."""
    opts = check_options(options or {})
    labels = set(columns_option(opts["label"], "CREATE DATA SCHEMA", "label", stats.columns))
    keys = set(columns_option(opts["key"], "CREATE DATA SCHEMA", "key", stats.columns))
    columns = {}
    for col in stats.columns.values():
        column = infer_column(col, max_domain_size=opts["max_domain_size"], is_key=col.name in keys)
        if not column.is_unique:  # a key's values are new in every batch: its "drift" means nothing
            column.drift_jsd, column.drift_linf = opts["drift_jsd"], opts["drift_linf"]
        if col.name in labels:
            column.environments = [TRAINING]
            column.notes = _join(column.notes, "label: expected in training only")
        columns[col.name] = column
    return DataSchema(
        name=name,
        version=1,
        columns=columns,
        source=stats.source,
        stats_id=stats.stats_id,
        min_rows=opts["min_rows"],
        max_rows=opts["max_rows"],
        significance=float(opts["significance"]),
    )


def infer_column(col: ColumnStats, *, max_domain_size: int = MAX_DOMAIN_SIZE, is_key: bool = False) -> ColumnSchema:
    kind = col.kind
    column = ColumnSchema(name=col.name, data_type=col.data_type, kind=kind, position=col.position)
    notes = []
    if col.rows == 0:
        notes.append("no rows in the source: only the type is known")
    elif col.count == 0:
        notes.append("always NULL in the source: no constraints")
    else:
        low, _ = wilson_bounds(col.count, col.rows)
        column.min_fraction = round(low, 6) if col.missing else max(round(low, 6), 0.0)
        constant = (col.distinct_exact and col.distinct == 1) or (kind in kinds.NUMERIC and col.min == col.max and col.finite > 0)
        key = is_key or _key_like(col)
        if constant and not is_key:
            notes.append(f"constant in the source ({_constant_text(col)}): a partition column? no values inferred")
        elif kind in kinds.NUMERIC and key:
            pass  # ids keep growing: a key's range says nothing about the next batch
        elif kind in kinds.NUMERIC:
            _numeric_bounds(column, col, notes)
        elif kind == kinds.STRING:
            _string_domain(column, col, max_domain_size, notes)
        elif kind == kinds.TEMPORAL:
            notes.append("time moves on: no range inferred")
        if kind == kinds.LIST and col.min_length is not None:
            column.min_length = col.min_length
            if col.min_length == col.max_length:
                column.max_length = col.max_length
                notes.append(f"always {col.max_length} values per row")
        if kind in kinds.NUMERIC:  # integers and decimals cannot hold NaN: none is expected later either
            column.allow_nan = col.nan > 0
            column.allow_inf = col.inf > 0
        if key:
            column.is_unique = True
            column.drift_jsd = column.drift_linf = None
            notes.append(("unique: a key" if is_key else f"unique over {col.count:,} rows: a key") + "; no range or drift")
    column.notes = "; ".join(notes)
    return column


def _numeric_bounds(column: ColumnSchema, col: ColumnStats, notes: list[str]) -> None:
    if not col.sketch.counts:
        return
    q_lo, q_hi = col.quantile(0.001), col.quantile(0.999)
    spread = q_hi - q_lo
    if spread <= 0:
        spread = col.max - col.min
    low, high = q_lo - RANGE_MARGIN * spread, q_hi + RANGE_MARGIN * spread
    if col.min >= 0 and low < 0:
        low = 0.0
    if column.kind == kinds.INTEGER:
        low, high = float(math.ceil(low)), float(math.floor(high))
    column.min_value, column.max_value = _tidy(low), _tidy(high)
    outside = col.sketch.count_outside(column.min_value, column.max_value)
    column.min_range_mass = 1.0 - (outside + 1.0) / (col.finite + 1.0)
    notes.append(f"bounds from the 0.1%-99.9% quantiles [{_tidy(q_lo):g}, {_tidy(q_hi):g}] widened by half their spread")


def _string_domain(column: ColumnSchema, col: ColumnStats, max_domain_size: int, notes: list[str]) -> None:
    distinct = int(col.distinct or 0)
    if not col.values_exact or distinct > max_domain_size or col.count < 2 * distinct:
        notes.append(f"{distinct:,} distinct values: no domain")
        return
    column.domain = sorted(col.values)
    singletons = sum(1 for c in col.values.values() if c == 1)
    column.min_domain_mass = 1.0 - (singletons + 1.0) / (col.count + 1.0)
    notes.append(f"domain of {distinct} values")


def _key_like(col: ColumnStats) -> bool:
    return (
        col.kind in (kinds.INTEGER, kinds.STRING)
        and col.count >= MIN_KEY_ROWS
        and col.missing == 0
        and col.distinct_exact
        and int(col.distinct) == col.count
    )


def _constant_text(col: ColumnStats) -> str:
    if col.kind in kinds.NUMERIC and col.min is not None:
        return f"{col.min:g}"
    if col.values:
        return repr(next(iter(col.values)))
    return repr(col.min_value) if col.min_value is not None else "one value"


def _tidy(x: float) -> float:
    """Round a bound to 6 significant digits (bounds are approximate anyway)."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.6g}")


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
