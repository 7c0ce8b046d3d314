"""``LOAD VIDEO 'file' INTO table [WITH (...)]``: stream a video's frames into a table.

Unlike ``CREATE TABLE t AS SELECT * FROM ml_read_video(...)`` (a table function
returns all its rows at once), the frames go from the decoder to DuckDB in Arrow
batches, so a long video never sits in memory.
"""

from __future__ import annotations

from sqlml import bounds
from sqlml.errors import InvalidOptionError, ObjectExistsError, UnknownObjectError
from sqlml.sqlutil import fetch_value

OPTIONS = ("fps", "size", "start", "stop", "end", "video", "replace", "batch_frames", "partial")


def load_video(ctx):
    """``LOAD VIDEO 'path' INTO name [WITH (fps := 5, size := [h, w], start := 1.0, stop := 9.0,
    video := 'id', replace := true, batch_frames := 32, partial := true)]``; shows the rows written."""
    import pyarrow as pa

    from sqlml.incremental.video import load_video as load

    p = ctx.parser()
    p.expect("LOAD", "VIDEO")
    path = p.literal()
    if not isinstance(path, str):
        p.error("expected the video file's path as a string")
    p.expect("INTO")
    table = p.qualified_name("a table name")
    options = p.options() if p.accept("WITH") else {}
    p.end()
    for key in options:
        if key not in OPTIONS:
            raise InvalidOptionError("LOAD VIDEO", key, allowed=OPTIONS)
    batch_frames = bounds.require("LOAD VIDEO", "batch_frames", options.get("batch_frames", 32), bounds.whole(1, bounds.MAX_BATCH_ROWS))
    replace = bool(options.get("replace", False))
    if len(table) > 1 and not _schema_exists(ctx.duck, table[:-1]):
        raise UnknownObjectError("schema", ".".join(table[:-1]), hint=f"Create it first (CREATE SCHEMA {table[-2]}) or load into an existing one.")
    if not replace and _exists(ctx.duck, table):
        raise ObjectExistsError("table", ".".join(table), hint="Add WITH (replace := true) to overwrite it, or load into another table.")
    stop = options.get("stop", options.get("end"))
    rows = load(ctx.duck, path, table, replace=replace, video=options.get("video"),
                batch_frames=batch_frames, fps=options.get("fps"), size=options.get("size"),
                start=options.get("start"), stop=stop, partial=bool(options.get("partial", False)))  # fmt: skip
    summary = pa.table({"video": [options.get("video") or path], "table": [".".join(table)], "frames": [rows]})
    return ctx.connection.wrap(ctx.duck.from_arrow(summary))


def _exists(duck, table: tuple[str, ...]) -> bool:
    """Whether ``table`` names a table or view already (looked up, not bound: a failed bind
    would abort the statement's transaction)."""
    *qualifier, name = table
    database, schema = ([None, None] + list(qualifier))[-2:]
    found = fetch_value(
        duck,
        "SELECT count(*) FROM (SELECT database_name, schema_name, table_name AS name FROM duckdb_tables() "
        "UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views() WHERE NOT internal) "
        "WHERE lower(name) = lower($1) AND lower(schema_name) = lower(coalesce($2, current_schema())) "
        "AND lower(database_name) = lower(coalesce($3, current_database()))",
        [name, schema, database],
    )
    return bool(found)


def _schema_exists(duck, qualifier: tuple[str, ...]) -> bool:
    """Whether ``[database.]schema`` exists; a lone qualifier may also name an attached
    database, as DuckDB reads ``a.t`` (looked up, not bound, as ``_exists``)."""
    if len(qualifier) == 1:
        sql = ("SELECT (SELECT count(*) FROM duckdb_schemas() WHERE lower(schema_name) = lower($1) "
               "AND database_name = current_database()) + "
               "(SELECT count(*) FROM duckdb_databases() WHERE lower(database_name) = lower($1))")
        return bool(fetch_value(duck, sql, [qualifier[0]]))
    database, schema = qualifier[-2:]
    sql = ("SELECT count(*) FROM duckdb_schemas() WHERE lower(schema_name) = lower($1) "
           "AND lower(database_name) = lower($2)")
    return bool(fetch_value(duck, sql, [schema, database]))
