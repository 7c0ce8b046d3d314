"""``ml_catalog()``: every sqlml object in this database, from the object directory."""

from sqlml.udf import table_function


@table_function(
    "ml_catalog",
    columns=[
        ("kind", "VARCHAR"),
        ("name", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("updated_at", "TIMESTAMP"),
        ("properties", "VARCHAR"),
    ],
    named=[("kind", "VARCHAR", None)],
)
def ml_catalog(session, kind):
    """Objects sqlml knows (labeling functions, label models, data schemas, models, ...)."""
    return session.query(
        "SELECT kind, name, created_at, updated_at, CAST(properties AS VARCHAR) FROM sqlml.objects "
        "WHERE ? IS NULL OR kind = ? ORDER BY kind, name",
        [kind, kind],
    )
