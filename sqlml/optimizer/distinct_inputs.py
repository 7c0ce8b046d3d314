"""Rule: model calls run once per distinct input and join back to their rows.

Every hoistable model call of a scope moves into a MATERIALIZED CTE over the DISTINCT
values of its arguments (filtered by the scope's cheap predicates), and its
occurrences read the result through a join on those values (see ``hoist``). A call
written twice, in WHERE and SELECT say, becomes one column: computed once per
distinct input. On skewed inputs this removes most calls (100k rows with 1k distinct
inputs: 1k calls); on all-distinct inputs it costs a hash aggregate and a hash join.
"""

from __future__ import annotations

from sqlglot import exp

from sqlml.optimizer.hoist import hoist_scope
from sqlml.optimizer.scopes import scopes

NAME = "distinct_inputs"


def rule(expression: exp.Expression, context) -> exp.Expression:
    for select in scopes(expression):
        for hoisted in hoist_scope(select, context, NAME):
            context.note("hoisted", hoisted)
    return expression
