"""The label model methods on synthetic votes with known truth (numpy level, no database)."""

import numpy as np
import pytest

from sqlml.labeling.models import METHODS, majority
from sqlml.labeling.models.stats import VoteStats, clamp_gold
from sqlml.labeling.output import hard_labels


def synthetic(n, m, k, balance=None, seed=0):
    """Conditionally independent LFs: fire w.p. cov, right w.p. acc, errors uniform."""
    rng = np.random.default_rng(seed)
    balance = np.full(k, 1 / k) if balance is None else np.asarray(balance)
    y = rng.choice(k, n, p=balance)
    cov, acc = rng.uniform(0.1, 0.5, m), rng.uniform(0.55, 0.95, m)
    L = np.full((n, m), -1)
    for j in range(m):
        wrong = (y + rng.integers(1, k, n)) % k
        L[:, j] = np.where(rng.random(n) < cov[j], np.where(rng.random(n) < acc[j], y, wrong), -1)
    return L, y, cov, acc, balance


def oracle(L, acc, balance):
    k = len(balance)
    logp = np.tile(np.log(balance), (len(L), 1))
    for j in range(L.shape[1]):
        fired = L[:, j] >= 0
        for c in range(k):
            lik = np.where(L[:, j] == c, acc[j], (1 - acc[j]) / (k - 1))
            logp[fired, c] += np.log(lik[fired])
    return logp.argmax(axis=1)


def accuracy(method, L, y, k, **options):
    stats = VoteStats.from_matrix(L, k)
    model = METHODS[method](stats, dict(options))
    keyed = np.concatenate([L + 1, np.zeros((len(L), 1), int)], axis=1)
    _, inverse = np.unique(keyed, axis=0, return_inverse=True)
    probs = model.posterior(stats)
    pred = hard_labels(probs, model.class_balance)[inverse.ravel()]
    return float((pred == y).mean()), model


@pytest.mark.parametrize("method", ["label_model", "dawid_skene", "triplet"])
@pytest.mark.parametrize("k", [2, 6, 9])
def test_methods_reach_the_true_parameter_posterior(method, k):
    L, y, cov, acc, balance = synthetic(12_000, 12, k, seed=k)
    best = float((oracle(L, acc, balance) == y).mean())
    got, model = accuracy(method, L, y, k)
    assert got >= best - 0.01, (method, k, got, best)
    mv, _ = accuracy("majority", L, y, k)
    assert got >= mv - 0.005


@pytest.mark.parametrize("method", ["label_model", "dawid_skene", "triplet"])
def test_class_balance_is_estimated_under_imbalance(method):
    L, y, cov, acc, balance = synthetic(30_000, 10, 2, balance=[0.9, 0.1], seed=1)
    got, model = accuracy(method, L, y, 2)
    # EM creeps towards the balance (it converges slowly under imbalance); moments get it at once
    assert model.class_balance[0] == pytest.approx(0.9, abs=0.03 if method == "dawid_skene" else 0.01)
    assert got >= float((oracle(L, acc, balance) == y).mean()) - 0.01


def test_learned_accuracies_are_close_to_the_truth():
    L, y, cov, acc, balance = synthetic(30_000, 8, 2, seed=4)
    for method in ("label_model", "dawid_skene", "triplet"):
        _, model = accuracy(method, L, y, 2)
        assert np.abs(model.accuracies() - acc).max() < 0.05, method


def test_same_seed_same_result_other_seed_close():
    L, y, *_ = synthetic(5_000, 6, 3, seed=7)
    stats = VoteStats.from_matrix(L, 3)
    a = METHODS["label_model"](stats, {"seed": 1}).posterior(stats)
    b = METHODS["label_model"](stats, {"seed": 1}).posterior(stats)
    c = METHODS["label_model"](stats, {"seed": 2}).posterior(stats)
    assert np.array_equal(a, b)
    assert np.abs(a - c).max() < 0.05


def test_majority_vote_ties_and_empty_rows():
    L = np.array([[0, 1, -1], [1, 1, 0], [-1, -1, -1]])
    stats = VoteStats.from_matrix(L, 2)
    model = majority.fit(stats, {"class_balance": [0.3, 0.7]})
    probs = model.posterior(stats)
    keyed = np.concatenate([L + 1, np.zeros((3, 1), int)], axis=1)
    _, inverse = np.unique(keyed, axis=0, return_inverse=True)
    probs = probs[inverse.ravel()]
    assert probs.tolist() == [[0.5, 0.5], [0.0, 1.0], [0.3, 0.7]]
    # the tie goes to the class with the larger balance
    assert hard_labels(probs, model.class_balance).tolist() == [1, 1, 1]
    assert hard_labels(np.array([[0.5, 0.5]]), np.array([0.5, 0.5])).tolist() == [0]


def test_gold_rows_override_and_inform_em():
    L, y, *_ = synthetic(4_000, 6, 2, seed=9)
    gold = np.where(np.arange(len(y)) < 400, y, -1)
    stats = VoteStats.from_matrix(L, 2, gold)
    model = METHODS["dawid_skene"](stats, {})
    probs = clamp_gold(model.posterior(stats), stats.gold, 2)
    has = stats.gold >= 0
    assert np.array_equal(probs[has].argmax(axis=1), stats.gold[has])
    assert np.allclose(probs[has].max(axis=1), 1.0)


def test_stats_are_sparse_patterns():
    L = np.array([[0, -1], [0, -1], [-1, -1], [1, 1]])
    stats = VoteStats.from_matrix(L, 2)
    assert stats.n_patterns == 3 and stats.n_rows == 4
    assert sorted(stats.counts.tolist()) == [1, 1, 2]
    assert len(stats.entry_lf) == 3  # one entry per vote of each distinct pattern
