"""Finding model calls in a parsed statement: scopes, occurrences, conjuncts.

A *scope* is one SELECT whose rows the rules may rearrange: the statement's query, a
CTE body, a derived table in FROM, a branch of a set operation, the query of CREATE
TABLE AS / INSERT. SELECTs inside expressions (scalar, IN, EXISTS subqueries) may be
correlated with the outer query and are left alone, and so are LATERAL joins and
recursive CTEs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from sqlglot import exp

from sqlml.optimizer.model_functions import ModelFunction, lookup

#: Functions whose value changes from call to call: a model call over them is not a
#: function of its visible inputs, so it is never deduplicated or cached.
NONDETERMINISTIC = frozenset(
    {"random", "rand", "uuid", "gen_random_uuid", "nextval", "currval", "setseed", "now",
     "current_timestamp", "get_current_timestamp", "transaction_timestamp", "current_time",
     "current_date", "today", "epoch_ms_now", "txid_current"}
)

#: Clauses of a SELECT whose model calls the rules can replace by a precomputed column.
HOISTABLE_CLAUSES = frozenset({"expressions", "where", "order", "qualify"})

#: Prefix of every name the rules invent; user names never start with it.
PREFIX = "__ml_"


def function_name(node: exp.Expression) -> str | None:
    """The lower-case name of a function call node (anonymous or built-in), else None."""
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return None


def model_function(node: exp.Expression) -> ModelFunction | None:
    if isinstance(node, exp.Anonymous):
        return lookup(str(node.this))
    return None


def is_model_call(node: exp.Expression) -> bool:
    return model_function(node) is not None


def scopes(root: exp.Expression) -> list[exp.Select]:
    """Rewritable SELECTs of a statement, innermost first."""
    found = [s for s in root.find_all(exp.Select) if is_rewritable_scope(s) and not is_invented(s)]
    return sorted(found, key=_depth, reverse=True)


def is_invented(select: exp.Select) -> bool:
    """The body of a CTE the rules made (``__ml_pred_1`` ...): already rewritten."""
    parent = select.parent
    return isinstance(parent, exp.CTE) and parent.alias.startswith(PREFIX)


def _depth(node: exp.Expression) -> int:
    depth = 0
    while node.parent is not None:
        node = node.parent
        depth += 1
    return depth


def is_rewritable_scope(select: exp.Select) -> bool:
    joins = select.args.get("joins") or []
    if any(isinstance(j.this, exp.Lateral) or j.args.get("kind") == "LATERAL" for j in joins):
        return False
    node = select
    while node.parent is not None:
        parent, key = node.parent, node.arg_key
        if isinstance(parent, exp.Subquery):
            if not isinstance(parent.parent, (exp.From, exp.Join, exp.Union, exp.Subquery, exp.Create, exp.Insert)):
                return False
        elif isinstance(parent, exp.CTE):
            if parent.parent is not None and parent.parent.args.get("recursive"):
                return False
        elif isinstance(parent, (exp.Select, exp.Union)):
            if key not in ("from_", "joins", "with_", "this", "expression"):
                return False
        elif isinstance(parent, exp.Join):
            if key != "this":
                return False
        elif isinstance(parent, (exp.Create, exp.Insert)):
            if key != "expression":
                return False
        elif not isinstance(parent, (exp.With, exp.From)):
            return False
        node = parent
    return True


def in_scope(node: exp.Expression, select: exp.Select) -> bool:
    """Whether ``node`` is evaluated by ``select`` itself, not by a query nested in it."""
    ancestor = node.parent
    while ancestor is not None and ancestor is not select:
        if isinstance(ancestor, (exp.Select, exp.Subquery, exp.Union)):
            return False
        ancestor = ancestor.parent
    return ancestor is select


def within(node: exp.Expression | None, ancestor: exp.Expression) -> bool:
    """Whether ``ancestor`` is ``node`` itself or on its chain of parents (by identity)."""
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def clause_of(node: exp.Expression, select: exp.Select) -> str | None:
    """Which argument of ``select`` (``expressions``, ``where``, ...) contains ``node``."""
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return node.arg_key if node.parent is select else None


@dataclass
class CallGroup:
    """Every occurrence, in one scope, of one model call (structurally equal nodes)."""

    call: exp.Anonymous
    function: ModelFunction
    occurrences: list[exp.Anonymous]

    @property
    def model(self) -> str:
        return self.call.expressions[0].this


def model_calls(select: exp.Select) -> list[exp.Anonymous]:
    """Model calls evaluated by this scope, in text order."""
    return [node for node in select.find_all(exp.Anonymous) if is_model_call(node) and in_scope(node, select)]


def call_groups(select: exp.Select) -> list[CallGroup]:
    groups: dict[exp.Expression, CallGroup] = {}
    for node in model_calls(select):
        group = groups.get(node)
        if group is None:
            groups[node] = CallGroup(node, model_function(node), [node])
        else:
            group.occurrences.append(node)
    return list(groups.values())


def is_aggregate_scope(select: exp.Select) -> bool:
    if select.args.get("group") or select.args.get("having"):
        return True
    for projection in select.expressions:
        for agg in projection.find_all(exp.AggFunc):
            if in_scope(agg, select) and not isinstance(agg.parent, exp.Window) and agg.find_ancestor(exp.Window) is None:
                return True
    return False


def hoistable(group: CallGroup, select: exp.Select) -> bool:
    """Whether every occurrence can be replaced by a column computed before this scope.

    The model-name argument must be a string literal; the others may not contain
    subqueries, aggregates, window functions, other model calls or volatile functions;
    every occurrence sits in SELECT, WHERE, ORDER BY or QUALIFY (in an aggregate query,
    outside WHERE only inside an aggregate's arguments).
    """
    call = group.call
    if not call.expressions or not isinstance(call.expressions[0], exp.Literal) or not call.expressions[0].is_string:
        return False
    for arg in call.expressions[1:]:
        for node in arg.walk():
            if isinstance(node, (exp.Subquery, exp.Select, exp.AggFunc, exp.Window, exp.Placeholder, exp.Parameter)):
                return False
            if is_model_call(node):
                return False
            if function_name(node) in NONDETERMINISTIC:
                return False
    if not key_positions(call):
        return False
    aggregate = is_aggregate_scope(select)
    for occurrence in group.occurrences:
        clause = clause_of(occurrence, select)
        if clause not in HOISTABLE_CLAUSES:
            return False
        if aggregate and clause != "where" and not _inside_aggregate(occurrence, select):
            return False
    return True


def _inside_aggregate(node: exp.Expression, select: exp.Select) -> bool:
    """In an aggregate's arguments or its FILTER (WHERE ...): evaluated once per input row."""
    ancestor = node.parent
    while ancestor is not None and ancestor is not select:
        if isinstance(ancestor, (exp.AggFunc, exp.Filter)):
            return True
        ancestor = ancestor.parent
    return False


def is_constant(node: exp.Expression) -> bool:
    """No column reference anywhere in it: the same value for every row."""
    if isinstance(node, exp.PropertyEQ):
        node = node.expression
    return not any(isinstance(n, (exp.Column, exp.Star, exp.Placeholder, exp.Parameter)) for n in node.walk())


def key_positions(call: exp.Anonymous) -> list[int]:
    """Argument positions that vary by row (the model name, at 0, never does)."""
    return [i for i, arg in enumerate(call.expressions) if i > 0 and not is_constant(arg)]


def named_constants(call: exp.Anonymous) -> dict | None:
    """The call's constant arguments written ``name := literal``, for batch paths that
    take arrays for the row inputs and keywords for the rest; None when a constant is
    positional or not a plain literal."""
    named = {}
    positions = set(key_positions(call))
    for i, arg in enumerate(call.expressions):
        if i == 0 or i in positions:
            continue
        if not (isinstance(arg, exp.PropertyEQ) and isinstance(arg.expression, (exp.Literal, exp.Boolean))):
            return None
        value = arg.expression
        if isinstance(value, exp.Boolean):
            named[arg.this.name] = value.this
        elif value.is_string:
            named[arg.this.name] = value.this
        else:
            named[arg.this.name] = float(value.this) if any(c in value.this for c in ".eE") else int(value.this)
    return named


def conjuncts(condition: exp.Expression | None) -> list[exp.Expression]:
    """The top-level AND terms of a condition (parentheses removed)."""
    if condition is None:
        return []
    if isinstance(condition, exp.Where):
        condition = condition.this
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.And):
        return conjuncts(condition.this) + conjuncts(condition.expression)
    return [condition]


def and_all(terms: list[exp.Expression]) -> exp.Expression | None:
    if not terms:
        return None
    return exp.and_(*[t.copy() for t in terms], copy=False)


def has_model_call(node: exp.Expression) -> bool:
    return any(is_model_call(n) for n in node.walk())


def iter_stars(select: exp.Select) -> Iterator[exp.Expression]:
    """``*`` and ``t.*`` projections of a scope."""
    for projection in select.expressions:
        if isinstance(projection, exp.Star):
            yield projection
        elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
            yield projection


def exclude_from_stars(select: exp.Select, names: list[str], qualifier: str | None = None) -> None:
    """Keep invented columns out of ``*`` (and of ``qualifier.*``) projections."""
    for star in list(iter_stars(select)):
        if isinstance(star, exp.Column):
            if qualifier is None or star.table != qualifier:
                continue
            target = star.this
        else:
            target = star
        existing = list(target.args.get("except_") or [])
        existing += [exp.column(n) for n in names]
        target.set("except_", existing)


def table(name: str, alias: str | None = None) -> exp.Table:
    """A table node for an invented name (``__ml_pred_1``, ``sqlml.prediction_cache``).

    Built directly: ``exp.to_table`` parses its argument, which costs milliseconds.
    """
    parts = name.split(".")
    node = exp.Table(this=exp.to_identifier(parts[-1]), db=exp.to_identifier(parts[0]) if len(parts) > 1 else None)
    if alias is not None:
        node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return node


def select_from(projections: list[exp.Expression], name: str) -> exp.Select:
    """``SELECT <projections> FROM <name>`` without parsing anything."""
    return exp.Select(expressions=projections, from_=exp.From(this=table(name)))


def highest_invented_number(root: exp.Expression) -> int:
    """The largest N in invented names like ``__ml_pred_N`` already in the statement."""
    highest = 0
    for node in root.find_all(exp.Identifier):
        name = str(node.this)
        if name.startswith(PREFIX):
            match = re.search(r"(\d+)(?:_\d+)?$", name)
            if match:
                highest = max(highest, int(match.group(1)))
    return highest
