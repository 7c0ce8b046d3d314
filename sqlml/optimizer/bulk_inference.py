"""Rule: batch-scoring statements stream their rows through the model in large batches.

``CREATE TABLE p AS SELECT id, ml_predict('m', a, b) AS label FROM big`` becomes

    CREATE TABLE p AS SELECT __c0 AS id, __ml_v1 AS label FROM __sqlml_bulk_7

where ``__sqlml_bulk_7`` is an Arrow stream registered just before the statement runs:
the input query ``SELECT id, NULL AS __ml_slot_1, a AS __ml_a1_0, b AS __ml_a1_1 FROM big``
is read in Arrow batches (65,536 rows on a GPU, 8,192 on CPU) that go through the model
function's batch path on several threads (see ``sqlml.optimizer.runtime.bulk_stream``), instead of
DuckDB's 2048-row UDF chunks.

It applies to CREATE TABLE AS and INSERT ... SELECT whose model calls sit only in the
SELECT list of a plain (not aggregating, not DISTINCT, not windowed) query, of at least
``MIN_ROWS`` rows, outside an explicit transaction (the stream reads on a cursor, which
sees committed data only). When the inputs repeat a lot (distinct inputs below
``MAX_DISTINCT_SHARE`` of the rows, estimated with approx_count_distinct) it steps aside:
deduplication and the prediction cache compute less.
"""

from __future__ import annotations

from sqlglot import exp

from sqlml.optimizer.naming import duckdb_name
from sqlml.optimizer.scopes import (
    call_groups,
    clause_of,
    hoistable,
    is_aggregate_scope,
    key_positions,
    named_constants,
    select_from,
    within,
)

NAME = "bulk_inference"
MIN_ROWS = 20_000
MAX_DISTINCT_SHARE = 0.5


def rule(expression: exp.Expression, context) -> exp.Expression:
    connection = context.connection
    select = _batch_select(expression)
    if select is None or connection is None:
        return expression
    groups = call_groups(select)
    if not groups or not _eligible(select, groups):
        return expression
    versions = [g.function.version(connection, g.model) if g.function.version else None for g in groups]
    if any(v is None for v in versions) or any(g.function.batch is None for g in groups):
        return expression
    from sqlml.optimizer.runtime.bulk_stream import BulkCall, BulkPlan, in_transaction, new_view_name

    if connection.read_only or in_transaction(connection.duckdb):
        return expression

    number = context.fresh()
    calls, arg_sql = [], []
    input_select = select.copy()
    slots: dict[int, exp.Expression] = {}  # projection index -> the original projection
    for i, projection in enumerate(select.expressions):
        if any(clause_of(o, select) == "expressions" and within(o, projection) for g in groups for o in g.occurrences):
            slots[i] = projection
            input_select.expressions[i].replace(exp.alias_(exp.Null(), f"__ml_slot_{number}_{i}"))
    for j, (group, version) in enumerate(zip(groups, versions, strict=True)):
        named = named_constants(group.call)
        if named is None:
            return expression
        columns = []
        for k, position in enumerate(key_positions(group.call)):
            column = f"__ml_a{number}_{j}_{k}"
            columns.append(column)
            input_select.select(group.call.expressions[position].copy().as_(column), copy=False)
            arg_sql.append(column)
        calls.append(BulkCall(group.function, group.model, version, columns, named, f"__ml_v{number}_{j}"))
    input_sql = input_select.sql(dialect="duckdb", normalize_functions=False)

    shape = _shape(context, input_sql, arg_sql)
    if shape is None:
        return expression
    names, rows, distinct = shape
    if rows < MIN_ROWS or distinct < MAX_DISTINCT_SHARE * rows:
        context.note("messages", f"{NAME}: {rows} rows, about {distinct} distinct inputs: left to deduplication")
        return expression

    slot_count = len(names) - len(arg_sql)
    plan = BulkPlan(input_sql=input_sql, view=new_view_name(connection.session), slot_count=slot_count, calls=calls)
    outputs = []
    slot_names = {f"__ml_slot_{number}_{i}": i for i in slots}
    for k in range(slot_count):
        if names[k] in slot_names:
            projection = slots[slot_names[names[k]]].copy()
            name = projection.alias if isinstance(projection, exp.Alias) else duckdb_name(projection, context)
            body = _replace_calls(projection.this if isinstance(projection, exp.Alias) else projection, groups, calls)
            outputs.append(exp.alias_(body, exp.to_identifier(name or f"column{k}", quoted=True)))
        else:
            outputs.append(exp.alias_(exp.column(f"__c{k}"), exp.to_identifier(names[k], quoted=True)))
    from sqlml.optimizer.runtime.bulk_stream import stream_schema

    context.placeholders[plan.view] = stream_schema(connection, plan).empty_table()
    final = select_from(outputs, plan.view)
    select.replace(final)

    from sqlml.optimizer.context import Step

    context.steps.append(
        Step(
            rule=NAME,
            description=f"stream {rows} rows through "
            + ", ".join(f"{c.function.name}('{c.model}')" for c in calls)
            + f" in batches as {plan.view}",
            sql=f"-- input query\n{input_sql}",
            run=lambda connection, plan=plan: plan.register(connection),
        )
    )
    context.fire(NAME)
    return expression


def _replace_calls(body: exp.Expression, groups, calls) -> exp.Expression:
    for group, call in zip(groups, calls, strict=True):
        if body == group.call:
            return exp.column(call.value_column)
        for node in list(body.find_all(exp.Anonymous)):
            if node == group.call:
                node.replace(exp.column(call.value_column))
    return body


def _batch_select(expression: exp.Expression) -> exp.Select | None:
    if isinstance(expression, exp.Create) and str(expression.args.get("kind", "")).upper() == "TABLE":
        query = expression.expression
    elif isinstance(expression, exp.Insert):
        query = expression.expression
    else:
        return None
    return query if isinstance(query, exp.Select) else None


def _eligible(select: exp.Select, groups) -> bool:
    if select.args.get("distinct") or select.args.get("qualify") or is_aggregate_scope(select):
        return False
    if any(isinstance(n, exp.Window) for p in select.expressions for n in p.walk()):
        return False
    for group in groups:
        if not hoistable(group, select):
            return False
        if any(clause_of(o, select) != "expressions" for o in group.occurrences):
            return False
        if any(o.find_ancestor(exp.Star) is not None for o in group.occurrences):
            return False  # inside * REPLACE (...): no single output column to put it in
    return True


def _shape(context, input_sql: str, arg_columns: list[str]):
    """(column names, rows, approximate distinct inputs) of the input query; None if a
    cursor cannot run it (it reads TEMP objects or uncommitted tables)."""
    import duckdb

    from sqlml.sqlutil import quote_ident

    arguments = ", ".join(quote_ident(c) for c in arg_columns)
    try:
        with context.connection.session.cursor() as cur:
            names = cur.sql(input_sql).columns
            rows, distinct = cur.execute(
                f"SELECT count(*), approx_count_distinct(hash({arguments})) FROM ({input_sql})"
            ).fetchall()[0]
    except duckdb.Error:
        return None
    return names, rows, distinct
