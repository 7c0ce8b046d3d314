"""Dawid-Skene EM (1979), abstain-aware: each LF has a confusion matrix over
{classes, abstain} given the true class, estimated by expectation-maximisation.

Abstaining is an outcome like any vote, so one-sided LFs (that only ever vote one
class) still carry information: how often they stay silent on each class. Gold rows
keep their one-hot posterior in every E-step (their votes anchor the confusion
matrices and their labels the class balance). The work per iteration is proportional
to the number of distinct vote patterns, not rows.

Options: ``max_iter`` (500), ``tol`` (1e-6, max posterior change), ``smoothing``
(1.0 pseudo-count per cell, a Dirichlet prior that leans to better-than-random
LFs), ``class_balance`` (fixed prior; estimated when absent), ``init`` (a FittedModel
whose posterior starts EM; majority vote when absent).
"""

from __future__ import annotations

import numpy as np

from sqlml.labeling.models import majority
from sqlml.labeling.models.base import EPS, FittedModel, normalise
from sqlml.labeling.models.stats import VoteStats, clamp_gold


def m_step(stats: VoteStats, T: np.ndarray, smoothing: float, prior_acc: float):
    """Confusion matrices (with abstain) and class balance from posteriors T [P, k]."""
    k = stats.k
    W = T * stats.counts[:, None]  # expected rows per (pattern, class)
    class_mass = W.sum(axis=0)  # [k]
    votes = stats.weighted_votes(W)  # [m, a, y] expected votes a on class y
    abstain = np.maximum(class_mass[None, :] - votes.sum(axis=1), 0.0)  # [m, y]
    # Dirichlet pseudo-counts: an LF that votes is right with prob. prior_acc a priori
    fired = votes.sum(axis=1, keepdims=True)  # [m, 1, y]
    rate = fired / np.maximum(class_mass[None, None, :], EPS)
    eye = np.eye(k)[None]
    pseudo = smoothing * (eye * prior_acc + (1 - eye) * (1 - prior_acc) / max(k - 1, 1))
    pseudo = pseudo * np.clip(rate, 0.05, 1.0)
    vote_mass = votes + pseudo
    total = vote_mass.sum(axis=1) + abstain + smoothing * 0.1  # [m, y]
    log_vote = np.log(vote_mass / total[:, None, :])
    log_abstain = np.log((abstain + smoothing * 0.1) / total)
    return log_vote, log_abstain, class_mass


def fit(stats: VoteStats, options: dict) -> FittedModel:
    k = stats.k
    max_iter = int(options.get("max_iter", 500))
    tol = float(options.get("tol", 1e-6))
    smoothing = float(options.get("smoothing", 1.0))
    prior_acc = float(options.get("prior_accuracy", 0.7))
    fixed_balance = options.get("class_balance")
    init = options.get("init")
    if init is None:
        init = majority.fit(stats, {"class_balance": fixed_balance})
    T = clamp_gold(init.posterior(stats), stats.gold, k)
    history: list[float] = []
    model = None
    for iteration in range(1, max_iter + 1):
        log_vote, log_abstain, class_mass = m_step(stats, T, smoothing, prior_acc)
        balance = normalise(fixed_balance if fixed_balance is not None else class_mass + 1.0)
        model = FittedModel("dawid_skene", balance, log_vote, log_abstain, iterations=iteration)
        logits = stats.logits(np.log(balance), log_vote, log_abstain)
        top = logits.max(axis=1, keepdims=True)
        loglik = float(((np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]) * stats.counts).sum())
        history.append(loglik / max(stats.n_rows, 1.0))
        new = np.exp(logits - top)
        new = clamp_gold(new / new.sum(axis=1, keepdims=True), stats.gold, k)
        change = float(np.abs(new - T).max()) if len(T) else 0.0
        T = new
        if change < tol:
            break
    model.history = history
    return model
