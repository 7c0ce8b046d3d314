"""Rule: model results come from the prediction cache; only misses reach the model.

Each hoisted call (see ``distinct_inputs``; this rule hoists on its own when that rule
is off) reads its distinct inputs' results from a store table keyed by
``hash(call signature, model version token, inputs)``:

    __ml_pred_1 AS MATERIALIZED (
        SELECT __ml_k1_0, CASE WHEN __ml_c1.cache_key IS NULL THEN ml_predict('m', __ml_k1_0)
                               ELSE CAST(__ml_c1.value AS VARCHAR) END AS __ml_v1
        FROM __ml_keys_1 LEFT JOIN sqlml.prediction_cache AS __ml_c1
             ON __ml_c1.cache_key = hash('ml_predict(?, ?)', 'm@3:<created_at>', __ml_k1_0))

and a fill step runs before the query: it computes the misses and stores them
(``sqlml.optimizer.runtime.cache_store``). Repeated and overlapping queries then call the model only
for inputs never seen with this model version; a new version has a new token, so its
keys never match the old rows. Models without a version (no way to tell when their
weights change) are not cached.
"""

from __future__ import annotations

from sqlglot import exp

from sqlml.optimizer.hoist import Hoisted, hoist_scope
from sqlml.optimizer.model_functions import return_type
from sqlml.optimizer.scopes import named_constants, scopes, select_from, table

NAME = "prediction_cache"


def rule(expression: exp.Expression, context) -> exp.Expression:
    if context.store is None:
        return expression
    hoisted = list(context.notes.get("hoisted", []))
    if "distinct_inputs" in context.disabled:
        for select in scopes(expression):
            hoisted += hoist_scope(select, context, NAME, accept=lambda g: _version(context, g.function, g.model))
    for h in hoisted:
        version = _version(context, h.function, h.model)
        if version is None:
            continue
        use_cache(h, version, context)
        context.fire(NAME)
    return expression


def _version(context, function, model):
    if function.version is None or context.connection is None:
        return None
    cache = context.notes.setdefault("versions", {})
    key = (function.name, model)
    if key not in cache:
        cache[key] = function.version(context.connection, model)
    return cache[key]


def signature(call: exp.Anonymous, key_columns: list[str]) -> str:
    """The call's text with the model and the row inputs as ``?``.

    With the version token (which names the model and its weights) it fixes everything
    but the inputs, so ``'delay'`` and ``'delay@3'`` share entries while 3 is the latest.
    """
    template = call.copy()
    template.set("this", str(call.this).lower())
    template.expressions[0].replace(exp.Placeholder())
    for node in list(template.find_all(exp.Column)):
        if node.name in key_columns:
            node.replace(exp.Placeholder())
    return template.sql(dialect="duckdb", copy=False, normalize_functions=False)  # a copy already


def use_cache(h: Hoisted, version, context) -> None:
    from sqlml.optimizer.runtime.cache_store import Fill

    store = context.store
    cache_alias = f"__ml_c{h.number}"
    keys_name = h.keys_cte.alias
    sig = signature(h.call, h.key_columns)
    cache_key = exp.Anonymous(
        this="hash",
        expressions=[exp.Literal.string(sig), exp.Literal.string(version.token), *[exp.column(c) for c in h.key_columns]],
    )
    value_type = _data_type(return_type(h.function))
    value = exp.Case(
        ifs=[exp.If(this=exp.Is(this=exp.column("cache_key", table=cache_alias), expression=exp.Null()), true=h.call.copy())],
        default=exp.Cast(this=exp.column("value", table=cache_alias), to=value_type),
    )
    body = select_from([*[exp.column(c, table=keys_name) for c in h.key_columns], value.as_(h.value_column)], keys_name)
    store_table = table(store, alias=cache_alias)
    on = exp.EQ(this=exp.column("cache_key", table=cache_alias), expression=_qualified(cache_key, keys_name, h.key_columns))
    body.set("joins", [exp.Join(this=store_table, side="LEFT", on=on)])
    h.pred_cte.set("this", body)

    fill = Fill(
        store=store,
        keys_sql=keys_query(h).sql(dialect="duckdb", normalize_functions=False),
        key_columns=h.key_columns,
        hash_sql=cache_key.sql(dialect="duckdb"),
        call_sql=h.call.sql(dialect="duckdb", normalize_functions=False),
        signature=sig,
        function=h.function,
        model=version.name or h.model,
        reference=h.model,
        version=version,
        batch_layout=_batch_layout(h),
    )
    from sqlml.optimizer.context import Step
    from sqlml.optimizer.runtime.cache_store import run_fill

    context.steps.append(
        Step(
            rule=NAME,
            description=f"fill {store} with {h.function.name}('{h.model}') version {version.number} "
            f"for the distinct inputs of __ml_keys_{h.number} that it lacks",
            sql=f"-- keys to look up\n{fill.keys_sql}",
            run=lambda connection, fill=fill: run_fill(connection, fill),
            fill=fill,
        )
    )
    context.note("fills", fill)


_TYPES: dict[str, exp.DataType] = {}


def _data_type(sql_type: str) -> exp.DataType:
    """Parsed once per type name (parsing costs milliseconds)."""
    if sql_type not in _TYPES:
        _TYPES[sql_type] = exp.DataType.build(sql_type, dialect="duckdb")
    return _TYPES[sql_type].copy()


def _qualified(node: exp.Expression, table: str, columns: list[str]) -> exp.Expression:
    node = node.copy()
    for column in node.find_all(exp.Column):
        if column.name in columns and not column.table:
            column.set("table", exp.to_identifier(table))
    return node


def _batch_layout(h: Hoisted):
    """How the batch path gets this call's arguments; None when only SQL can fill."""
    named = named_constants(h.call)
    return None if named is None else {"named": named}


def keys_query(h: Hoisted) -> exp.Select:
    """``WITH <every CTE visible to the scope> SELECT * FROM __ml_keys_N``."""
    ctes: list[exp.CTE] = []
    recursive = False
    chain = []
    node = h.scope
    while node is not None:
        chain.append(node)
        node = node.parent
    for node in reversed(chain):
        with_ = node.args.get("with_") if isinstance(node, (exp.Select, exp.Union)) else None
        if with_ is None:
            continue
        recursive = recursive or bool(with_.args.get("recursive"))
        for cte in with_.expressions:
            if cte is h.pred_cte:
                break
            ctes.append(cte.copy())
            if cte is h.keys_cte:
                break
    query = select_from([exp.Star()], h.keys_cte.alias)
    query.set("with_", exp.With(expressions=ctes, recursive=recursive))
    return query
