"""``validate := 'schema'``: refuse to train on data with error-level anomalies.

The check is data validation's own (``sqlml.validation.api.assert_valid``) run on the
training query inside the CREATE MODEL transaction, so it sees exactly the rows that
would be trained on; warnings do not stop training.
"""

from __future__ import annotations

from sqlml.errors import DataAnomalyError, TrainingError


def check_training_data(duck, schema: str, query: str, *, model: str) -> dict:
    """Raise ``TrainingError`` (caused by ``DataAnomalyError``) when ``query`` fails ``schema``;
    else the result for the model's lineage: passed, and the warnings let through."""
    from sqlml.validation import api

    try:
        found = api.assert_valid(duck, query.strip().rstrip(";"), schema, action=f"CREATE MODEL {model}")
        return {
            "passed": True,
            "warnings": len(found),
            "anomalies": [{"column": a.column_name, "type": a.anomaly_type, "severity": a.severity} for a in found[:20]],
        }
    except DataAnomalyError as anomalies:
        raise TrainingError(
            f"model {model!r} was not trained: {anomalies}"
        ) from anomalies
