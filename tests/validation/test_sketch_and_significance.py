"""The sketch grid and the statistics every threshold rests on."""

import math
import random

import pytest

from sqlml.validation import significance as sig
from sqlml.validation.sketch import ACCURACY, Sketch, bucket_bounds, key_sql, representative


def keys_in_duckdb(con, values):
    con.sql("CREATE OR REPLACE TABLE v AS SELECT unnest(?::DOUBLE[]) AS x", params=[values])
    return [r[0] for r in con.sql(f"SELECT {key_sql('x')} FROM v").fetchall()]


def test_sql_keys_fall_in_their_buckets_and_sort_like_values(con):
    values = [-1e9, -123.4, -1.0, -1e-9, 0.0, 1e-15, 1e-9, 0.5, 1.0, 2.0, 99.5, 1e12]
    keys = keys_in_duckdb(con, values)
    assert keys == sorted(keys)
    for x, k in zip(values, keys, strict=True):
        lo, hi = bucket_bounds(k)
        if x == 0:
            assert k == 0
        elif abs(x) >= 1e-12:
            assert lo <= x <= hi * (1 + 1e-12)
            assert abs(representative(k) - x) <= ACCURACY * abs(x) * 1.0001


def test_sketch_quantiles_within_relative_accuracy(con):
    rng = random.Random(3)
    values = [rng.lognormvariate(0, 1.5) for _ in range(20_000)]
    counts = {}
    for k in keys_in_duckdb(con, values):
        counts[k] = counts.get(k, 0) + 1
    sketch = Sketch(counts)
    ordered = sorted(values)
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        exact = ordered[int(q * (len(values) - 1))]
        got = sketch.quantile(q)
        neighbours = ordered[max(0, int(q * (len(values) - 1)) - 1) : int(q * (len(values) - 1)) + 2]
        assert any(abs(got - e) <= ACCURACY * e * 1.01 for e in neighbours), (q, exact, got)


def test_sketches_merge_by_adding_counts():
    a, b = Sketch({3000: 2, 3100: 1}), Sketch({3100: 4, -3050: 1})
    merged = a.merge(b)
    assert merged.counts == {3000: 2, 3100: 5, -3050: 1}
    assert merged.total == a.total + b.total


def test_cut_points_make_bins_that_count_exactly():
    sketch = Sketch({k: 10 for k in range(3000, 3100)})
    cuts = sketch.cut_points(10)
    assert len(cuts) == 9
    assert sketch.binned(cuts) == [100] * 10
    other = Sketch({2000: 5, 3050: 7, 5000: 3})  # below, inside and above the baseline's range
    binned = other.binned(cuts)
    assert binned[0] == 5 and binned[-1] == 3 and sum(binned) == 15


def test_histograms_keep_every_value():
    sketch = Sketch({0: 5, 3000: 10, 3070: 10, 3110: 5})  # 0, 1, 2, 3
    width = sketch.equal_width(0.0, 3.0, 3)
    assert sum(c for _, _, c in width) == pytest.approx(30)
    mass = sketch.equal_mass(0.0, 3.0, 4)
    assert sum(c for _, _, c in mass) == pytest.approx(30)


def test_wilson_bounds_are_sane_at_the_edges():
    low, high = sig.wilson_bounds(100, 100)
    assert 0.9 < low < 1.0 and high == pytest.approx(1.0)
    low, high = sig.wilson_bounds(0, 50)
    assert low == 0.0 and 0 < high < 0.2


@pytest.mark.parametrize("k,n,p", [(3, 10, 0.1), (0, 5, 0.3), (7, 20, 0.2), (15, 30, 0.5), (1, 1000, 1e-4)])
def test_binomial_upper_tail_matches_exact_sum(k, n, p):
    exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
    assert sig.binomial_upper_tail(k, n, p) == pytest.approx(exact, rel=1e-6, abs=1e-12)


def test_binomial_tail_far_out_is_tiny_but_positive():
    tail = sig.binomial_upper_tail(200, 1_000_000, 1e-4)
    assert 0 < tail < 1e-15


def test_count_exceeds_is_strict_when_nothing_is_tolerated():
    assert sig.count_exceeds(1, 10, 0.0, 1e-6)
    assert not sig.count_exceeds(0, 10, 0.0, 1e-6)
    assert not sig.count_exceeds(3, 1000, 0.002, 1e-6)
    assert sig.count_exceeds(30, 1000, 0.002, 1e-6)


@pytest.mark.parametrize("df,p,expected", [(1, 0.95, 3.841), (9, 0.95, 16.919), (9, 0.999, 27.877), (20, 0.99, 37.566)])
def test_chi2_quantiles(df, p, expected):
    assert sig.chi2_quantile(p, df) == pytest.approx(expected, rel=0.02)


def test_jensen_shannon_bounds():
    assert sig.jensen_shannon([1, 1], [1, 1]) == 0
    assert sig.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


def test_jsd_threshold_holds_false_alarms_below_alpha():
    """Same-distribution samples: JSD over 10 equal bins exceeds the alpha=1e-3 threshold rarely."""
    rng = random.Random(11)
    base = [1000] * 10
    n = 200
    threshold = sig.jsd_threshold(10, n, sum(base), 1e-3)
    alarms = 0
    trials = 2000
    for _ in range(trials):
        counts = [0] * 10
        for _ in range(n):
            counts[rng.randrange(10)] += 1
        alarms += sig.jensen_shannon(base, counts) > threshold
    assert alarms / trials < 0.005
    big_shift = [n // 5 if i < 5 else 0 for i in range(10)]
    assert sig.jensen_shannon(base, big_shift) > threshold


def test_cut_conditions_count_exactly_like_the_sketch(con):
    """A batch counted into the baseline's bins by comparisons matches its own sketch's binning."""
    from sqlml.validation.sketch import cut_conditions

    rng = random.Random(5)
    baseline = [rng.gauss(0, 50) for _ in range(5000)] + [0.0] * 100 + [3.0] * 50
    batch = [rng.gauss(5, 60) for _ in range(3000)] + [0.0, -1e-13, 1e-13, 1e9, -1e9]
    base_sketch = Sketch(_counts(keys_in_duckdb(con, baseline)))
    batch_sketch = Sketch(_counts(keys_in_duckdb(con, batch)))
    cuts = base_sketch.cut_points(10)
    assert len(cuts) >= 8
    tests = cut_conditions(cuts)
    cumulative = [sum(1 for v in batch if (v <= t if op == "<=" else v < t)) for op, t in tests]
    edges = [0, *cumulative, len(batch)]
    assert [edges[i + 1] - edges[i] for i in range(len(cuts) + 1)] == batch_sketch.binned(cuts)


def _counts(keys):
    counts = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    return counts


def test_every_sketch_route_gives_the_same_buckets(con, monkeypatch):
    """Grouped-by-value, never-negative and general sketches of one column agree exactly."""
    from sqlml.validation import api, scan

    con.sql("CREATE TABLE v AS SELECT (range % 300) * 0.37 AS few, range * 1.01 AS many, range - 500.5 AS signed FROM range(2000)")
    first = api.statistics(con, "v", store_result=False)
    monkeypatch.setattr(scan, "FEW_VALUES", 0)
    second = api.statistics(con, "v", store_result=False)
    assert first.columns["few"].sketch.counts == second.columns["few"].sketch.counts
    general = Sketch(_counts(keys_in_duckdb(con, [r[0] for r in con.sql("SELECT many FROM v").fetchall()])))
    assert second.columns["many"].sketch.counts == general.counts
    assert sum(second.columns["signed"].sketch.counts.values()) == 2000
