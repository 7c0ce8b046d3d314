"""The sufficient statistics a label model fits on: distinct vote patterns and their counts.

Under conditional independence every row with the same votes (and the same gold label)
has the same posterior, so a table of n rows reduces to P distinct patterns with a
count each; SQL does that reduction (``GROUP BY``), and numpy works on the patterns.
Patterns are stored sparsely: one entry per (pattern, labeling function, label) vote,
never a dense n x m x k one-hot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class VoteStats:
    k: int  # number of classes
    m: int  # number of labeling functions
    counts: np.ndarray  # [P] rows with this pattern
    gold: np.ndarray  # [P] gold class index, -1 for rows without gold
    entry_pattern: np.ndarray  # [E] pattern of each vote
    entry_lf: np.ndarray  # [E] labeling function (0..m-1) of each vote
    entry_label: np.ndarray  # [E] class voted (0..k-1)

    @property
    def n_patterns(self) -> int:
        return len(self.counts)

    @property
    def n_rows(self) -> float:
        return float(self.counts.sum())

    @classmethod
    def from_matrix(cls, L: np.ndarray, k: int, gold: np.ndarray | None = None) -> VoteStats:
        """From a dense label matrix (-1 abstains); for tests and benchmarks, not the database path."""
        L = np.asarray(L, dtype=np.int64)
        n, m = L.shape
        g = np.full(n, -1, dtype=np.int64) if gold is None else np.asarray(gold, dtype=np.int64)
        keyed = np.concatenate([L + 1, g[:, None] + 1], axis=1)
        uniq, inverse, counts = np.unique(keyed, axis=0, return_inverse=True, return_counts=True)
        rows, lfs = np.nonzero(uniq[:, :m] > 0)
        return cls(
            k=k,
            m=m,
            counts=counts.astype(np.float64),
            gold=uniq[:, m] - 1,
            entry_pattern=rows,
            entry_lf=lfs,
            entry_label=uniq[rows, lfs] - 1,
        )

    # -- aggregates used by every model -------------------------------------------------
    def vote_counts(self) -> np.ndarray:
        """[P, k]: how many votes each class gets in each pattern."""
        flat = np.bincount(self.entry_pattern * self.k + self.entry_label, minlength=self.n_patterns * self.k)
        return flat.reshape(self.n_patterns, self.k).astype(np.float64)

    def weighted_votes(self, weights: np.ndarray) -> np.ndarray:
        """[m, k_label, k_class]: sum over patterns of weights[p, class] for each (lf, label) vote."""
        index = self.entry_lf * self.k + self.entry_label
        out = np.empty((self.m * self.k, weights.shape[1]))
        for c in range(weights.shape[1]):
            out[:, c] = np.bincount(index, weights=weights[self.entry_pattern, c], minlength=self.m * self.k)
        return out.reshape(self.m, self.k, weights.shape[1])

    def logits(self, log_prior: np.ndarray, log_vote: np.ndarray, log_abstain: np.ndarray | None = None) -> np.ndarray:
        """[P, k] unnormalised log posteriors of a conditionally independent model.

        ``log_vote[j, a, y]`` = log P(lf j votes a | y); ``log_abstain[j, y]`` = log P(lf j
        abstains | y), or None when abstains carry no information (they are then skipped).
        """
        base = np.array(log_prior, dtype=np.float64)
        delta = np.array(log_vote, dtype=np.float64)
        if log_abstain is not None:
            base = base + log_abstain.sum(axis=0)
            delta = delta - log_abstain[:, None, :]
        out = np.tile(base, (self.n_patterns, 1))
        contrib = delta[self.entry_lf, self.entry_label]  # [E, k]
        for c in range(self.k):
            out[:, c] += np.bincount(self.entry_pattern, weights=contrib[:, c], minlength=self.n_patterns)
        return out

    def cooccurrence(self) -> np.ndarray:
        """[m*k, m*k] fraction of rows where (lf_a votes a) and (lf_b votes b); diagonal = marginals."""
        d = self.m * self.k
        index = self.entry_lf * self.k + self.entry_label
        order = np.argsort(self.entry_pattern, kind="stable")
        pat, idx = self.entry_pattern[order], index[order]
        starts = np.searchsorted(pat, np.arange(self.n_patterns))
        ends = np.searchsorted(pat, np.arange(self.n_patterns), side="right")
        sizes = ends - starts
        O = np.zeros((d, d))
        for size in np.unique(sizes[sizes > 0]):
            which = np.nonzero(sizes == size)[0]
            block = idx[starts[which][:, None] + np.arange(size)]  # [p, size]
            w = self.counts[which]
            a = np.repeat(block, size, axis=1).ravel()
            b = np.tile(block, (1, size)).ravel()
            np.add.at(O, (a, b), np.repeat(w, size * size))
        return O / max(self.n_rows, 1.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def clamp_gold(probs: np.ndarray, gold: np.ndarray, k: int) -> np.ndarray:
    """Rows with a gold label get a one-hot posterior."""
    out = probs.copy()
    has = gold >= 0
    if has.any():
        out[has] = np.eye(k)[gold[has]]
    return out
