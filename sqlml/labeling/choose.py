"""``method := 'auto'``: the label model that labels the gold rows best.

Each candidate method is fitted with the gold labels hidden (the GOLD rows count as
unlabeled rows, so no candidate sees them), its hard labels are compared with the gold
labels (accuracy over the gold rows, counted by rows), and the best one is then fitted as
usual, gold included. Ties go to the earlier candidate. All fits run on the vote patterns,
so choosing costs a few fits of P patterns, not passes over the rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sqlml.errors import InvalidOptionError
from sqlml.labeling.models import METHODS
from sqlml.labeling.models.stats import VoteStats

CANDIDATES = ("label_model", "majority", "dawid_skene", "triplet")


def choose_method(duck, stats: VoteStats, options: dict) -> tuple[str, dict[str, float]]:
    from sqlml.labeling.fit import resolve_options
    from sqlml.labeling.output import hard_labels

    gold = stats.gold >= 0
    if not gold.any():
        raise InvalidOptionError(
            "CREATE LABEL MODEL", "method",
            "'auto' picks the method that labels the gold rows best: add GOLD column (with some labels)",
        )
    hidden = dataclasses.replace(stats, gold=np.full_like(stats.gold, -1))
    common = {k: v for k, v in options.items() if k != "method"}
    if common.get("class_balance") == "gold":  # the gold counts, as a fixed balance
        common["class_balance"] = (np.bincount(stats.gold[gold], weights=stats.counts[gold], minlength=stats.k) + 1.0).tolist()
    scores = {}
    for method in CANDIDATES:
        model = METHODS[method](hidden, resolve_options(duck, hidden, method, common))
        labels = hard_labels(model.posterior(hidden), model.class_balance)
        right = stats.counts[gold] * (labels[gold] == stats.gold[gold])
        scores[method] = round(float(right.sum() / stats.counts[gold].sum()), 6)
    return max(CANDIDATES, key=lambda m: scores[m]), scores
