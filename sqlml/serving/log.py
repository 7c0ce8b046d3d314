"""The serving log: what the online endpoints received and predicted, readable for validation.

Servers write Parquet segments beside the database (``sqlml.serving.segments``); servers
of older versions wrote the tables ``sqlml.serving_requests`` / ``sqlml.serving_predictions``.
``log_source(duck, kind)`` is SQL over both. Each input's features are kept as JSON (models
differ in their features, the log does not); ``features_query(duck, model)`` is SQL that
reads them back as the model's typed feature columns, ready for
``ml_validate(<that query>, '<data schema>', environment := 'serving')``.

The SQL names the segment files present when it was made, and a file merged away stays
readable for the writer's grace period (120 s by default): run the query when you make it.
"""

from __future__ import annotations

from sqlml.models.published import database_path, folder_of
from sqlml.serving.segments import live_files, log_folder, schemas
from sqlml.sqlutil import quote_ident, quote_literal

#: the log tables of servers before segment files (catalog 6)
TABLES = {"requests": "sqlml.serving_requests", "predictions": "sqlml.serving_predictions"}


def log_source(duck, kind: str) -> str:
    """A parenthesised SELECT of every logged row of ``kind`` ('requests' or 'predictions')."""
    columns = schemas()[kind].names
    parts = []
    if _has_table(duck, TABLES[kind]):
        legacy = ", ".join("NULL AS server" if c == "server" else f"CAST({quote_ident(c)} AS {_sql_type(kind, c)}) AS {quote_ident(c)}" for c in columns)
        parts.append(f"SELECT {legacy} FROM {TABLES[kind]}")
    path = database_path(duck)
    folder = folder_of(path) if path else None
    files = live_files(log_folder(folder), kind) if folder is not None else []
    if files:
        names = ", ".join(quote_literal(str(f.path)) for f in files)
        selected = ", ".join(f"CAST({quote_ident(c)} AS {_sql_type(kind, c)}) AS {quote_ident(c)}" for c in columns)
        parts.append(f"SELECT {selected} FROM read_parquet([{names}])")
    if not parts:
        empty = ", ".join(f"CAST(NULL AS {_sql_type(kind, c)}) AS {quote_ident(c)}" for c in columns)
        parts.append(f"SELECT {empty} WHERE false")
    return "(" + " UNION ALL ".join(parts) + ")"


def _sql_type(kind: str, column: str) -> str:
    import pyarrow as pa

    arrow = schemas()[kind].field(column).type
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMP"
    return {"string": "VARCHAR", "int32": "INTEGER", "double": "DOUBLE", "bool": "BOOLEAN"}[str(arrow)]


def _has_table(duck, qualified: str) -> bool:
    schema, table = qualified.split(".")
    found = duck.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, table]
    ).fetchall()
    return bool(found[0][0])


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
        f"SELECT {', '.join(columns)} FROM {log_source(duck, 'predictions')} AS log "
        f"WHERE model = {quote_literal(record.name)} AND features IS NOT NULL"
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
