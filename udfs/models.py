"""Model functions: ``ml_predict``, ``ml_predict_value``, ``ml_predict_proba``, ``ml_models``, ``ml_evaluate``.

The prediction functions are Arrow-vectorized: DuckDB hands them chunks of rows, the
model (loaded once per connection and version) scores the whole chunk at once. Feature
arguments follow the training query's column order; a row with a NULL or NaN feature
predicts NULL.
"""

from sqlml.udf import scalar_function, table_function


def _by_model(session, model, features, score, null):
    """Score one chunk. ``score(loaded, x, valid) -> pyarrow.Array``; rows may name different models.

    ``null`` is a pyarrow type: the result type, for rows whose model name is NULL.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from sqlml.models.loading import load_model

    names = pc.unique(model)
    if model.null_count == 0 and len(names) == 1:
        loaded = load_model(session, names[0].as_py())
        x, valid = loaded.encode_valid(features)
        return score(loaded, x, valid)
    parts, positions = [], []
    for name in names.drop_null().to_pylist():
        rows = np.flatnonzero(pc.equal(model, name).fill_null(False).to_numpy(zero_copy_only=False))
        loaded = load_model(session, name)
        x, valid = loaded.encode_valid([pc.take(f, rows) for f in features])
        parts.append(score(loaded, x, valid))
        positions.append(rows)
    missing = np.flatnonzero(model.is_null().to_numpy(zero_copy_only=False))
    parts.append(pa.nulls(len(missing), null))
    positions.append(missing)
    order = np.argsort(np.concatenate(positions), kind="stable")
    return pa.concat_arrays([p.cast(null) for p in parts]).take(pa.array(order))


@scalar_function("ml_predict", returns="VARCHAR", params=None, vectorized=True)
def ml_predict(session, model, *features):
    """ml_predict(model, features...): the predicted class name; a regression model's value as text."""
    import pyarrow as pa

    def score(loaded, x, valid):
        if loaded.record.task == "classification":
            values, ok = loaded.predictions(x, valid, "index")
            return pa.array(loaded.record.classes, pa.string()).take(pa.array(values, mask=~ok))
        values, ok = loaded.predictions(x, valid, "value")
        return pa.array(values, mask=~ok).cast(pa.string())

    return _by_model(session, model, features, score, pa.string())


@scalar_function("ml_predict_value", returns="DOUBLE", params=None, vectorized=True)
def ml_predict_value(session, model, *features):
    """ml_predict_value(model, features...): a regression model's prediction as DOUBLE."""
    import pyarrow as pa

    def score(loaded, x, valid):
        values, ok = loaded.predictions(x, valid, "value")
        return pa.array(values, mask=~ok)

    return _by_model(session, model, features, score, pa.float64())


@scalar_function("ml_predict_proba", returns="FLOAT[]", params=None, vectorized=True)
def ml_predict_proba(session, model, *features):
    """ml_predict_proba(model, features...): class probabilities in the order of the model's classes."""
    import numpy as np
    import pyarrow as pa

    def score(loaded, x, valid):
        probs, ok = loaded.predictions(x, valid, "proba")
        probs = probs.astype(np.float32, copy=False)
        n, k = probs.shape
        offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array(probs.reshape(-1)), mask=pa.array(~ok))

    return _by_model(session, model, features, score, pa.list_(pa.float32()))


@table_function(
    "ml_prediction_nulls",
    columns=[("model", "VARCHAR"), ("version", "INTEGER"), ("reason", "VARCHAR"), ("rows", "BIGINT")],
)
def ml_prediction_nulls(session):
    """Rows whose prediction was NULL in this session, by model, version and reason.

    ``invalid_input``: a NULL, NaN or infinite feature (or a number beyond ±3.4e38);
    ``non_finite_output``: the network's output was NaN or infinite. Predictions are never NaN.
    """
    from sqlml.models.nulls import counts_of

    return counts_of(session).rows()


@scalar_function("ml_model_classes", returns="VARCHAR[]", params=["VARCHAR"])
def ml_model_classes(session, model):
    """ml_model_classes(model): class names in output order (NULL for regression)."""
    from sqlml.models.registry import load_record

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
    sources=("query",),
)
def ml_evaluate(session, model, query, label):
    """ml_evaluate(model, query [, label := col]): metrics on the query's rows (features and label by name)."""
    from sqlml.training.evaluate import evaluate_model

    return [evaluate_model(session, model, query, label)]


@table_function(
    "ml_lineage",
    columns=[
        ("model", "VARCHAR"),
        ("version", "INTEGER"),
        ("created_at", "TIMESTAMP"),
        ("status", "VARCHAR"),
        ("aliases", "VARCHAR[]"),
        ("tables", "VARCHAR[]"),
        ("label_model", "VARCHAR"),
        ("label_model_fitted_at", "VARCHAR"),
        ("data_schema", "VARCHAR"),
        ("data_schema_version", "INTEGER"),
        ("validation", "VARCHAR"),
        ("training_query", "VARCHAR"),
        ("lineage", "VARCHAR"),
    ],
    params=[("model", "VARCHAR")],
)
def ml_lineage(session, model):
    """ml_lineage(model): per version, what it was trained on: tables, label model, data schema version, validation result."""
    import json

    from sqlml.models.aliases import aliases
    from sqlml.models.registry import load_record, split_reference

    with session.cursor() as cur:
        name, _ = split_reference(cur, model)
        load_record(cur, name)  # an unknown model is an error with near names
        by_version = {}
        for alias, version in aliases(cur, name).items():
            by_version.setdefault(version, []).append(alias)
        versions = [r[0] for r in cur.execute("SELECT version FROM sqlml.models WHERE name = ? ORDER BY version DESC", [name]).fetchall()]
        rows = []
        for version in versions:
            record = load_record(cur, name, version)
            found = record.lineage or {}
            label_model = found.get("label_model") or {}
            schema = found.get("data_schema") or {}
            rows.append((
                name, version, record.created_at, record.status, by_version.get(version, []), found.get("tables"),
                label_model.get("name"), label_model.get("fitted_at"), schema.get("name"), schema.get("version"),
                json.dumps(found["validation"]) if found.get("validation") else None, record.query, json.dumps(found) if found else None,
            ))
    return rows
