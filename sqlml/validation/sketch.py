"""A mergeable distribution sketch for numeric columns: counts over a fixed log grid.

Each finite value x falls in bucket ``key(x)``: 0 for zero, ``+(ceil(log_g x) + OFFSET)``
for x > 0 and ``-(ceil(log_g |x|) + OFFSET)`` for x < 0, with g = (1+a)/(1-a) and
a = 0.5% (the relative-accuracy grid of DDSketch, Masson et al., VLDB 2019). Why this
grid rather than per-span quantiles or equal-width bins:

* **Mergeable exactly.** The grid does not depend on the data, so the sketch of a union of
  batches is the sum of their counts per key; nothing is rescanned and nothing is lost.
* **One SQL aggregate.** ``histogram(key_expr)`` computes it in the same scan as every other
  statistic; the number of keys is bounded by the dynamic range (about 460 keys per
  decade), not by the row count, so memory stays bounded on any number of rows.
* **Quantiles within 0.5% relative error**, and equal-width and equal-mass histograms follow.
* **Drift without binning error.** Drift bins are runs of grid buckets cut at the
  baseline's quantiles, so a batch's count per bin is exact, from its own sketch.

Integer keys sort in value order (negative keys are the negative values), which every
function below relies on. The weakness: values far from zero relative to their spread
(epoch seconds, 1e9 +- 10) share few buckets, so their quantiles are coarse.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping

ACCURACY = 0.005
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
LOG_GAMMA = math.log(GAMMA)
OFFSET = 3000  # keeps positive keys above 0 down to |x| = 1e-12
SMALLEST = 1e-12  # magnitudes below this share the lowest bucket


def key_sql(value_sql: str) -> str:
    """SQL for the bucket key of a DOUBLE expression (NULL stays NULL; sign(0) makes 0 key 0)."""
    inv = repr(1.0 / LOG_GAMMA)
    return (
        f"CAST(sign({value_sql}) AS INTEGER) * "
        f"(CAST(ceil(ln(greatest(abs({value_sql}), {SMALLEST!r})) * {inv}) AS INTEGER) + {OFFSET})"
    )


def positive_key_sql(value_sql: str) -> str:
    """``key_sql`` for values known to be > 0 (the same keys, fewer operations per row)."""
    inv = repr(1.0 / LOG_GAMMA)
    return f"CAST(ceil(ln(greatest({value_sql}, {SMALLEST!r})) * {inv}) AS INTEGER) + {OFFSET}"


def bucket_bounds(key: int) -> tuple[float, float]:
    """The value interval a key covers (closed at the magnitude's upper end)."""
    if key == 0:
        return 0.0, 0.0
    i = abs(key) - OFFSET
    low, high = _power(i - 1), _power(i)
    return (low, high) if key > 0 else (-high, -low)


def representative(key: int) -> float:
    """The value reported for a bucket: relative error at most ACCURACY."""
    if key == 0:
        return 0.0
    i = abs(key) - OFFSET
    value = 2.0 * _power(i) / (GAMMA + 1.0)
    return value if key > 0 else -value


def integer_in_bucket(key: int, value: float, lowest: float | None = None, highest: float | None = None) -> float:
    """An integer standing for ``value`` (a quantile in bucket ``key`` of integer data), if one
    is within ACCURACY of every integer the bucket can hold; else ``value`` itself.

    Rounding the representative alone could move it up to half a unit further, past the
    promised error (a median of 130 in a bucket holding 130 and 131 reported as 131: 0.77%).
    The bounds are widened by a relative 1e-9 so that a key computed in SQL near a bucket
    edge never leaves an integer out.
    """
    low, high = bucket_bounds(key)
    low, high = low - abs(low) * 1e-9, high + abs(high) * 1e-9
    if lowest is not None:
        low = max(low, lowest)
    if highest is not None:
        high = min(high, highest)
    first, last = math.ceil(low), math.floor(high)
    if first > last:
        return value
    if first == last:
        return float(first)
    nearest = min(max(round(value), first), last)
    worst = max(abs(nearest - first) / max(abs(first), 1e-300), abs(last - nearest) / max(abs(last), 1e-300))
    return float(nearest) if worst <= ACCURACY else value


def _power(i: int) -> float:
    try:
        return GAMMA**i
    except OverflowError:
        return math.inf


class Sketch:
    """Counts per grid key, with the summaries that follow from them."""

    __slots__ = ("counts", "_keys", "_cumulative", "_arrays")

    def __init__(self, counts: Mapping[int, int] | None = None):
        self.counts: dict[int, int] = {int(k): int(v) for k, v in (counts or {}).items() if v}
        self._keys: list[int] | None = None
        self._cumulative: list[int] | None = None
        self._arrays = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def keys(self) -> list[int]:
        if self._keys is None:
            self._keys = sorted(self.counts)
            running, cumulative = 0, []
            for k in self._keys:
                running += self.counts[k]
                cumulative.append(running)
            self._cumulative = cumulative
        return self._keys

    def arrays(self):
        """(counts, low bounds, high bounds) per key in key order, as numpy arrays (computed once).

        The histogram helpers work on these: a sketch holds thousands of keys, and a Python
        loop over them cost more than the SQL that counted them. The bounds are
        ``bucket_bounds``' own values.
        """
        if self._arrays is None:
            import numpy as np  # loaded with duckdb already

            keys = self.keys()
            bounds = [bucket_bounds(k) for k in keys]
            self._arrays = (
                np.array([self.counts[k] for k in keys], dtype=float),
                np.array([b[0] for b in bounds], dtype=float),
                np.array([b[1] for b in bounds], dtype=float),
            )
        return self._arrays

    def clipped_moments(self, low: float, high: float) -> tuple[float, float]:
        """Mean and (population) variance of the values clipped to [low, high], each value
        read as its bucket's representative (within ACCURACY)."""
        import numpy as np

        counts, _, _ = self.arrays()
        values = np.clip(np.array([representative(k) for k in self.keys()], dtype=float), low, high)
        total = counts.sum()
        mean = float((counts * values).sum() / total)
        return mean, float((counts * (values - mean) ** 2).sum() / total)

    def merge(self, other: Sketch) -> Sketch:
        merged = dict(self.counts)
        for k, v in other.counts.items():
            merged[k] = merged.get(k, 0) + v
        return Sketch(merged)

    # -- quantiles and histograms ------------------------------------------------------
    def quantile(self, q: float, lowest: float | None = None, highest: float | None = None, integer: bool = False) -> float | None:
        """The q-quantile (0..1): the value of rank floor(q (n - 1)) (numpy's ``method='lower'``),
        within ACCURACY relative error, clipped to the exact min/max when given.

        ``integer``: the data are integers, so the true quantile is one of the integers the
        bucket covers: the only one (then exact), or the one nearest the representative
        when that is within ACCURACY of each of them; otherwise the representative stands.
        """
        keys = self.keys()
        if not keys:
            return None
        if q <= 0 and lowest is not None:
            return lowest
        if q >= 1 and highest is not None:
            return highest
        rank = q * (self._cumulative[-1] - 1)
        i = bisect.bisect_right(self._cumulative, rank)
        key = keys[min(i, len(keys) - 1)]
        value = representative(key)
        if lowest is not None:
            value = max(value, lowest)
        if highest is not None:
            value = min(value, highest)
        return integer_in_bucket(key, value, lowest, highest) if integer else value

    def quantiles(self, probabilities: Iterable[float], lowest=None, highest=None, integer: bool = False) -> list[float | None]:
        return [self.quantile(q, lowest, highest, integer) for q in probabilities]

    def count_outside(self, low: float | None, high: float | None) -> float:
        """Approximate number of values below ``low`` or above ``high`` (uniform in buckets)."""
        if not self.counts:
            return 0.0
        import numpy as np

        counts, lo, hi = self.arrays()
        width = hi - lo
        outside = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            if low is not None:
                whole = (hi <= low) | (width == 0)
                share = np.where(whole, 1.0, (low - lo) / width)
                outside += float(np.sum(np.where(lo < low, counts * share, 0.0)))
            if high is not None:
                whole = (lo >= high) | (width == 0)
                share = np.where(whole, 1.0, (hi - high) / width)
                outside += float(np.sum(np.where(hi > high, counts * share, 0.0)))
        return outside

    def equal_width(self, lowest: float, highest: float, buckets: int = 10) -> list[tuple[float, float, float]]:
        """``buckets`` equal-width bins over [lowest, highest], counts spread uniformly in each grid bucket."""
        if lowest is None or highest is None or not self.counts:
            return []
        if highest <= lowest or not math.isfinite(highest - lowest):
            return [(lowest, highest, float(self.total))]
        import numpy as np

        width = (highest - lowest) / buckets
        counts, lo, hi = self.arrays()
        lo, hi = np.maximum(lo, lowest), np.minimum(hi, highest)
        first = np.clip(((lo - lowest) / width).astype(np.int64), 0, buckets - 1)
        last = np.clip(((hi - lowest) / width).astype(np.int64), 0, buckets - 1)
        point = hi <= lo  # a bucket narrowed to a point (or outside the range): all of it in one bin
        bins = np.bincount(first[point], weights=counts[point], minlength=buckets).astype(float)  # int64 when empty
        spread = ~point
        counts, lo, hi, first, last = counts[spread], lo[spread], hi[spread], first[spread], last[spread]
        for j in range(buckets):
            b_lo, b_hi = lowest + j * width, lowest + (j + 1) * width
            overlap = np.minimum(hi, b_hi) - np.maximum(lo, b_lo)
            take = (first <= j) & (j <= last) & (overlap > 0)
            bins[j] += float(np.sum(counts[take] * overlap[take] / (hi[take] - lo[take])))
        return [(lowest + j * width, lowest + (j + 1) * width, float(bins[j])) for j in range(buckets)]

    def equal_mass(self, lowest: float, highest: float, buckets: int = 10) -> list[tuple[float, float, float]]:
        """Bins between the i/buckets quantiles; ties can make some bins hold more than 1/buckets."""
        if not self.counts:
            return []
        import numpy as np

        edges = self.quantiles([j / buckets for j in range(buckets + 1)], lowest, highest)
        counts, _, _ = self.arrays()
        values = np.clip(np.array([representative(k) for k in self.keys()], dtype=float), lowest, highest)
        j = np.searchsorted(np.array(edges[1:buckets], dtype=float), values, side="right")
        binned = np.bincount(np.clip(j, 0, buckets - 1), weights=counts, minlength=buckets).astype(float)
        return [(edges[j], edges[j + 1], float(binned[j])) for j in range(buckets)]

    # -- drift bins ----------------------------------------------------------------------
    def cut_points(self, bins: int = 10) -> list[int]:
        """Grid keys that end each of up to ``bins`` near-equal-mass bins (last bin open)."""
        keys = self.keys()
        if not keys:
            return []
        total = self._cumulative[-1]
        cuts: list[int] = []
        target = 1
        for k, running in zip(keys, self._cumulative, strict=True):
            if target < bins and running >= target * total / bins:
                cuts.append(k)
                while target < bins and running >= target * total / bins:
                    target += 1
        if cuts and cuts[-1] == keys[-1]:
            cuts.pop()  # the last bin is open-ended: values above the top cut
        return cuts

    def binned(self, cuts: list[int]) -> list[int]:
        """Counts per bin for bins ending at ``cuts`` (keys <= cut), plus the open last bin."""
        counts = [0] * (len(cuts) + 1)
        for k, c in self.counts.items():
            counts[bisect.bisect_left(cuts, k)] += c
        return counts


def cut_conditions(cuts: list[int]) -> list[tuple[str, float]]:
    """Value tests equivalent to ``key(v) <= cut``: ('<=', t) for keys >= 0, ('<', t) below.

    So a batch can be counted into a baseline's drift bins with plain comparisons (no
    logarithms, no sketch): bin i holds the values passing test i but not test i-1.
    """
    tests = []
    for cut in cuts:
        if cut >= 0:
            tests.append(("<=", bucket_bounds(cut)[1]))
        else:  # bucket [-g^i, -g^(i-1)): everything below its upper end
            tests.append(("<", bucket_bounds(cut)[1]))
    return tests
