"""Weak supervision views: the labeling functions' summary and the label model's confidence."""

from __future__ import annotations

from sqlml import plots
from sqlml.sqlutil import table_ref
from sqlml.views.base import View, literal, read


class LFSummary(View):
    """``ml_lf_summary``: coverage, overlap, conflict; empirical and learned accuracy."""

    columns_shown = ("lf", "kind", "polarity", "coverage", "overlap", "conflict", "correct", "incorrect", "emp_accuracy", "learned_accuracy")

    def figure(self):
        return plots.lf_summary(self.rows, title=self.title)


class LabelConfidence(View):
    """The label model's rows: label, confidence, source (gold, weak, abstain)."""

    columns_shown = ("label", "source", "rows", "mean_confidence")

    def __init__(self, rows, summary, title):
        super().__init__(summary, title)
        self.labels = rows

    def figure(self):
        return plots.confidence_histogram(self.labels, title=self.title)


def lf_summary(con, table: str, *, gold: str | None = None, label_model: str | None = None) -> LFSummary:
    """Snorkel's LF summary of ``table``'s labeling functions (``gold``: a column of true labels)."""
    rows = read(con, f"SELECT * FROM ml_lf_summary({literal(table)}, gold := {literal(gold)}, label_model := {literal(label_model)})")
    return LFSummary(rows, f"labeling functions on {table}")


def label_confidence(con, label_model: str) -> LabelConfidence:
    """How sure the label model is: the histogram of its confidence per label, and a count per (label, source)."""
    source = table_ref(label_model)
    rows = read(con, f"SELECT label, confidence FROM {source} WHERE source = 'weak'")
    summary = read(
        con,
        f"SELECT label, source, count(*) AS rows, avg(confidence) AS mean_confidence FROM {source} GROUP BY ALL ORDER BY label, source",
    )
    return LabelConfidence(rows, summary, f"label model {label_model}: confidence of weak labels")
