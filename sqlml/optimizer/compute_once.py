"""Rule: a model call written more than once in a scope is computed once per row.

DuckDB evaluates the same call in WHERE and in SELECT twice (measured: 10k + 9,994
calls for 10k rows). The rule computes the call as a column of a MATERIALIZED CTE over
the scope's single source, filtered by the cheap WHERE terms, and reads that column
wherever the call was written:

    SELECT id, ml_f('m', x) AS p FROM t WHERE y < 3 AND ml_f('m', x) > 0.5
    ->  WITH __ml_rows_1 AS MATERIALIZED (SELECT *, ml_f('m', x) AS __ml_v1 FROM t WHERE y < 3)
        SELECT id, __ml_v1 AS p FROM __ml_rows_1 AS t WHERE y < 3 AND __ml_v1 > 0.5

It runs after ``distinct_inputs``, which already computes each distinct input once, so
it acts on what that rule leaves: scopes where distinct_inputs is switched off. The
source keeps its name as the CTE's alias, so ``t.x`` still resolves; scopes that join
several sources are left as they are.
"""

from __future__ import annotations

from sqlglot import exp

from sqlml.optimizer.hoist import add_ctes, necessary_conditions, stops_early
from sqlml.optimizer.naming import keep_names
from sqlml.optimizer.scopes import call_groups, exclude_from_stars, hoistable, scopes, table

NAME = "compute_once"


def rule(expression: exp.Expression, context) -> exp.Expression:
    for select in scopes(expression):
        repeated = [g for g in call_groups(select) if len(g.occurrences) > 1 and hoistable(g, select)]
        if not repeated or select.args.get("joins") or not select.args.get("from_"):
            continue
        if stops_early(select):
            continue
        source = select.args["from_"].this
        if not isinstance(source, (exp.Table, exp.Subquery)) or not source.alias_or_name:
            continue
        number = context.fresh()
        rows_name = f"__ml_rows_{number}"
        alias = source.args["alias"].this if source.args.get("alias") else source.this
        conditions = None
        for group in repeated:
            terms = necessary_conditions(select, group)
            conditions = terms if conditions is None else [t for t in conditions if t in terms]
        body = exp.Select(expressions=[exp.Star()], from_=exp.From(this=source.copy()))
        if conditions:
            body.where(exp.and_(*[t.copy() for t in conditions]), copy=False)
        columns = []
        for i, group in enumerate(repeated):
            column = f"__ml_v{number}" if i == 0 else f"__ml_v{number}_{i}"
            columns.append(column)
            body.select(group.call.copy().as_(column), copy=False)
            keep_names(select, group.occurrences, context)
            for occurrence in group.occurrences:
                occurrence.replace(exp.column(column, table=alias.copy()))
        cte = exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(rows_name)), materialized=True)
        select = add_ctes(select, [cte])
        rows = table(rows_name)
        rows.set("alias", exp.TableAlias(this=alias.copy()))
        select.set("from_", exp.From(this=rows))
        exclude_from_stars(select, columns)
        exclude_from_stars(select, columns, qualifier=alias.name)
        context.fire(NAME)
    return expression
