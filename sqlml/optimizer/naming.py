"""Keeping output column names when a rule rewrites a projection.

DuckDB names an unaliased projection after its own rendering of the expression
(``ml_predict('m', x)``, ``(ml_predict('m', x) > 0)``, ``CAST(... AS INTEGER)``). A rule
that replaces the call inside such a projection would rename the column, so the
projection first gets an explicit alias: the name DuckDB gives it, found by binding
the projection alone over NULL columns of the same names (binding runs nothing).
"""

from __future__ import annotations

from sqlglot import exp


def keep_names(select: exp.Select, occurrences: list[exp.Expression], context) -> None:
    """Alias every unaliased projection of ``select`` holding one of ``occurrences``."""
    for occurrence in occurrences:
        projection = _projection_of(occurrence, select)
        if projection is None or isinstance(projection, exp.Alias):
            continue
        name = duckdb_name(projection, context)
        if name is not None:
            alias = exp.Alias(alias=exp.to_identifier(name, quoted=True))
            projection.replace(alias)
            alias.set("this", projection)  # the same node: occurrences stay attached


def _projection_of(node: exp.Expression, select: exp.Select) -> exp.Expression | None:
    while node.parent is not None and node.parent is not select:
        node = node.parent
    if node.parent is select and node.arg_key == "expressions":
        return node
    return None


def duckdb_name(projection: exp.Expression, context) -> str | None:
    """The column name DuckDB gives ``projection``; None when it cannot tell."""
    if isinstance(projection, exp.Column):
        return projection.name
    connection = context.connection if context is not None else None
    if connection is None:
        return None
    sql = projection.sql(dialect="duckdb", normalize_functions=False)
    names = context.notes.setdefault("names", {})
    if sql not in names:
        names[sql] = _bind_name(connection, projection, sql)
    return names[sql]


def _bind_name(connection, projection: exp.Expression, sql: str) -> str | None:
    import duckdb

    by_table: dict[str, set[str]] = {}
    for column in projection.find_all(exp.Column):
        by_table.setdefault(column.table or "", set()).add(column.name)
    sources = []
    for i, (table, columns) in enumerate(sorted(by_table.items())):
        select_list = ", ".join(f"NULL AS {_quote(c)}" for c in sorted(columns)) or "NULL AS __ml_none"
        sources.append(f"(SELECT {select_list}) AS {_quote(table or f'__ml_probe_{i}')}")
    probe = f"SELECT {sql}" + (f" FROM {', '.join(sources)}" if sources else "")
    try:
        return connection.duckdb.sql(probe).columns[0]
    except duckdb.Error:
        return None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
