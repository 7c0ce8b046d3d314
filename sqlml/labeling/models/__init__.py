"""Label models, by name: each ``fit(stats, options) -> FittedModel`` (see ``base.py``).

``METHODS`` is the table ``CREATE LABEL MODEL ... WITH (method := ...)`` reads;
``METHOD_OPTIONS`` lists the options each method takes besides the common ones.
"""

from __future__ import annotations

from sqlml.labeling.models import dawid_skene, majority, matrix_completion, triplet

DEFAULT_METHOD = "label_model"

METHODS = {
    "label_model": matrix_completion.fit,  # the default: matrix completion, class balance estimated
    "matrix_completion": matrix_completion.fit,
    "majority": majority.fit,
    "dawid_skene": dawid_skene.fit,
    "triplet": triplet.fit,
}

METHOD_OPTIONS = {
    "label_model": ("epochs", "lr", "l2", "abstain", "shrinkage"),
    "matrix_completion": ("epochs", "lr", "l2", "abstain", "shrinkage"),
    "majority": (),
    "dawid_skene": ("max_iter", "tol", "smoothing", "prior_accuracy"),
    "triplet": ("min_overlap", "max_triplets"),
}

#: methods that fit on the co-occurrence matrix (computed in SQL only for them)
USES_COOCCURRENCE = frozenset({"label_model", "matrix_completion", "triplet"})
