"""The serving log: what the online endpoint received and predicted, readable for validation.

``sqlml.serving_predictions`` keeps each input's features as JSON (models differ in their
features, the log table does not). ``features_query(duck, model)`` is SQL that reads them
back as the model's typed feature columns, ready for
``ml_validate(<that query>, '<data schema>', environment := 'serving')``.
"""

from __future__ import annotations

from sqlml.sqlutil import quote_ident, quote_literal


def features_query(duck, model: str) -> str:
    """SELECT of the logged features of ``model`` (any version) as typed columns."""
    from sqlml.models.registry import load_record

    record = load_record(duck, model)
    types = _training_types(duck, record)
    columns = []
    for feature in record.features.features:
        path = quote_literal("$." + _json_key(feature.name))
        sql_type = types.get(feature.name, feature.sql_type)
        if feature.kind in ("categorical", "text"):
            value = f"json_extract_string(features, {path})"
        else:
            value = f"CAST(json_extract(features, {path}) AS {sql_type})"
        columns.append(f"{value} AS {quote_ident(feature.name)}")
    return (
        f"SELECT {', '.join(columns)} FROM sqlml.serving_predictions "
        f"WHERE model = {quote_literal(record.name)}"
    )


def _training_types(duck, record) -> dict[str, str]:
    """Column types of the training query (the feature spec keeps the encoded type, FLOAT,
    not the column's own, and validation compares types); empty if it no longer binds."""
    import duckdb

    if not record.query:
        return {}
    try:
        relation = duck.sql(record.query)
        return {name: str(kind) for name, kind in zip(relation.columns, relation.types, strict=True)}
    except duckdb.Error:
        return {}


def _json_key(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
