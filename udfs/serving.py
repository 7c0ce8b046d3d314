"""Serving functions: the online endpoint's log read back for skew checks.

Thin wrappers: the work lives in ``sqlml.serving``.
"""

from sqlml.udf import scalar_function


@scalar_function("ml_serving_log_query", returns="VARCHAR", params=["VARCHAR"])
def ml_serving_log_query(session, model):
    """ml_serving_log_query(model): SQL reading the logged request features as typed columns.

    Pass it to ml_validate(..., environment := 'serving') to check training/serving skew.
    """
    from sqlml.serving.log import features_query

    with session.cursor() as cur:
        return features_query(cur, model)
