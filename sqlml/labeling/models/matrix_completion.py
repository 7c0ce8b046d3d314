"""A matrix-completion label model in the spirit of Snorkel's LabelModel (MeTaL).

Parameters mu[j*k + a, y] = P(lf j votes a | Y = y). With conditionally independent
LFs the co-occurrence matrix O (from SQL: P(lf i votes a and lf j votes b)) factors
as O = mu diag(p) mu^T off the LF-diagonal blocks, and diag(O) = mu p. We fit mu by
minimising the squared error of both, with Adam in numpy (the work per step is
(mk)^2 k, independent of the number of rows), then:

* estimate the class balance p (unless given) by maximising the likelihood of the
  vote patterns with mu held fixed, alternating with refits of mu (``balance_rounds``);
* break the label-permutation symmetry by preferring the solution where LFs are
  better than random on average;
* predict with abstains modelled (P(abstain | y) = 1 - sum_a mu[j*k+a, y]), so an LF
  that rarely fires on a class says so by staying silent; ``abstain := 'ignore'``
  gives Snorkel's behaviour.

Options: ``epochs`` (300), ``lr`` (0.02), ``l2`` (0.0, pull towards the init),
``seed`` (0), ``class_balance``, ``balance_rounds`` (5), ``abstain`` ('model').
"""

from __future__ import annotations

import numpy as np

from sqlml.labeling.models.base import EPS, FittedModel, normalise
from sqlml.labeling.models.stats import VoteStats, softmax

PREC_INIT = 0.7


def _init_mu(marg: np.ndarray, p: np.ndarray, k: int, rng) -> np.ndarray:
    """mu with every LF right PREC_INIT of the time, scaled to its marginals."""
    m = marg.shape[0]
    cover = marg.sum(axis=1)  # [m]
    eye = np.eye(k)
    mu = cover[:, None, None] * (eye[None] * PREC_INIT + (1 - eye[None]) * (1 - PREC_INIT) / max(k - 1, 1))
    mu = mu * (1 + 0.01 * rng.standard_normal(mu.shape))
    return mu.reshape(m * k, k)


def fit_mu(O, p, mask, mu0, epochs, lr, l2):
    """Adam on ||mask*(O - mu P mu^T)||^2 + ||mu p - diag(O)||^2 + l2 ||mu - mu0||^2."""
    mu = mu0.copy()
    diag = np.diag(O)
    m1 = np.zeros_like(mu)
    m2 = np.zeros_like(mu)
    b1, b2 = 0.9, 0.999
    history = []
    for t in range(1, epochs + 1):
        R = mask * (mu * p @ mu.T - O)
        r = mu @ p - diag
        loss = float((R**2).sum() + (r**2).sum() + l2 * ((mu - mu0) ** 2).sum())
        history.append(loss)
        grad = 4 * (R @ mu) * p + 2 * np.outer(r, p) + 2 * l2 * (mu - mu0)
        m1 = b1 * m1 + (1 - b1) * grad
        m2 = b2 * m2 + (1 - b2) * grad**2
        step = lr * (m1 / (1 - b1**t)) / (np.sqrt(m2 / (1 - b2**t)) + 1e-8)
        mu = np.clip(mu - step * np.maximum(np.abs(mu), 1e-3), EPS, 1.0)
    return mu, history


def _to_logs(mu: np.ndarray, m: int, k: int):
    vote = np.clip(mu.reshape(m, k, k), EPS, 1.0)  # [j, a, y]
    fired = vote.sum(axis=1)  # [j, y]
    scale = np.maximum(fired, 1.0)  # keep each column a distribution
    vote = vote / scale[:, None, :]
    abstain = np.clip(1 - vote.sum(axis=1), EPS, 1.0)
    return np.log(vote), np.log(abstain)


def _balance_from_likelihood(stats: VoteStats, log_vote, log_abstain, p, rounds=50):
    """EM over the mixture weights only (mu fixed): p <- mean posterior."""
    for _ in range(rounds):
        post = softmax(stats.logits(np.log(p), log_vote, log_abstain))
        gold = stats.gold >= 0
        if gold.any():
            post[gold] = np.eye(stats.k)[stats.gold[gold]]
        new = normalise((post * stats.counts[:, None]).sum(axis=0) + 1.0)
        if np.abs(new - p).max() < 1e-6:
            return new
        p = new
    return p


def fit(stats: VoteStats, options: dict) -> FittedModel:
    k, m = stats.k, stats.m
    d = m * k
    rng = np.random.default_rng(int(options.get("seed", 0)))
    epochs = int(options.get("epochs", 300))
    lr = float(options.get("lr", 0.02))
    l2 = float(options.get("l2", 0.0))
    O = options["cooccurrence"] if options.get("cooccurrence") is not None else stats.cooccurrence()
    marg = np.diag(O).reshape(m, k)
    lf_of = np.repeat(np.arange(m), k)
    mask = (lf_of[:, None] != lf_of[None, :]).astype(np.float64)
    fixed = options.get("class_balance")
    p = normalise(fixed) if fixed is not None else np.full(k, 1.0 / k)
    init = options.get("init")
    if init is not None:  # a closed-form solution (e.g. triplet) as start and l2 anchor
        p = normalise(init.class_balance) if fixed is None else p
        cover = marg.sum(axis=1)
        mu0 = (np.exp(init.log_vote) * cover[:, None, None]).reshape(m * k, k)
    else:
        mu0 = _init_mu(marg, p, k, rng)
    rounds = 1 if (fixed is not None or init is not None) else int(options.get("balance_rounds", 5))
    history: list[float] = []
    mu = mu0
    for _ in range(rounds):
        mu, h = fit_mu(O, p, mask, mu, epochs, lr, l2)
        history += h
        perm = _fix_symmetry(mu, m, k)
        mu, p = mu[:, perm], p[perm]
        log_vote, log_abstain = _to_logs(mu, m, k)
        if fixed is not None or init is not None:
            break
        new_p = _balance_from_likelihood(stats, log_vote, log_abstain, p)
        if np.abs(new_p - p).max() < 1e-4:
            p = new_p
            break
        p = new_p
    mu, h = (mu, []) if (fixed is not None or init is not None) else fit_mu(O, p, mask, mu, epochs // 3, lr, l2)
    history += h
    perm = _fix_symmetry(mu, m, k)
    mu, p = mu[:, perm], p[perm]
    log_vote, log_abstain = _to_logs(mu, m, k)
    if options.get("abstain", "model") == "ignore":
        log_abstain = None
    return FittedModel("matrix_completion", p, log_vote, log_abstain, history=history, iterations=len(history))


def _fix_symmetry(mu: np.ndarray, m: int, k: int) -> np.ndarray:
    """The class permutation under which LFs vote most for the class they are matched to.

    Exhaustive for k <= 6; greedy (largest agreement first) above, where k! is too many.
    Returns ``perm`` with new class a = old class perm[a].
    """
    score = mu.reshape(m, k, k).sum(axis=0)  # [a, y]: mass of votes a attributed to class y
    if k <= 6:
        from itertools import permutations

        return np.array(max(permutations(range(k)), key=lambda perm: score[np.arange(k), list(perm)].sum()))
    perm = np.full(k, -1)
    used: set[int] = set()
    for a in np.argsort(-score.max(axis=1)):
        y = next(int(y) for y in np.argsort(-score[a]) if y not in used)
        perm[a] = y
        used.add(y)
    return perm
