"""Rule: cheap predicates run before model calls (expensive-predicate placement).

DuckDB orders the terms of a filter by its own cost guesses and pushes each term to
the lowest operator that has its columns, so a model predicate can run on every row
of a scan before a LIKE, a join or an EXISTS removes most of them (measured: the
first case of ``tests/optimizer/fixtures/predicate_placement.sql``, a LIKE over 10,000
rows, called the model 10,000 times without the rule and 1,429 times with it; in
``bench/serving.py``'s rules section a LEFT JOIN scored every flight before the join
dropped most of them). The rule keeps the cheap terms where they are and guards the
model terms:

    WHERE ml_f(x) > 10 AND name LIKE '%e1%'
    ->  WHERE name LIKE '%e1%' AND CASE WHEN name LIKE '%e1%' THEN ml_f(x) > 10 ELSE FALSE END

CASE evaluates its THEN branch only for rows whose WHEN holds, and a guard that
mentions every table of the cheap terms cannot be pushed below their join. Several
model terms nest cheapest first (EvaDB's ReorderPredicates: cost from MODEL_FUNCTIONS).
In WHERE, ``CASE WHEN a THEN b ELSE FALSE END`` keeps exactly the rows ``a AND b`` keeps.
"""

from __future__ import annotations

from sqlglot import exp

from sqlml.optimizer.scopes import and_all, conjuncts, model_function, scopes

NAME = "predicate_placement"


def rule(expression: exp.Expression, context) -> exp.Expression:
    for select in scopes(expression):
        where = select.args.get("where")
        terms = conjuncts(where)
        cheap = [t for t in terms if cost(t) == 0]
        expensive = [t for t in terms if cost(t) > 0]
        if not expensive or (not cheap and len(expensive) < 2):
            continue
        if len(expensive) == 1 and is_guard(expensive[0], cheap):
            continue  # already placed
        expensive.sort(key=cost)
        guarded = expensive[-1].copy()
        for term in reversed(expensive[:-1]):
            guarded = guard(term.copy(), guarded)
        if cheap:
            guarded = guard(and_all(cheap), guarded)
        select.set("where", exp.Where(this=and_all([*cheap, guarded])))
        context.fire(NAME)
    return expression


def cost(term: exp.Expression) -> float:
    """Summed MODEL_FUNCTIONS cost of the model calls in a term (0: a cheap term)."""
    total = 0.0
    for node in term.walk():
        function = model_function(node)
        if function is not None:
            total += function.cost
    return total


def guard(condition: exp.Expression, then: exp.Expression) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=condition, true=then)], default=exp.false())


def is_guard(term: exp.Expression, cheap: list[exp.Expression]) -> bool:
    if not isinstance(term, exp.Case) or len(term.args.get("ifs") or []) != 1:
        return False
    default = term.args.get("default")
    if not isinstance(default, exp.Boolean) or default.this is not False:
        return False
    if not cheap:
        return True
    return conjuncts(term.args["ifs"][0].this) == cheap
