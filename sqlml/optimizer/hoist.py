"""Hoisting: compute a scope's model calls once per distinct input, then join them back.

For a call ``ml_predict('m', x, y)`` in a scope ``SELECT ... FROM src WHERE cheap AND ...``
hoisting adds two CTEs to the scope and one join:

    __ml_keys_1 AS (SELECT DISTINCT x AS __ml_k1_0, y AS __ml_k1_1 FROM src WHERE cheap)
    __ml_pred_1 AS MATERIALIZED (SELECT __ml_k1_0, __ml_k1_1,
                                        ml_predict('m', __ml_k1_0, __ml_k1_1) AS __ml_v1
                                 FROM __ml_keys_1)
    ... FROM src LEFT JOIN __ml_pred_1 ON x IS NOT DISTINCT FROM __ml_pred_1.__ml_k1_0 AND ...

and every occurrence of the call becomes ``__ml_pred_1.__ml_v1``. The keys keep only
rows that can matter: those passing every WHERE term without a model call, and the
guard conditions placed before model predicates (see predicate_placement). Calls are
hoisted one at a time, WHERE calls first and cheapest first, so a later call's keys
are filtered by earlier model predicates too.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from sqlml.optimizer.model_functions import ModelFunction
from sqlml.optimizer.naming import keep_names
from sqlml.optimizer.scopes import (
    CallGroup,
    and_all,
    call_groups,
    clause_of,
    conjuncts,
    exclude_from_stars,
    has_model_call,
    hoistable,
    is_aggregate_scope,
    key_positions,
    select_from,
    table,
    within,
)


@dataclass
class Hoisted:
    """One hoisted call: what the prediction cache rule needs to take it over."""

    number: int
    function: ModelFunction
    model: str
    call: exp.Anonymous  # the call over the key columns, as in the pred CTE
    key_columns: list[str]
    value_column: str
    keys_cte: exp.CTE
    pred_cte: exp.CTE
    scope: exp.Select
    inputs: list[exp.Expression]  # the call's row arguments as the scope writes them
    join: exp.Join  # LEFT JOIN __ml_pred_N ON <inputs> IS NOT DISTINCT FROM <key columns>


def hoist_scope(select: exp.Select, context, rule: str, accept=None) -> list[Hoisted]:
    """Hoist the hoistable model calls of one scope (those ``accept`` takes, if given)."""
    if not _scope_allows_hoisting(select):
        return []
    done = []
    while True:
        groups = [g for g in call_groups(select) if hoistable(g, select) and (accept is None or accept(g))]
        if not groups:
            return done
        position = {id(node): i for i, node in enumerate(select.walk())}
        group = min(groups, key=lambda g: _order(g, select, position))
        done.append(hoist_group(select, group, context))
        context.fire(rule)


def _scope_allows_hoisting(select: exp.Select) -> bool:
    """A LIMIT can stop a scan early, unless ORDER BY or aggregation reads every row anyway;
    precomputing every row's call would then cost more than the query."""
    if not select.args.get("from_"):
        return False
    return not stops_early(select)


def stops_early(select: exp.Select) -> bool:
    limited = select.args.get("limit") or select.args.get("offset") or select.args.get("fetch")
    return bool(limited) and not select.args.get("order") and not is_aggregate_scope(select)


def _order(group: CallGroup, select: exp.Select, position: dict[int, int]):
    in_where = any(clause_of(o, select) == "where" for o in group.occurrences)
    depth = min(_case_depth(o, select) for o in group.occurrences)
    first = min(position.get(id(o), 0) for o in group.occurrences)
    return (0 if in_where else 1, depth, group.function.cost, first)


def _case_depth(node: exp.Expression, select: exp.Select) -> int:
    depth = 0
    while node.parent is not None and node.parent is not select:
        node = node.parent
        if isinstance(node, exp.Case):
            depth += 1
    return depth


def hoist_group(select: exp.Select, group: CallGroup, context) -> Hoisted:
    number = context.fresh()
    call = group.call
    positions = key_positions(call)
    keys_name, pred_name = f"__ml_keys_{number}", f"__ml_pred_{number}"
    key_columns = [f"__ml_k{number}_{j}" for j in range(len(positions))]
    value_column = f"__ml_v{number}"

    keys = exp.Select(expressions=[call.expressions[p].copy().as_(key_columns[j]) for j, p in enumerate(positions)])
    keys.set("distinct", exp.Distinct())
    keys.set("from_", select.args["from_"].copy())
    if select.args.get("joins"):
        keys.set("joins", [j.copy() for j in select.args["joins"]])
    condition = and_all(necessary_conditions(select, group))
    if condition is not None:
        keys.set("where", exp.Where(this=condition))

    key_call = call.copy()
    for j, p in enumerate(positions):
        key_call.expressions[p].replace(exp.column(key_columns[j]))
    pred = select_from([*[exp.column(c) for c in key_columns], key_call.copy().as_(value_column)], keys_name)

    keys_cte = exp.CTE(this=keys, alias=exp.TableAlias(this=exp.to_identifier(keys_name)))
    pred_cte = exp.CTE(this=pred, alias=exp.TableAlias(this=exp.to_identifier(pred_name)), materialized=True)
    select = add_ctes(select, [keys_cte, pred_cte])

    on = and_all(
        [
            exp.NullSafeEQ(this=call.expressions[p].copy(), expression=exp.column(key_columns[j], table=pred_name))
            for j, p in enumerate(positions)
        ]
    )
    join = exp.Join(this=table(pred_name), side="LEFT", on=on)
    select.set("joins", [*(select.args.get("joins") or []), join])
    keep_names(select, group.occurrences, context)
    for occurrence in group.occurrences:
        occurrence.replace(exp.column(value_column, table=pred_name))
    exclude_from_stars(select, [*key_columns, value_column])
    return Hoisted(
        number=number,
        function=group.function,
        model=group.model,
        call=key_call,
        key_columns=key_columns,
        value_column=value_column,
        keys_cte=keys_cte,
        pred_cte=pred_cte,
        scope=select,
        inputs=[call.expressions[p].copy() for p in positions],
        join=join,
    )


def necessary_conditions(select: exp.Select, group: CallGroup) -> list[exp.Expression]:
    """WHERE terms every row whose call value matters satisfies (and that call no model).

    A row's value matters when the row reaches the SELECT list (it passed every WHERE
    term) or when WHERE evaluates the call. So: every model-free term, and for terms
    holding the call, the conditions of the CASE guards it sits under.
    """
    found = []
    for term in conjuncts(select.args.get("where")):
        inside = [o for o in group.occurrences if within(o, term)]
        if not inside:
            if not has_model_call(term):
                found.append(term)
            continue
        common = None
        for occurrence in inside:
            guards = _guards(occurrence, term)
            common = guards if common is None else [g for g in common if g in guards]
        for guard in common or []:
            for part in conjuncts(guard):
                if not has_model_call(part) and part not in found:
                    found.append(part)
    return found


def _guards(node: exp.Expression, term: exp.Expression) -> list[exp.Expression]:
    """Conditions of single-branch CASEs whose THEN holds ``node`` (up to ``term``)."""
    guards = []
    child = node
    while child is not term and child.parent is not None:
        parent = child.parent
        if isinstance(parent, exp.If) and child.arg_key == "true":
            case = parent.parent
            if isinstance(case, exp.Case) and len(case.args.get("ifs") or []) == 1:
                guards.append(parent.this)
        child = parent
    return guards


def add_ctes(select: exp.Select, ctes: list[exp.CTE]) -> exp.Select:
    """Append CTEs to the WITH of a scope (a set-operation branch gets parentheses)."""
    if isinstance(select.parent, exp.Union) and select.arg_key in ("this", "expression"):
        wrapper = exp.Subquery()
        select.replace(wrapper)
        wrapper.set("this", select)
    with_ = select.args.get("with_")
    if with_ is None:
        select.set("with_", exp.With(expressions=list(ctes)))
    else:
        with_.set("expressions", [*with_.expressions, *ctes])
    return select
