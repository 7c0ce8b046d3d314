"""Custom checks: SQL boolean expressions a schema carries, over rows or over the batch.

``ALTER DATA SCHEMA s ADD CHECK name AS distance > 0`` is a row check: every row must
make it true (NULL passes, as in a SQL CHECK constraint); validation reports the failing
rows' count and a few of them. ``ADD STATISTICS CHECK name AS avg(dep_delay) < 60`` is a
check over the batch's statistics: an aggregate expression that must be true for the
whole batch. Both run inside the validation scan. The expression is the user's own SQL,
like a CHECK constraint: it must be one expression (no ``;``, balanced brackets) and must
bind against the schema's columns when it is added.
"""

from __future__ import annotations

import duckdb

from sqlml.errors import ValidationError
from sqlml.query.tokens import tokenize
from sqlml.sqlutil import quote_ident
from sqlml.validation.schema import Check, DataSchema

ROW = "row"
STATISTICS = "statistics"


def expression_guard(expression: str) -> str:
    """The expression, stripped, if it is a single bracket-balanced expression."""
    text = (expression or "").strip()
    if not text:
        raise ValidationError("a check needs a SQL boolean expression after AS")
    depth = 0
    for token in tokenize(text):
        if token.kind != "operator":
            continue
        for char in token.text:
            if char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
            elif char == ";":
                raise ValidationError("a check is one SQL expression; found ';'")
            if depth < 0:
                raise ValidationError(f"unbalanced brackets in check expression: {text!r}")
    if depth != 0:
        raise ValidationError(f"unbalanced brackets in check expression: {text!r}")
    return text


def row_sql(check: Check) -> str:
    """Aggregate counting the rows that fail a row check (NULL passes)."""
    return f"count(*) FILTER (WHERE NOT ({check.expression}))"


def statistics_sql(check: Check) -> str:
    return f"({check.expression})"


def aggregate_sql(check: Check) -> str:
    return row_sql(check) if check.scope == ROW else statistics_sql(check)


def bind_error(duck, columns: list[tuple[str, str]], check: Check) -> str | None:
    """Why the check cannot run over data with these (name, type) columns, or None.

    Bound on a zero-row relation of those types, on a cursor of its own: a failed query
    aborts the transaction it runs in, and the caller's may be a statement's (ACCEPT, or
    training's validation gate).
    """
    zero = f"{typed_relation(columns)} AS __src"
    typed = f"SELECT ({check.expression}), count(*) FROM {zero}" if check.scope == STATISTICS else f"SELECT ({check.expression}) FROM {zero}"
    cursor = duck.cursor()
    try:
        result = cursor.execute(typed)
        result_type = str(result.description[0][1]).upper()
        result.fetchall()
        if check.scope == ROW:
            cursor.execute(f"SELECT {row_sql(check)} FROM {zero}").fetchall()
    except duckdb.Error as error:
        return str(error).strip().splitlines()[0]
    finally:
        cursor.close()
    if result_type != "BOOLEAN":
        return f"the expression is {result_type}, not BOOLEAN"
    return None


def typed_relation(columns: list[tuple[str, str]]) -> str:
    """A zero-row relation with these columns and (DuckDB-reported) types."""
    if not columns:
        return "(SELECT 1 AS __none WHERE false)"
    cols = ", ".join(f"CAST(NULL AS {data_type}) AS {quote_ident(name)}" for name, data_type in columns)
    return f"(SELECT {cols} WHERE false)"


def new_check(duck, schema: DataSchema, name: str, scope: str, expression: str) -> Check:
    """A check that binds against the schema's columns (raises ValidationError otherwise)."""
    check = Check(name=name, scope=scope, expression=expression_guard(expression))
    error = bind_error(duck, [(c.name, c.data_type) for c in schema.columns.values()], check)
    if error:
        hint = (
            " A row check cannot use aggregates (use ADD STATISTICS CHECK)."
            if scope == ROW and "aggregate" in error.lower()
            else " A statistics check must aggregate (avg(x) < 10, count(*) > 100, ...)."
            if scope == STATISTICS and "group by" in error.lower()
            else ""
        )
        raise ValidationError(f"check {name!r} on data schema {schema.name!r} does not bind: {error}.{hint}")
    return check


def referenced_columns(expression: str) -> list[str]:
    """Column names the expression mentions (for examples and environment rules)."""
    import sqlglot  # heavy: only when a schema has checks
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(f"SELECT {expression}", read="duckdb")
    except sqlglot.errors.ParseError:
        return []
    names = []
    for column in tree.find_all(exp.Column):
        if column.name and column.name not in names:
            names.append(column.name)
    return names
