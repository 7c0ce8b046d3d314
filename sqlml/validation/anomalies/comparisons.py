"""Comparisons with a baseline: drift (an earlier span) or training/serving skew.

Every threshold scales with the sample sizes, so two batches from one distribution stay
quiet whether they hold 100 rows or 10 million, while the least effect worth reporting
(``drift_jsd``, ``drift_linf`` of the schema column) keeps huge batches from flagging
trivial moves:

* numeric: Jensen-Shannon divergence over the baseline's decile bins: the baseline's
  counts from its sketch, the batch's counted in the validation scan with comparisons
  equivalent to the sketch's bucket keys (exact counts per bin, no sketch of the batch
  needed). Under no drift 8 N_eff ln2 JSD ~ chi2(bins-1).
* categorical: L-infinity distance of value frequencies; a value is flagged when its
  count is implausible under its pooled frequency (exact binomial tails for small
  counts, a two-proportion z test for large ones; Bonferroni over the K values) and it
  moved by more than ``drift_linf``.
* missing-rate shift: two-sided binomial test (exact tails for small counts), and at least
  one percentage point.
* mean shift: of the values clipped to the baseline's expected range, beyond
  Bernstein's bound for bounded values (valid however skewed the data), and at least 0.1
  of the baseline's (clipped) standard deviation.

With no baseline given, the baseline is the schema's reference (drift by default). Then
a column that already has an error (values out of range, a new category, too many
NULLs) is not compared too: the error says what happened, the drift would only repeat it.
"""

from __future__ import annotations

import math

from sqlml.validation import kinds, schema as schemas
from sqlml.validation.anomalies.model import Measurement
from sqlml.validation.reference import clipped_summary, drift_bins
from sqlml.validation.scan import Extra, finite_value
from sqlml.validation.significance import frequency_moved, jensen_shannon, jsd_threshold, mean_difference_bound, z_upper
from sqlml.validation.sketch import bucket_bounds, cut_conditions


def plan(run) -> list:
    """Counts of the batch in the baseline's drift bins, as cumulative comparisons in the scan."""
    if run.baseline is None:
        return []
    extras = []
    for expected, actual in run.checked():
        base = run.baseline.columns.get(actual.name)
        if actual.kind not in kinds.NUMERIC or expected.drift_jsd is None or base is None or base.kind not in kinds.NUMERIC:
            continue
        value = finite_value(run.source, actual.name)
        for i, (op, threshold) in enumerate(cut_conditions(drift_bins(base)[0])):
            extras.append(Extra(("drift_bin", actual.name, i), f"count_if({value} {op} ?)", [threshold]))
        clipped = clipped_summary(base)
        if clipped is not None:
            low, high = clipped[:2]  # (greatest() and least() skip NULLs: a CASE keeps them NULL)
            extras.append(Extra(("clipped_mean", actual.name), f"avg(CASE WHEN {value} < ? THEN ? WHEN {value} > ? THEN ? ELSE {value} END)",
                                [low, low, high, high]))
    return extras


def detect(run) -> list:
    if run.baseline is None:
        return []
    found = []
    explained = {a.column_name for a in run.found if a.is_error}
    for expected, actual in run.checked():
        base = run.baseline.columns.get(actual.name)
        cur = run.stats.columns[actual.name]
        if base is None or base.kind != cur.kind and not {base.kind, cur.kind} <= kinds.NUMERIC:
            continue
        if run.by_default and (actual.name in explained or not base.count):
            continue  # drift by default adds to the constraints: columns they flagged (or never saw) are not compared
        floors = _Floors.of(run, expected)
        found += _missing_shift(run, base, cur, floors)
        if cur.kind in kinds.NUMERIC and expected.drift_jsd is not None:
            found += _numeric(run, floors, base, cur)
            found += _mean_shift(run, base, cur, floors)
        elif cur.kind in (kinds.STRING, kinds.BOOLEAN) and expected.drift_linf is not None:
            found += _categorical(run, floors, base, cur)
    return found


class _Floors:
    """The least effects worth reporting: the column's own with a baseline, material ones by default."""

    def __init__(self, jsd, linf, missing, mean_std):
        self.jsd, self.linf, self.missing, self.mean_std = jsd, linf, missing, mean_std

    @classmethod
    def of(cls, run, expected):
        jsd, linf = expected.drift_jsd, expected.drift_linf
        if not run.by_default:
            return cls(jsd, linf, schemas.MIN_MISSING_SHIFT, schemas.MIN_MEAN_SHIFT_STD)
        return cls(
            None if jsd is None else max(jsd, schemas.MATERIAL_JSD), None if linf is None else max(linf, schemas.MATERIAL_LINF),
            schemas.MATERIAL_MISSING_SHIFT, schemas.MATERIAL_MEAN_SHIFT_STD,
        )


def _record(run, column, metric, value, threshold, base_rows, rows, flagged, detail=""):
    run.measurements.append(Measurement(column, metric, value, threshold, base_rows, rows, flagged, detail))


def _numeric(run, floors, base, cur) -> list:
    cuts, p = drift_bins(base)
    if not cuts or not cur.finite:
        return []  # a constant baseline (a partition column) has no distribution to drift from
    q = _batch_bins(run, cur, cuts)
    n_b, n_c = sum(p), sum(q)
    jsd = jensen_shannon(p, q)
    threshold = max(floors.jsd, jsd_threshold(len(p), n_c, n_b, run.alpha))
    flagged = jsd > threshold
    _record(run, cur.name, "jensen_shannon", jsd, threshold, n_b, n_c, flagged, f"{len(p)} baseline quantile bins")
    if not flagged:
        return []
    worst = max(range(len(p)), key=lambda i: abs(q[i] / n_c - p[i] / n_b))
    return [run.anomaly(
        "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH", cur.name,
        f"{_what(run)} in {cur.name!r}: Jensen-Shannon divergence {jsd:.4f} over the baseline's {len(p)} quantile bins; "
        f"values {_bin_text(cuts, worst)} went from {p[worst] / n_b:.1%} to {q[worst] / n_c:.1%}",
        family=run.comparison,
        observed=f"JSD {jsd:.4f} (mean {_fmt(cur.mean)}, baseline {_fmt(base.mean)})",
        expected=f"JSD <= {threshold:.4f} at {n_c:,} vs {n_b:,} values",
        metric=jsd, threshold=threshold,
    )]


def _batch_bins(run, cur, cuts: list[int]) -> list[int]:
    """The batch's counts per drift bin: from the scan's cumulative counts, or its sketch."""
    cumulative = [run.extras.get(("drift_bin", cur.name, i)) for i in range(len(cuts))]
    if any(c is None for c in cumulative):
        return cur.sketch.binned(cuts)
    edges = [0, *cumulative, cur.finite]
    return [max(0, edges[i + 1] - edges[i]) for i in range(len(cuts) + 1)]


def _categorical(run, floors, base, cur) -> list:
    n_b, n_c = base.count, cur.count
    if not n_b or not n_c:
        return []
    values = sorted(set(base.values) | set(cur.values))
    if not values:
        return []
    alpha = run.alpha / len(values)  # Bonferroni over the values compared
    linf, worst = 0.0, None
    flagged = []
    for v in values:
        cb = _count(base, v, cur.values.get(v, 0) / n_c * n_b)
        cc = _count(cur, v, cb / n_b * n_c)
        gap = abs(cc / n_c - cb / n_b)
        if gap > linf:
            linf, worst = gap, v
        if gap > floors.linf and frequency_moved(cc, n_c, cb, n_b, alpha):
            flagged.append((gap, v))
    _record(run, cur.name, "l_infinity", linf, floors.linf, n_b, n_c, bool(flagged), f"{len(values)} values; largest move {worst!r}")
    if not flagged:
        return []
    gap, value = max(flagged)
    before, after = _count(base, value, 0) / n_b, _count(cur, value, 0) / n_c
    return [run.anomaly(
        "COMPARATOR_L_INFTY_HIGH", cur.name,
        f"{_what(run)} in {cur.name!r}: value {value!r} went from {before:.2%} to {after:.2%} of rows"
        + (f" ({len(flagged)} values moved)" if len(flagged) > 1 else ""),
        family=run.comparison,
        observed=f"L-infinity {gap:.4f} ({value!r})",
        expected=f"moves below {floors.linf:.4f}, or within chance at {n_c:,} vs {n_b:,} values",
        examples=tuple(f"{v}: {_count(base, v, 0) / n_b:.2%} -> {_count(cur, v, 0) / n_c:.2%}" for _, v in sorted(flagged, reverse=True)[:5]),
        metric=gap, threshold=floors.linf,
    )]


def _count(stats, value: str, closest: float) -> float:
    """A value's count; for a truncated dictionary, the count within [0, floor] closest to ``closest``."""
    if value in stats.values:
        return float(stats.values[value])
    if stats.values_exact:
        return 0.0
    return min(max(closest, 0.0), float(stats.values_floor))


def _missing_shift(run, base, cur, floors) -> list:
    """The share of NULLs moved: exact binomial tails where counts are small (a 100-row batch
    expects 2.5 NULLs at 2.5%: 11 or more happen with probability 4e-5, which a z test calls significant at 1e-6)."""
    if not base.rows or not cur.rows:
        return []
    before, after = base.missing / base.rows, cur.missing / cur.rows
    pooled = (cur.missing + base.missing) / (cur.rows + base.rows)
    se = math.sqrt(pooled * (1 - pooled) * (1 / cur.rows + 1 / base.rows))
    threshold = max(floors.missing, z_upper(run.alpha / 2) * se)
    flagged = abs(after - before) >= floors.missing and frequency_moved(cur.missing, cur.rows, base.missing, base.rows, run.alpha)
    _record(run, cur.name, "missing_rate_shift", after - before, threshold, base.rows, cur.rows, flagged)
    if not flagged:
        return []
    return [run.anomaly(
        "MISSING_RATE_SHIFT", cur.name,
        f"{_what(run)} in {cur.name!r}: NULL in {after:.2%} of rows, {before:.2%} in the baseline",
        family=run.comparison, observed=f"{after:.2%} NULL", expected=f"{before:.2%} NULL (+- {threshold:.2%})",
        metric=after - before, threshold=threshold,
    )]


#: Fewer values say too little about a mean.
MIN_MEAN_VALUES = 30


def _mean_shift(run, base, cur, floors) -> list:
    """The mean moved, measured on values clipped to the baseline's expected range (its 0.1%-99.9%
    quantiles widened by half their spread) and tested with Bernstein's bound (valid for any bounded distribution: a z test on raw means
    took one 960-minute delay in a clean 100-row batch for a shift)."""
    clipped = clipped_summary(base)
    if clipped is None or base.finite < 2 or cur.finite < MIN_MEAN_VALUES:
        return []
    low, high, base_mean, variance = clipped
    std = math.sqrt(variance)
    if not std:
        return []
    mean = run.extras.get(("clipped_mean", cur.name))
    if mean is None:  # statistics with a sketch (ACCEPT): the same from it
        mean = cur.sketch.clipped_moments(low, high)[0] if cur.sketch.counts else None
    if mean is None:
        return []
    delta = mean - base_mean
    threshold = max(floors.mean_std * std, mean_difference_bound(variance, high - low, cur.finite, base.finite, run.alpha))
    flagged = abs(delta) > threshold
    _record(run, cur.name, "mean_shift", delta, threshold, base.finite, cur.finite, flagged,
            f"values clipped to [{low:.4g}, {high:.4g}]; baseline clipped std {std:.4g}")
    if not flagged:
        return []
    return [run.anomaly(
        "MEAN_SHIFT", cur.name,
        f"{_what(run)} in {cur.name!r}: mean {cur.mean:g}, baseline {base.mean:g} ({delta / std:+.2f} baseline std, "
        f"values clipped to [{low:.4g}, {high:.4g}])",
        family=run.comparison, observed=f"clipped mean {mean:g}", expected=f"clipped mean {base_mean:g} +- {threshold:g}",
        metric=delta, threshold=threshold,
    )]


def _bin_text(cuts: list[int], i: int) -> str:
    """Words for drift bin ``i`` (bins end at grid keys ``cuts``; the last is open)."""
    upper = lambda k: bucket_bounds(k)[1]  # noqa: E731
    if i == 0:
        return f"up to {upper(cuts[0]):.4g}"
    if i == len(cuts):
        return f"above {upper(cuts[-1]):.4g}"
    return f"in ({upper(cuts[i - 1]):.4g}, {upper(cuts[i]):.4g}]"


def _what(run) -> str:
    return "training/serving skew" if run.comparison == "skew" else "drift"


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:g}"
