"""A matrix-completion label model in the spirit of Snorkel's LabelModel (MeTaL).

Parameters mu[j*k + a, y] = P(lf j votes a | Y = y). With conditionally independent
LFs the co-occurrence matrix O (P(lf i votes a and lf j votes b), a SQL self-join over
the vote patterns) factors as O = mu diag(p) mu^T off the LF-diagonal blocks, and
diag(O) = mu p. We fit mu by minimising the squared error of both with Adam in numpy
(each step costs (mk)^2 k, independent of the number of rows), then break the
label-permutation symmetry by preferring LFs that vote for the class they are
matched with.

Second moments cannot tell the class balance p from a rescaling of mu, so p is fixed
during the fit: given (``class_balance``), or estimated beforehand from first and
second moments of LFs that vote for several classes (``triplet.class_balance_from_moments``;
uniform when every LF is one-sided), blended with gold labels when
there are any (``fit.py``). Prediction ignores abstains by default, as Snorkel does
(``abstain := 'model'`` uses P(abstain | y) = 1 - sum_a mu too).

Each LF's learned vote distribution is finally shrunk towards "right 70% of the
time" in proportion to how little overlap evidence it has (``shrinkage`` rows count as
much as that prior guess): sparse LFs that rarely vote with others act as majority-vote
voters instead of carrying noisy learned weights.

Options: ``epochs`` (300), ``lr`` (0.02, relative step size), ``l2`` (0, pull
towards the initial guess), ``seed`` (0), ``abstain`` ('ignore' | 'model'),
``shrinkage`` (1000; 0 turns it off).
"""

from __future__ import annotations

from itertools import permutations

import numpy as np

from sqlml.labeling.models.base import EPS, FittedModel, normalise
from sqlml.labeling.models.stats import VoteStats

PREC_INIT = 0.7
SHRINKAGE = 1000.0  # rows of overlap evidence that count as much as the prior guess


def _init_mu(marg: np.ndarray, k: int, rng) -> np.ndarray:
    """Every LF right PREC_INIT of the time, scaled to its coverage, with a little noise."""
    m = marg.shape[0]
    cover = marg.sum(axis=1)
    eye = np.eye(k)
    mu = cover[:, None, None] * (eye[None] * PREC_INIT + (1 - eye[None]) * (1 - PREC_INIT) / max(k - 1, 1))
    mu = mu * (1 + 0.01 * rng.standard_normal(mu.shape))
    return mu.reshape(m * k, k)


def fit_mu(O, p, mask, mu0, epochs, lr, l2):
    """Adam on ||mask*(O - mu P mu^T)||^2 + ||mu p - diag(O)||^2 + l2 ||mu - mu0||^2."""
    mu = mu0.copy()
    diag = np.diag(O)
    target = mask * O
    m1 = np.zeros_like(mu)
    m2 = np.zeros_like(mu)
    b1, b2 = 0.9, 0.999
    history = []
    for t in range(1, epochs + 1):
        R = (mu * p) @ mu.T
        R *= mask
        R -= target
        r = mu @ p - diag
        if t % 10 == 1 or t == epochs:
            history.append(float((R**2).sum() + (r**2).sum() + l2 * ((mu - mu0) ** 2).sum()))
        grad = 4 * (R @ mu) * p + 2 * np.outer(r, p)
        if l2:
            grad += 2 * l2 * (mu - mu0)
        m1 = b1 * m1 + (1 - b1) * grad
        m2 = b2 * m2 + (1 - b2) * grad**2
        step = lr * (m1 / (1 - b1**t)) / (np.sqrt(m2 / (1 - b2**t)) + 1e-8)
        mu = np.clip(mu - step * np.maximum(np.abs(mu), 1e-3), EPS, 1.0)
    return mu, history


def _to_logs(mu: np.ndarray, m: int, k: int):
    """log P(vote a | y) and log P(abstain | y), with a vote for a never favouring another
    class: P(vote a | y) <= P(vote a | y = a) (an LF is designed to vote for what it says)."""
    vote = np.clip(mu.reshape(m, k, k), EPS, 1.0)  # [j, a, y]
    vote = np.minimum(vote, np.einsum("jaa->ja", vote)[:, :, None])
    vote = vote / np.maximum(vote.sum(axis=1), 1.0)[:, None, :]  # each column at most a distribution
    abstain = np.clip(1 - vote.sum(axis=1), EPS, 1.0)
    return np.log(vote), np.log(abstain)


def overlap_rows(stats: VoteStats) -> np.ndarray:
    """[m] rows on which each LF votes together with at least one other LF."""
    sizes = np.bincount(stats.entry_pattern, minlength=stats.n_patterns)
    shared = sizes[stats.entry_pattern] >= 2
    weights = stats.counts[stats.entry_pattern[shared]]
    return np.bincount(stats.entry_lf[shared], weights=weights, minlength=stats.m)


def shrink(log_vote: np.ndarray, stats: VoteStats, strength: float) -> np.ndarray:
    """Pull each LF's P(vote | class, fires) towards "right PREC_INIT of the time" in
    proportion to how little overlap evidence it has: an LF that rarely votes together
    with others cannot have its accuracy told apart from noise, so it counts as a
    majority-vote voter; with much evidence the learned values stand."""
    if strength <= 0:
        return log_vote
    k = stats.k
    vote = np.exp(log_vote)
    fired = vote.sum(axis=1, keepdims=True)
    conditional = vote / np.maximum(fired, EPS)
    eye = np.eye(k)
    prior = eye * PREC_INIT + (1 - eye) * (1 - PREC_INIT) / max(k - 1, 1)
    n = overlap_rows(stats)[:, None, None]
    blended = (n * conditional + strength * prior[None]) / (n + strength)
    return np.log(np.clip(blended * fired, EPS, None))


def matching_permutation(mu: np.ndarray, m: int, k: int) -> np.ndarray:
    """``perm`` (new class a = old class perm[a]) under which LFs vote most for their class.

    Exhaustive for k <= 6; greedy above, where k! is too many.
    """
    score = mu.reshape(m, k, k).sum(axis=0)  # [a, y]
    if k <= 6:
        return np.array(max(permutations(range(k)), key=lambda perm: score[np.arange(k), list(perm)].sum()))
    perm = np.full(k, -1)
    used: set[int] = set()
    for a in np.argsort(-score.max(axis=1)):
        y = next(int(y) for y in np.argsort(-score[a]) if y not in used)
        perm[a] = y
        used.add(y)
    return perm


def fit(stats: VoteStats, options: dict) -> FittedModel:
    from sqlml.labeling.models.triplet import class_balance_from_moments

    k, m = stats.k, stats.m
    rng = np.random.default_rng(int(options.get("seed", 0)))
    O = options["cooccurrence"] if options.get("cooccurrence") is not None else stats.cooccurrence()
    marg = np.diag(O).reshape(m, k)
    if options.get("class_balance") is not None:
        p = normalise(options["class_balance"])
    else:
        p = class_balance_from_moments(O, stats, options)
    lf_of = np.repeat(np.arange(m), k)
    mask = (lf_of[:, None] != lf_of[None, :]).astype(np.float64)
    mu, history = fit_mu(
        O, p, mask, _init_mu(marg, k, rng), int(options.get("epochs", 300)), float(options.get("lr", 0.02)),
        float(options.get("l2", 0.0)),
    )
    perm = matching_permutation(mu, m, k)
    mu = mu[:, perm]
    log_vote, log_abstain = _to_logs(mu, m, k)
    log_vote = shrink(log_vote, stats, float(options.get("shrinkage", SHRINKAGE)))
    if options.get("abstain", "ignore") == "ignore":
        log_abstain = None
    return FittedModel("label_model", p, log_vote, log_abstain, history=history, iterations=len(history))

