"""Model functions: ``ml_predict``, ``ml_predict_value``, ``ml_predict_proba``, ``ml_models``, ``ml_evaluate``.

The prediction functions are Arrow-vectorized: DuckDB hands them chunks of rows, the
model (loaded once per connection and version) scores the whole chunk at once. Feature
arguments follow the training query's column order; a row with a NULL or NaN feature
predicts NULL.
"""

from sqlml.udf import scalar_function, table_function


def _by_model(session, model, features, fn):
    """Score a chunk; rows may name different models. ``fn(loaded, x) -> list`` per row group."""
    import numpy as np
    import pyarrow.compute as pc

    from sqlml.training.registry import load_model

    names = model.to_pylist() if model.null_count or len(pc.unique(model)) > 1 else None
    if names is None:
        loaded = load_model(session, model[0].as_py())
        x, valid = loaded.encode_valid(features)
        return fn(loaded, x, valid)
    out = [None] * len(model)
    for name in {n for n in names if n is not None}:
        rows = np.flatnonzero(np.array([n == name for n in names]))
        loaded = load_model(session, name)
        picked = [pc.take(f, rows) for f in features]
        x, valid = loaded.encode_valid(picked)
        for row, value in zip(rows, fn(loaded, x, valid), strict=True):
            out[row] = value
    return out


def _masked(values, valid):
    return [v if ok else None for v, ok in zip(values, valid, strict=True)]


@scalar_function("ml_predict", returns="VARCHAR", params=None, vectorized=True)
def ml_predict(session, model, *features):
    """ml_predict(model, features...): the predicted class name; a regression model's value as text."""
    import pyarrow as pa

    def score(loaded, x, valid):
        if loaded.record.task == "classification":
            return _masked(loaded.predict(x).tolist(), valid)
        return _masked([repr(float(v)) for v in loaded.predict_value(x)], valid)

    return pa.array(_by_model(session, model, features, score), pa.string())


@scalar_function("ml_predict_value", returns="DOUBLE", params=None, vectorized=True)
def ml_predict_value(session, model, *features):
    """ml_predict_value(model, features...): a regression model's prediction as DOUBLE."""
    import pyarrow as pa

    return pa.array(_by_model(session, model, features, lambda m, x, valid: _masked(m.predict_value(x).tolist(), valid)), pa.float64())


@scalar_function("ml_predict_proba", returns="FLOAT[]", params=None, vectorized=True)
def ml_predict_proba(session, model, *features):
    """ml_predict_proba(model, features...): class probabilities in the order of the model's classes."""
    import pyarrow as pa

    rows = _by_model(session, model, features, lambda m, x, valid: _masked(m.predict_proba(x).tolist(), valid))
    return pa.array(rows, pa.list_(pa.float32()))


@scalar_function("ml_model_classes", returns="VARCHAR[]", params=["VARCHAR"])
def ml_model_classes(session, model):
    """ml_model_classes(model): class names in output order (NULL for regression)."""
    from sqlml.training.registry import load_record

    if model is None:
        return None
    with session.cursor() as cur:
        return load_record(cur, model).classes


@table_function(
    "ml_models",
    columns=[
        ("name", "VARCHAR"),
        ("version", "INTEGER"),
        ("latest", "BOOLEAN"),
        ("architecture", "VARCHAR"),
        ("task", "VARCHAR"),
        ("label", "VARCHAR"),
        ("classes", "VARCHAR[]"),
        ("features", "VARCHAR[]"),
        ("input_shape", "INTEGER[]"),
        ("n_outputs", "INTEGER"),
        ("metrics", "VARCHAR"),
        ("status", "VARCHAR"),
        ("created_at", "TIMESTAMP"),
        ("weight_bytes", "BIGINT"),
    ],
    named=[("name", "VARCHAR", None)],
)
def ml_models(session, name):
    """Every version of every model (or of one, name := '...'), newest first."""
    return session.query(
        "SELECT name, version, version = max(version) OVER (PARTITION BY name), architecture, task, label, classes, "
        "CAST(json_extract_string(features, '$.features[*].name') AS VARCHAR[]), input_shape, n_outputs, "
        "CAST(metrics AS VARCHAR), status, created_at, octet_length(weights) "
        "FROM sqlml.models WHERE ? IS NULL OR name = ? ORDER BY name, version DESC",
        [name, name],
    )


@table_function(
    "ml_evaluate",
    columns=[
        ("model", "VARCHAR"),
        ("version", "INTEGER"),
        ("rows", "BIGINT"),
        ("skipped", "BIGINT"),
        ("accuracy", "DOUBLE"),
        ("f1", "DOUBLE"),
        ("log_loss", "DOUBLE"),
        ("rmse", "DOUBLE"),
        ("mae", "DOUBLE"),
        ("r2", "DOUBLE"),
    ],
    params=[("model", "VARCHAR"), ("query", "VARCHAR")],
    named=[("label", "VARCHAR", None)],
)
def ml_evaluate(session, model, query, label):
    """ml_evaluate(model, query [, label := col]): metrics on the query's rows (features and label by name)."""
    from sqlml.training.evaluate import evaluate_model

    return [evaluate_model(session, model, query, label)]
