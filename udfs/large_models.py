"""Large-model functions: ``ml_memory_estimate`` (before training) and ``ml_model_grid`` (after CREATE MODELS)."""

from sqlml.udf import table_function


@table_function(
    "ml_memory_estimate",
    columns=[
        ("shard", "INTEGER"),
        ("layers", "VARCHAR"),
        ("weights", "BIGINT"),
        ("gradients", "BIGINT"),
        ("optimizer_state", "BIGINT"),
        ("activations", "BIGINT"),
        ("boundary", "BIGINT"),
        ("peak", "BIGINT"),
        ("fits", "BOOLEAN"),
        ("verdict", "VARCHAR"),
    ],
    params=[("query", "VARCHAR"), ("options", "VARCHAR")],
    sources=("query",),
)
def ml_memory_estimate(session, query, options):
    """Per-shard device bytes of a model (spill strategy) at its batch size, and whether it fits."""
    from sqlml.training.large.estimate_sql import estimate_rows

    return estimate_rows(session, query, options)


@table_function(
    "ml_model_grid",
    columns=[
        ("model", "VARCHAR"),
        ("version", "INTEGER"),
        ("params", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("value", "DOUBLE"),
        ("best", "BOOLEAN"),
        ("worker", "INTEGER"),
    ],
    params=[("grid", "VARCHAR")],
)
def ml_model_grid(session, grid):
    """The models a CREATE MODELS statement made (latest versions), best first."""
    return session.query(
        """
        WITH latest AS (
            SELECT name, max(version) AS version FROM sqlml.models GROUP BY name
        )
        SELECT m.name, m.version,
               CAST(json_extract(m.metrics, '$.grid_params') AS VARCHAR),
               json_extract_string(m.metrics, '$.grid_metric'),
               TRY_CAST(json_extract_string(m.metrics, '$.' || json_extract_string(m.metrics, '$.grid_metric')) AS DOUBLE),
               CAST(json_extract(m.metrics, '$.grid_best') AS BOOLEAN),
               TRY_CAST(json_extract_string(m.metrics, '$.grid_worker') AS INTEGER)
        FROM sqlml.models m JOIN latest USING (name, version)
        WHERE json_extract_string(m.metrics, '$.grid') = ?
        ORDER BY CAST(json_extract(m.metrics, '$.grid_best') AS BOOLEAN) DESC, m.name
        """,
        [grid],
    )
