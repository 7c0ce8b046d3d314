"""Presence: a column NULL more often than the schema's min_fraction allows.

The test is one-sided binomial: with a tolerated missing rate 1 - min_fraction, is the
batch's NULL count too large to be chance at the schema's significance? Small batches
therefore need a larger excess before anything is reported.
"""

from __future__ import annotations

from sqlml.validation.significance import count_exceeds


def plan(run) -> list:
    return []


def detect(run) -> list:
    found = []
    for expected, actual in run.checked():
        stats = run.stats.columns[actual.name]
        rows = stats.rows
        if rows == 0 or expected.min_fraction <= 0:
            continue
        if not count_exceeds(stats.missing, rows, 1.0 - expected.min_fraction, run.alpha):
            continue
        observed = f"{stats.count / rows:.2%} present ({stats.missing:,} of {rows:,} rows NULL)"
        wanted = f">= {expected.min_fraction:.2%} present"
        if stats.count == 0:
            found.append(run.anomaly(
                "FEATURE_TYPE_NOT_PRESENT", actual.name, f"column {actual.name!r} is NULL in all {rows:,} rows",
                observed=observed, expected=wanted, metric=0.0, threshold=expected.min_fraction,
            ))
        else:
            found.append(run.anomaly(
                "FEATURE_TYPE_LOW_FRACTION_PRESENT", actual.name,
                f"column {actual.name!r} is NULL in {stats.missing / rows:.2%} of rows; the schema tolerates "
                f"{1 - expected.min_fraction:.2%}",
                observed=observed, expected=wanted, metric=stats.count / rows, threshold=expected.min_fraction,
            ))
    return found
