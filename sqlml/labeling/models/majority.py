"""Majority vote: each row takes the class most of its labeling functions voted for.

Ties: the posterior is uniform over the tied classes (as Snorkel's MajorityLabelVoter);
the hard label (``output.py``) then picks the tied class with the larger class balance,
and among equal balances the first declared class. A row without votes gets the class
balance. The class balance is the gold frequency when gold rows exist, else the
frequency of unambiguous majority labels.
"""

from __future__ import annotations

import numpy as np

from sqlml.labeling.models.base import FittedModel, normalise
from sqlml.labeling.models.stats import VoteStats


class MajorityModel(FittedModel):
    def posterior(self, stats: VoteStats) -> np.ndarray:
        votes = stats.vote_counts()
        top = votes.max(axis=1, keepdims=True)
        winners = (votes == top) & (top > 0)
        probs = winners.astype(np.float64)
        none = top[:, 0] == 0
        probs[none] = self.class_balance
        return probs / probs.sum(axis=1, keepdims=True)

    def accuracies(self) -> np.ndarray:
        return np.full(self.log_vote.shape[0], np.nan)  # majority vote learns none


def clear_majority_balance(stats: VoteStats) -> np.ndarray:
    """Class frequencies among rows with an unambiguous majority (add-one smoothed)."""
    votes = stats.vote_counts()
    top = votes.max(axis=1, keepdims=True)
    clear = ((votes == top).sum(axis=1) == 1) & (top[:, 0] > 0)
    return normalise(np.bincount(votes[clear].argmax(axis=1), weights=stats.counts[clear], minlength=stats.k) + 1.0)


def fit(stats: VoteStats, options: dict) -> FittedModel:
    k, m = stats.k, stats.m
    gold = stats.gold >= 0
    if options.get("class_balance") is not None:
        balance = np.asarray(options["class_balance"], dtype=np.float64)
    elif gold.any():
        balance = np.bincount(stats.gold[gold], weights=stats.counts[gold], minlength=k) + 1.0
    else:
        balance = clear_majority_balance(stats)
    return MajorityModel(
        method="majority",
        class_balance=normalise(balance),
        log_vote=np.log(np.full((m, k, k), 1.0 / k)),  # unused: posterior() counts votes
        log_abstain=None,
    )
