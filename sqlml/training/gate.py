"""``validate := 'schema'``: refuse to train on data with error-level anomalies.

The gate calls data validation through its SQL surface, ``ml_validate(query, schema)``,
so it needs nothing from that package but the function; until the function exists in
this build the option is refused with a clear message.
"""

from __future__ import annotations

from sqlml.errors import InvalidOptionError, TrainingError
from sqlml.sqlutil import fetch_value, quote_literal


def check_training_data(duck, schema: str, query: str, *, model: str) -> None:
    """Raise ``TrainingError`` listing the error-level anomalies of ``query`` against ``schema``."""
    available = fetch_value(duck, "SELECT count(*) FROM duckdb_functions() WHERE function_name = 'ml_validate'")
    if not available:
        raise InvalidOptionError(
            "CREATE MODEL",
            "validate",
            "needs sqlml data validation (the ml_validate function), which this installation does not have yet; "
            "leave the option out to train without the check",
        )
    text = query.strip().rstrip(";")
    relation = duck.sql(f"SELECT * FROM ml_validate({quote_literal(text)}, {quote_literal(schema)})")
    columns = [c.lower() for c in relation.columns]
    rows = relation.fetchall()
    level = next((columns.index(c) for c in ("severity", "level") if c in columns), None)
    errors = [r for r in rows if level is None or str(r[level]).lower() == "error"]
    if errors:
        shown = "; ".join(", ".join(f"{c}={v}" for c, v in zip(relation.columns, r, strict=True) if v is not None) for r in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise TrainingError(
            f"model {model!r} was not trained: the training query has {len(errors)} error-level anomal"
            f"{'y' if len(errors) == 1 else 'ies'} against data schema {schema!r}: {shown}{more}. "
            f"Fix the data, or accept the change into the schema (ALTER DATA SCHEMA ... ACCEPT ...)."
        )
