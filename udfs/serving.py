"""Serving functions: the online endpoints' log read back, for skew checks and monitoring.

Thin wrappers: the work lives in ``sqlml.serving``. Servers write their log to Parquet
segment files beside the database (never to the database itself), so these work from
any process while servers run; rows appear within about a second (``--log-flush-ms``).
"""

from sqlml.udf import scalar_function, table_function


@scalar_function("ml_serving_log_query", returns="VARCHAR", params=["VARCHAR"])
def ml_serving_log_query(session, model):
    """ml_serving_log_query(model): SQL reading the logged request features as typed columns.

    Pass it to ml_validate(..., environment := 'serving') to check training/serving skew.
    """
    from sqlml.serving.log import features_query

    with session.cursor() as cur:
        return features_query(cur, model)


def _log_rows(session, kind, model):
    from sqlml.serving.log import log_source

    with session.cursor() as cur:
        source = log_source(cur, kind)
        order = "received_at" if kind == "requests" else "logged_at, request_id, row_index"
        return cur.execute(f"SELECT * FROM {source} AS log WHERE ? IS NULL OR model = ? ORDER BY {order}", [model, model]).fetchall()


@table_function(
    "ml_serving_requests",
    columns=[
        ("request_id", "VARCHAR"),
        ("received_at", "TIMESTAMP"),
        ("model", "VARCHAR"),
        ("version", "INTEGER"),
        ("status", "INTEGER"),
        ("rows", "INTEGER"),
        ("latency_ms", "DOUBLE"),
        ("error", "VARCHAR"),
        ("client", "VARCHAR"),
        ("server", "VARCHAR"),
    ],
    named=[("model", "VARCHAR", None)],
)
def ml_serving_requests(session, model):
    """Every request the endpoints answered (or of one model, model := '...'), oldest first."""
    return _log_rows(session, "requests", model)


@table_function(
    "ml_serving_predictions",
    columns=[
        ("request_id", "VARCHAR"),
        ("row_index", "INTEGER"),
        ("model", "VARCHAR"),
        ("version", "INTEGER"),
        ("logged_at", "TIMESTAMP"),
        ("features", "VARCHAR"),
        ("prediction", "VARCHAR"),
        ("cached", "BOOLEAN"),
        ("server", "VARCHAR"),
    ],
    named=[("model", "VARCHAR", None)],
)
def ml_serving_predictions(session, model):
    """Every prediction the endpoints made, with its input features as JSON (NULL past the size cap)."""
    return _log_rows(session, "predictions", model)
