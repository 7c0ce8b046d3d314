"""What every label model returns: class balance, per-LF vote distributions, accuracies.

All four methods are conditionally independent models, so a fitted model is fully
described by ``P(Y)`` and, for each labeling function j, ``P(vote = a | Y = y)``
(``log_vote[j, a, y]``) and optionally ``P(abstain | Y = y)`` (``log_abstain[j, y]``).
The posterior of a row then depends only on its vote pattern (see ``stats.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sqlml.labeling.models.stats import VoteStats, softmax

EPS = 1e-6


@dataclass
class FittedModel:
    method: str
    class_balance: np.ndarray  # [k]
    log_vote: np.ndarray  # [m, k, k]: log P(lf j votes a | y)
    log_abstain: np.ndarray | None  # [m, k]: log P(lf j abstains | y), None: abstains ignored
    history: list[float] = field(default_factory=list)  # loss or log-likelihood per iteration
    iterations: int = 0
    info: dict = field(default_factory=dict)

    def posterior(self, stats: VoteStats) -> np.ndarray:
        """[P, k] P(Y | votes) for every pattern (gold not applied)."""
        log_prior = np.log(np.clip(self.class_balance, EPS, None))
        return softmax(stats.logits(log_prior, self.log_vote, self.log_abstain))

    def accuracies(self) -> np.ndarray:
        """[m] learned P(vote is right | the LF votes), the number Snorkel calls the LF weight."""
        vote = np.exp(self.log_vote)  # [m, a, y]
        p = self.class_balance
        right = np.einsum("jyy,y->j", vote, p)
        fired = np.einsum("jay,y->j", vote, p)
        return np.where(fired > 0, right / np.maximum(fired, EPS), 0.0)


def symmetric_log_vote(accuracy: np.ndarray, k: int) -> np.ndarray:
    """log P(vote a | y) (up to the coverage factor) when an LF is right with ``accuracy``
    and spreads its errors evenly over the other classes."""
    acc = np.clip(np.asarray(accuracy, dtype=np.float64), EPS, 1 - EPS)
    wrong = (1 - acc) / (k - 1)
    eye = np.eye(k, dtype=bool)
    return np.log(np.where(eye[None], acc[:, None, None], wrong[:, None, None]))


def normalise(p: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), floor, None)
    return p / p.sum()
