"""Closed-form triplet method in the style of FlyingSquid (Fu et al., ICML 2020).

Model: LF j fires independently of the class; when it fires it is right with
probability acc_j and spreads its errors evenly over the other classes. Then for
two LFs that both fire, P(agree) = 1/k + (k-1)/k * x_i * x_j with
x = (k * acc - 1) / (k - 1), so for any triplet (i, j, l)

    x_i = sqrt(A_ij * A_il / A_jl),    A_ij = (k * P(agree_ij) - 1) / (k - 1)

with no iteration at all. Each x_i is the median over the triplets whose pairs
overlap enough (robust to a few bad triplets); signs assume better-than-random LFs,
as FlyingSquid's default does. The class balance follows from first moments:
P(vote c | fires) = acc p_c + (1 - acc)(1 - p_c)/(k - 1). This generalises
FlyingSquid's binary algebra to k classes; abstains carry no information here.

Options: ``min_overlap`` (rows two LFs must share to form a pair, 10),
``max_triplets`` (per LF, 2000, sampled with ``seed``), ``class_balance``.
"""

from __future__ import annotations

import numpy as np

from sqlml.labeling.models.base import EPS, FittedModel, normalise, symmetric_log_vote
from sqlml.labeling.models.stats import VoteStats

DEFAULT_ACCURACY = 0.7  # for an LF that shares no triplet with others


def pair_agreement(O: np.ndarray, m: int, k: int, n: float, min_overlap: float):
    """A[i, j] (NaN where LFs i and j overlap on fewer than ``min_overlap`` rows)."""
    blocks = O.reshape(m, k, m, k)
    both = blocks.sum(axis=(1, 3)) * n
    agree = np.einsum("iaja->ij", blocks) * n
    with np.errstate(invalid="ignore", divide="ignore"):
        A = (k * agree / both - 1) / (k - 1)
    A[both < min_overlap] = np.nan
    np.fill_diagonal(A, np.nan)
    return A


def fit(stats: VoteStats, options: dict) -> FittedModel:
    k, m = stats.k, stats.m
    rng = np.random.default_rng(int(options.get("seed", 0)))
    O = options["cooccurrence"] if options.get("cooccurrence") is not None else stats.cooccurrence()
    A = pair_agreement(O, m, k, stats.n_rows, float(options.get("min_overlap", 10)))
    max_triplets = int(options.get("max_triplets", 2000))
    x = np.full(m, np.nan)
    for i in range(m):
        others = np.nonzero(~np.isnan(A[i]))[0]
        if len(others) < 2:
            continue
        j, l = np.triu_indices(len(others), 1)
        j, l = others[j], others[l]
        if len(j) > max_triplets:
            pick = rng.choice(len(j), max_triplets, replace=False)
            j, l = j[pick], l[pick]
        denom = A[j, l]
        ok = ~np.isnan(denom) & (np.abs(denom) > 1e-3)
        if not ok.any():
            continue
        est = np.sqrt(np.abs(A[i, j[ok]] * A[i, l[ok]] / denom[ok]))
        x[i] = float(np.median(est))
    x_default = (k * DEFAULT_ACCURACY - 1) / (k - 1)
    x = np.clip(np.where(np.isnan(x), x_default, x), 1e-3, 1 - 1e-4)
    acc = ((k - 1) * x + 1) / k
    if options.get("class_balance") is not None:
        balance = normalise(options["class_balance"])
    else:
        balance = _class_balance(O, m, k, acc, x)
    if options.get("_accuracies_only"):
        return acc, x
    return FittedModel(
        "triplet", balance, symmetric_log_vote(acc, k), None, info={"triplet_x": x.tolist()}
    )


def class_balance_from_moments(O: np.ndarray, stats: VoteStats, options: dict) -> np.ndarray:
    """The class balance implied by the triplet accuracies and each LF's vote frequencies."""
    acc, x = fit(stats, {**options, "cooccurrence": O, "class_balance": None, "_accuracies_only": True})
    return _class_balance(O, stats.m, stats.k, acc, x)


def _class_balance(O: np.ndarray, m: int, k: int, acc: np.ndarray, x: np.ndarray) -> np.ndarray:
    """From LFs that vote for several classes: under the model, P(vote c | fires) mixes the
    class balance with the LF's error rate. A one-sided LF (it only ever votes one class)
    says nothing about the balance, so with no multi-class LFs the balance is uniform."""
    marg = np.diag(O).reshape(m, k)  # P(lf j votes c)
    cover = marg.sum(axis=1)
    multi = (marg > 0).sum(axis=1) >= 2
    if not multi.any():
        return np.full(k, 1.0 / k)
    q = marg[multi] / cover[multi, None]
    wrong = ((1 - acc[multi]) / (k - 1))[:, None]
    est = (q - wrong) / np.maximum(x[multi], EPS)[:, None]
    weight = (cover[multi] * x[multi] ** 2)[:, None]
    return normalise((np.clip(est, 0, 1) * weight).sum(axis=0) / np.maximum(weight.sum(), EPS), floor=1e-3)
