"""Inferring a data schema from statistics, where TFDV's heuristics are known to fail.

* **Presence** is the Wilson lower bound (z = 3) of the observed non-NULL fraction, or
  twice the observed missing rate when that is looser (batches differ: a month's
  cancellations run 0.8%-5% around 2.5%), not TFDV's "min_fraction = 1 if never
  missing, else nothing": a column missing 2% of the time may not go missing 50% of the
  time unnoticed.
* **String domains** for low-cardinality columns (at most ``max_domain_size`` values, each
  seen twice on average), with a tolerated out-of-domain mass: Good-Turing's chance of a
  value never seen, (values seen once + 1) / (n + 1), or the share of the rare values
  (seen under ``RARE_VALUE_COUNT`` times) when the vocabulary has a long tail, whose
  values come and go (a month's new destinations take up to 0.4% of another month's flights).
* **Numeric bounds** from the 0.1% and 99.9% quantiles widened by half their spread (and
  kept at 0 for columns never negative), never the exact training min/max; the mass the
  training data itself had outside the bounds is tolerated.
* **Strict ranges** (``valid_min``/``valid_max``: one value outside is an anomaly) only on
  strong evidence: calendar units, integer codes with sharp edges, never-negative
  columns, the unit interval (``ranges``). The tolerant range stays inside them.
* **Constant columns** (a month, a year in one partition) get no bounds or domain: a
  partition column is constant inside its partition by construction. TFDV made a
  ``bool_domain`` of January's ``month`` and flagged every other month. (A constant
  column named like a calendar unit still gets the unit's range: month 1 means 1..12.)
* **Key uniqueness** for integer or string columns whose values are all distinct over
  at least ``MIN_KEY_ROWS`` rows (exact count), or that the user names as keys. A key
  gets no range and no drift comparison: new ids are what keys do.
* **Environments**: label columns are expected in training only.

Every constraint set is recorded in the column's ``evidence`` with the rule, the reason
in words and a confidence: for a strict constraint the least share of clean values
satisfying it that the training rows leave plausible (``ranges.confidence``); for a
tolerant one the share it tolerates inside (``min_range_mass``, ``min_domain_mass``); for
presence the coverage of its bound. The schema also keeps a drift reference
(``reference``), so validation measures drift with no baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from statistics import NormalDist

from sqlml import bounds
from sqlml.errors import InvalidOptionError
from sqlml.validation import kinds, ranges, reference as references
from sqlml.validation.ranges import confidence
from sqlml.validation.schema import ColumnSchema, DataSchema
from sqlml.validation.significance import BOUND_Z, DEFAULT_ALPHA, wilson_bounds
from sqlml.validation.statistics import ColumnStats, DatasetStats

MAX_DOMAIN_SIZE = 100
#: A column may miss values up to this many times as often as in training (and at least the
#: Wilson bound allows): missing rates vary between batches far beyond binomial noise.
MISSING_SLACK = 2.0
#: Domain values seen fewer times than this (and than 0.1% of the rows) are its long tail:
#: new values may take their share.
RARE_VALUE_COUNT = 30
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
        if column.drift_jsd is not None:  # keys and time-span columns are not compared (see infer_column)
            column.drift_jsd, column.drift_linf = opts["drift_jsd"], opts["drift_linf"]
        if col.name in labels:
            column.environments = [TRAINING]
            column.notes = _join(column.notes, "label: expected in training only")
            add_evidence(column, "environment", "named the label", None)
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
        reference=references.build(stats),
    )


def infer_column(col: ColumnStats, *, max_domain_size: int = MAX_DOMAIN_SIZE, is_key: bool = False) -> ColumnSchema:
    kind = col.kind
    column = ColumnSchema(name=col.name, data_type=col.data_type, kind=kind, position=col.position, evidence=[])
    notes = []
    if col.rows == 0:
        notes.append("no rows in the source: only the type is known")
    elif col.count == 0:
        notes.append("always NULL in the source: no constraints")
    else:
        wilson, _ = wilson_bounds(col.count, col.rows)
        slack = 1.0 - MISSING_SLACK * col.missing / col.rows
        column.min_fraction = max(round(min(wilson, slack), 6), 0.0)
        _presence_evidence(column, col, by_slack=slack < wilson)
        constant = (col.distinct_exact and col.distinct == 1) or (kind in kinds.NUMERIC and col.min == col.max and col.finite > 0)
        key = is_key or _key_like(col)
        if kind in kinds.NUMERIC and not key:
            _strict_range(column, col, notes)
            if ranges.follows_time_span(col):
                column.drift_jsd = column.drift_linf = None
                notes.append("follows the dates a batch covers: no drift comparison")
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
                add_evidence(column, "length", f"every one of {col.count:,} lists", confidence(col.count))
        if kind in kinds.NUMERIC:  # integers and decimals cannot hold NaN: none is expected later either
            column.allow_nan = col.nan > 0
            column.allow_inf = col.inf > 0
            if kinds.is_ieee_float(col.data_type) and not col.nan:
                add_evidence(column, "nan", f"none in {col.count:,} values", confidence(col.count))
        if key:
            column.is_unique = True
            column.drift_jsd = column.drift_linf = None
            notes.append(("unique: a key" if is_key else f"unique over {col.count:,} rows: a key") + "; no range or drift")
            add_evidence(column, "unique", "named a key" if is_key else f"all {col.count:,} values distinct",
                         None if is_key else confidence(col.count))
    column.notes = "; ".join(notes)
    return column


def add_evidence(column: ColumnSchema, kind: str, reason: str, confidence_value: float | None) -> None:
    """Record (or replace) why ``column`` holds its constraint of this kind; the rule is read
    off the column as it is now (no rule left: the entry goes)."""
    rule = rule_text(column, kind)
    kept = [e for e in (column.evidence or []) if e["kind"] != kind]
    if rule is not None:
        kept.append({"kind": kind, "rule": rule, "reason": reason,
                     "confidence": None if confidence_value is None else round(confidence_value, 7)})
    column.evidence = kept


def rule_text(column: ColumnSchema, kind: str) -> str | None:
    """A constraint of ``column`` in words, or None when it holds none of this kind."""
    c, name = column, column.name
    if kind == "presence":
        return f"non-NULL in >= {c.min_fraction:.2%} of rows" if c.min_fraction else None
    if kind == "valid_range":
        return None if c.valid_min is None and c.valid_max is None else ranges.Closure(c.valid_min, c.valid_max, "").rule(name)
    if kind == "range":
        if c.min_value is None and c.max_value is None:
            return None
        outside = 1.0 - (c.min_range_mass if c.min_range_mass is not None else 1.0)
        return f"{_g(c.min_value, '-inf')} <= {name} <= {_g(c.max_value, 'inf')} but for {outside:.4%}"
    if kind == "domain":
        outside = 1.0 - (c.min_domain_mass if c.min_domain_mass is not None else 1.0)
        return None if c.domain is None else f"one of {len(c.domain)} values but for {outside:.4%}"
    if kind == "unique":
        return "values unique" if c.is_unique else None
    if kind == "nan":
        return None if c.allow_nan else "no NaN"
    if kind == "length":
        return None if c.min_length is None and c.max_length is None else f"{_g(c.min_length, '0')}..{_g(c.max_length, 'any')} values per row"
    if kind == "environment":
        return f"expected in {', '.join(c.environments)} only" if c.environments else None
    raise ValueError(f"no constraint kind {kind!r}")


def _g(x, missing: str) -> str:
    return missing if x is None else f"{x:g}"


def _presence_evidence(column: ColumnSchema, col: ColumnStats, *, by_slack: bool) -> None:
    if not column.min_fraction:
        return
    seen = f"NULL in {col.missing:,} of {col.rows:,} rows ({col.missing / col.rows:.2%})" if col.missing else f"never NULL in {col.rows:,} rows"
    how = (f"up to {MISSING_SLACK:g} times that tolerated (missing rates move between batches: monthly cancellations "
           f"0.8%-5% around 2.5%)" if by_slack else f"the lower confidence bound (Wilson, z = {BOUND_Z:g})")
    add_evidence(column, "presence", f"{seen}; {how}", NormalDist().cdf(BOUND_Z))


def _strict_range(column: ColumnSchema, col: ColumnStats, notes: list[str]) -> None:
    found = ranges.closure(col)
    if found is None:
        return
    column.valid_min, column.valid_max = found.low, found.high
    add_evidence(column, "valid_range", found.reason, confidence(col.finite))
    notes.append(f"valid: {found.rule(col.name)}")


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
    if column.valid_min is not None:  # the tolerant range never reaches past the strict one
        low = max(low, column.valid_min)
    if column.valid_max is not None:
        high = min(high, column.valid_max)
    column.min_value, column.max_value = _tidy(low), _tidy(high)
    outside = col.sketch.count_outside(column.min_value, column.max_value)
    column.min_range_mass = 1.0 - (outside + 1.0) / (col.finite + 1.0)
    if (column.min_value, column.max_value) == (column.valid_min, column.valid_max):
        return  # the strict range says it all
    how = f"the 0.1%-99.9% quantiles [{_tidy(q_lo):g}, {_tidy(q_hi):g}] widened by half their spread"
    notes.append(f"bounds from {how}")
    add_evidence(column, "range", f"{how}, in {col.finite:,} values", column.min_range_mass)


def _string_domain(column: ColumnSchema, col: ColumnStats, max_domain_size: int, notes: list[str]) -> None:
    distinct = int(col.distinct or 0)
    if not col.values_exact or distinct > max_domain_size or col.count < 2 * distinct:
        notes.append(f"{distinct:,} distinct values: no domain")
        return
    column.domain = sorted(col.values)
    singletons = sum(1 for c in col.values.values() if c == 1)
    rare = sum(c for c in col.values.values() if c < min(RARE_VALUE_COUNT, col.count / 1000))  # a tail needs many rows
    unseen = max((singletons + 1.0) / (col.count + 1.0), rare / col.count)
    column.min_domain_mass = 1.0 - unseen
    notes.append(f"domain of {distinct} values")
    rarest = min(col.values.values())
    how = ("Good-Turing's (values seen once + 1) / (rows + 1)" if unseen > rare / col.count
           else f"the share of values seen under {RARE_VALUE_COUNT} times (a long tail: such values come and go)")
    add_evidence(column, "domain", f"{distinct} distinct values in {col.count:,} rows, the rarest seen {rarest:,} time{'s' if rarest != 1 else ''}; "
                 f"new values may take {how}", column.min_domain_mass)


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
