"""The statistics behind every threshold: confidence bounds and tail probabilities.

Validation must give zero anomalies on clean batches of any size, so no threshold is a
fixed number: each test asks "is this batch's count (or distance) too large to be
chance, given how many rows it has?" at a small per-test false-alarm rate ``alpha``,
and an anomaly also needs an effect large enough to matter. Only the standard library
is used (no scipy).
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()

#: Default per-test false-alarm probability. A validation runs a few tests per column;
#: at 1e-6, a thousand clean batches of a 10-column table raise no alarm in expectation.
DEFAULT_ALPHA = 1e-6

#: z used for the confidence bounds that inference bakes into a schema (about 99.87%).
BOUND_Z = 3.0


def z_upper(alpha: float) -> float:
    """The z with P(Z > z) = alpha."""
    return _NORMAL.inv_cdf(1.0 - alpha)


def wilson_bounds(successes: float, n: float, z: float = BOUND_Z) -> tuple[float, float]:
    """Wilson score interval for a proportion (sane at 0 and n, unlike the Wald interval)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), accurate far into the tail.

    Sums the probability mass upwards from ``k`` (terms shrink geometrically past the
    mean); below the mean the answer is close to 1 and the normal approximation serves.
    """
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    mean = n * p
    sd = math.sqrt(n * p * (1 - p))
    if k < mean - 0.5:
        return 1.0 - _NORMAL.cdf((k - 0.5 - mean) / sd) if sd > 0 else 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    log_term = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q
    if log_term < -700:  # past the mean the terms only shrink: the tail underflows too
        return 0.0
    term = math.exp(log_term)
    total = term
    ratio_base = p / (1 - p)
    i = k
    while i < n:
        term *= (n - i) / (i + 1) * ratio_base
        i += 1
        total += term
        if term < total * 1e-17 or (i - k) > 200_000:
            break
    return min(1.0, total)


def binomial_lower_tail(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return binomial_upper_tail(n - k, n, 1.0 - p)


def frequency_moved(current: float, n_current: float, baseline: float, n_baseline: float, alpha: float) -> bool:
    """Whether a value's count in a batch is implausible given its pooled frequency (two-sided).

    Exact binomial tails where counts are small (rare values in small batches, where the
    normal approximation invents alarms), the normal approximation where both expected
    counts are large.
    """
    n = int(round(n_current))
    k = int(round(current))
    pooled = (current + baseline) / (n_current + n_baseline)
    if pooled <= 0.0 or pooled >= 1.0 or n <= 0:
        return False
    expected = n * pooled
    if expected >= 30 and n - expected >= 30:
        se = math.sqrt(pooled * (1 - pooled) * (1 / n_current + 1 / n_baseline))
        return abs(current / n_current - baseline / n_baseline) > z_upper(alpha / 2) * se
    tail = binomial_upper_tail(k, n, pooled) if k >= expected else binomial_lower_tail(k, n, pooled)
    return tail < alpha / 2


def count_exceeds(bad: int, n: int, tolerated_rate: float, alpha: float) -> bool:
    """Whether ``bad`` events in ``n`` rows are significantly more than ``tolerated_rate`` allows."""
    if n <= 0 or bad <= 0:
        return False
    if tolerated_rate <= 0.0:
        return True
    return binomial_upper_tail(bad, n, tolerated_rate) < alpha


def chi2_quantile(p: float, df: int) -> float:
    """Quantile of the chi-square distribution (Wilson-Hilferty; exact for one degree)."""
    if df <= 0:
        return 0.0
    if df == 1:
        z = _NORMAL.inv_cdf(0.5 + p / 2)
        return z * z
    z = _NORMAL.inv_cdf(p)
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


def effective_size(n: float, m: float) -> float:
    """n*m/(n+m): the sample size that two samples of sizes n and m are worth together."""
    if n <= 0 or m <= 0:
        return 0.0
    return n * m / (n + m)


def jsd_threshold(bins: int, n: float, m: float, alpha: float) -> float:
    """The Jensen-Shannon divergence (bits) two same-distribution samples exceed with prob. alpha.

    For close distributions JSD (nats) ~ (1/8) sum (p-q)^2 / mid, and the two-sample
    chi-square statistic is N_eff * sum (p-q)^2 / mid, so 8 * N_eff * JSD ~ chi2(bins-1).
    """
    size = effective_size(n, m)
    if size <= 0 or bins < 2:
        return math.inf
    return chi2_quantile(1.0 - alpha, bins - 1) / (8.0 * size * math.log(2))


def jensen_shannon(p: list[float], q: list[float]) -> float:
    """Jensen-Shannon divergence in bits (0..1) of two count or probability vectors."""
    sp, sq = sum(p), sum(q)
    if sp <= 0 or sq <= 0:
        return 0.0
    total = 0.0
    for a, b in zip(p, q, strict=True):
        a, b = a / sp, b / sq
        mid = (a + b) / 2
        if a > 0:
            total += a * math.log2(a / mid)
        if b > 0:
            total += b * math.log2(b / mid)
    return max(0.0, total / 2)


def mean_difference_bound(variance: float, value_range: float, n: float, m: float, alpha: float) -> float:
    """How far two sample means (n and m values) of one distribution bounded to a range of
    ``value_range`` with ``variance`` drift apart with probability at most alpha (Bernstein).

    Unlike a z test this holds for any such distribution, skewed or heavy-tailed alike:
    P(|mean_n - mean_m| >= t) <= 2 exp(-t^2 / 2 / (V + M t / 3)) with V = variance (1/n + 1/m)
    the variance of the difference and M = value_range / min(n, m) its largest single term.
    """
    if n <= 0 or m <= 0:
        return math.inf
    log_term = math.log(2.0 / alpha)
    v = variance * (1.0 / n + 1.0 / m)
    b = value_range / min(n, m)
    linear = 2.0 / 3.0 * b * log_term
    return (linear + math.sqrt(linear * linear + 8.0 * v * log_term)) / 2.0


def proportion_z(x1: float, n1: float, x2: float, n2: float) -> float:
    """Two-proportion z statistic (pooled) for x1/n1 vs x2/n2."""
    if n1 <= 0 or n2 <= 0:
        return 0.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0
    return (x1 / n1 - x2 / n2) / se
