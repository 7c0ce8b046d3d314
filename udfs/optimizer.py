"""Optimizer functions: its model functions, its rules and their switches, the prediction cache.

Thin wrappers: the work lives in ``sqlml.optimizer`` (the cache in ``sqlml.optimizer.runtime.cache_store``).
"""

from sqlml.udf import scalar_function, table_function


@table_function(
    "ml_model_functions",
    columns=[
        ("name", "VARCHAR"),
        ("cost", "DOUBLE"),
        ("cacheable", "BOOLEAN"),
        ("batch_path", "BOOLEAN"),
        ("description", "VARCHAR"),
    ],
)
def ml_model_functions(session):
    """Functions the optimizer treats as model calls (sqlml.optimizer.model_functions)."""
    from sqlml.optimizer.model_functions import describe

    return describe()


@table_function(
    "ml_optimizer_rules",
    columns=[("position", "INTEGER"), ("rule", "VARCHAR"), ("enabled", "BOOLEAN"), ("description", "VARCHAR")],
)
def ml_optimizer_rules(session):
    """The rewrite rules for model calls, in the order they run, and whether each is on."""
    import sys

    from sqlml import optimizer

    disabled = session.cache("optimizer").get("disabled", frozenset())
    rows = []
    for i, rule in enumerate(optimizer.RULES, start=1):
        name = optimizer.rule_name(rule)
        doc = (sys.modules[rule.__module__].__doc__ or "").strip().splitlines()
        rows.append((i, name, name not in disabled, doc[0].removeprefix("Rule: ") if doc else ""))
    return rows


@scalar_function("ml_optimizer_rule", returns="VARCHAR", params=["VARCHAR", "BOOLEAN"], side_effects=True)
def ml_optimizer_rule(session, rule, enabled):
    """ml_optimizer_rule(rule, enabled): switch a rewrite rule on or off for this connection."""
    from sqlml import optimizer

    optimizer.set_rule_enabled(session, rule, bool(enabled))
    return f"{rule} {'on' if enabled else 'off'}"


@table_function(
    "ml_prediction_cache",
    columns=[
        ("function", "VARCHAR"),
        ("model", "VARCHAR"),
        ("version", "INTEGER"),
        ("lookups", "BIGINT"),
        ("hits", "BIGINT"),
        ("misses", "BIGINT"),
        ("cached_rows", "BIGINT"),
        ("updated_at", "TIMESTAMP"),
    ],
)
def ml_prediction_cache(session):
    """What the prediction cache holds per model function and model, with hit and miss counts."""
    from sqlml.optimizer.runtime import cache_store

    with session.cursor() as cur:
        return cache_store.stats(cur)


@scalar_function("ml_clear_prediction_cache", returns="BIGINT", params=["VARCHAR"], side_effects=True)
def ml_clear_prediction_cache(session, model):
    """ml_clear_prediction_cache(model or NULL): delete cached predictions; returns rows deleted."""
    from sqlml.optimizer.runtime import cache_store

    with session.cursor() as cur:
        return cache_store.clear(cur, model)
