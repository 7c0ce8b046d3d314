"""Query rewrite rules for statements that call model functions.

``RULES`` is a plain tuple of rule functions applied in order; each rule module holds
one function ``rule(expression, context) -> expression`` and records in ``context``
whether it fired. Statements without model calls never get here (see
sqlml.query.router), and text naming no registered model function is not even parsed.

    bulk_inference       CREATE TABLE AS / INSERT scoring streams through the model in big batches
    predicate_placement  cheap WHERE terms guard the model terms (cheapest model first)
    distinct_inputs      each model call runs once per distinct input, joined back
    prediction_cache     results come from sqlml.prediction_cache; only misses are computed
    compute_once         a call written twice is computed once (when distinct_inputs is off)

A rule can be switched off per connection (``ml_optimizer_rule('distinct_inputs',
false)``) or per call (``rewrite(sql, disabled={...})``). The work rules plan (cache
fills, bulk streams, results shared by several statements) runs in ``sqlml.optimizer.runtime``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlml.optimizer import bulk_inference, compute_once, distinct_inputs, predicate_placement, prediction_cache
from sqlml.optimizer.runtime import trained_models  # noqa: F401 - registers ml_predict and co. as model functions

log = logging.getLogger("sqlml.optimizer")

RULES: tuple = (
    bulk_inference.rule,
    predicate_placement.rule,
    distinct_inputs.rule,
    prediction_cache.rule,
    compute_once.rule,
)


def rule_name(rule) -> str:
    return rule.__module__.rsplit(".", 1)[-1]


RULE_NAMES: tuple[str, ...] = tuple(rule_name(r) for r in RULES)

#: Leading comment of statements already rewritten (multi-query optimization runs them
#: through Connection.sql again); rewrite() passes them through untouched.
OPTIMIZED = "/* sqlml: optimized */ "


@dataclass
class RewriteResult:
    original: str
    sql: str
    fired: list[str] = field(default_factory=list)
    steps: list[Any] = field(default_factory=list)  # sqlml.optimizer.context.Step
    reports: list[dict] = field(default_factory=list)  # what each step did, once run
    notes: list[str] = field(default_factory=list)


def disabled_rules(connection) -> frozenset[str]:
    """Rules switched off on this connection's session."""
    if connection is None:
        return frozenset()
    return frozenset(connection.session.cache("optimizer").get("disabled", ()))


def set_rule_enabled(session, name: str, enabled: bool) -> None:
    from sqlml.errors import InvalidOptionError

    if name not in RULE_NAMES:
        raise InvalidOptionError("ml_optimizer_rule", name, allowed=RULE_NAMES)
    settings = session.cache("optimizer")
    disabled = set(settings.get("disabled", ()))
    (disabled.discard if enabled else disabled.add)(name)
    settings["disabled"] = frozenset(disabled)


def rewrite(
    sql: str,
    *,
    connection=None,
    dry_run: bool = False,
    disabled: frozenset[str] | set[str] | None = None,
    store: str | None | bool = True,
) -> RewriteResult:
    """Apply ``RULES`` to one statement.

    With a connection and ``dry_run=False``, the steps the rewritten statement relies
    on (filling the prediction cache) run before this returns; ``EXPLAIN ML`` passes
    ``dry_run=True``. ``store``: True picks the connection's prediction cache (none on
    a read-only connection), a table name forces one, False/None disables caching.
    Text that names no model function, does not parse, or whose rewrite DuckDB would
    not bind comes back unchanged.
    """
    from sqlml.optimizer.model_functions import mentions_model_call

    if not RULES or sql.startswith(OPTIMIZED) or not mentions_model_call(sql):
        return RewriteResult(sql, sql)
    context, expression = apply_rules(sql, connection=connection, disabled=disabled, store=store)
    if expression is None:
        return RewriteResult(sql, sql, notes=list(context.notes.get("messages", [])))
    if not context.fired:
        return RewriteResult(sql, sql)
    rewritten = expression.sql(dialect="duckdb", normalize_functions=False)
    problem = binds(connection, rewritten, context.placeholders)
    if problem is not None:
        log.info("optimizer: rewrite by %s not used, the statement runs as written: DuckDB rejects it (%s)", ", ".join(context.fired), problem)
        return RewriteResult(sql, sql, notes=[f"rewrite not used: DuckDB rejects it ({problem})"])
    log.debug("optimizer: %s rewrote the statement", ", ".join(context.fired))
    result = RewriteResult(sql, rewritten, list(context.fired), list(context.steps))
    if connection is not None and not dry_run:
        result.reports = run_steps(connection, result.steps)
    return result


def apply_rules(sql: str, *, connection=None, disabled=None, store: str | None | bool = True):
    """(context, parsed statement after the enabled rules); the statement is None when
    ``sql`` is not one statement sqlglot parses (or it has parameters).

    For callers that keep working on the tree (multi-query optimization); ``rewrite``
    renders it, checks that DuckDB binds it and runs its steps.
    """
    context, expression = _prepare(sql, connection, disabled, store)
    if expression is None:
        return context, None
    for rule in RULES:
        if rule_name(rule) not in context.disabled:
            expression = rule(expression, context)
    return context, expression


def _prepare(sql, connection, disabled, store):
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    from sqlml.optimizer.context import RewriteContext
    from sqlml.optimizer.scopes import highest_invented_number

    off = frozenset(disabled) if disabled is not None else disabled_rules(connection)
    if store is True:
        from sqlml.optimizer.runtime.cache_store import store_for

        store = None if "prediction_cache" in off else store_for(connection)
    context = RewriteContext(connection=connection, disabled=off, store=store or None)
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except SqlglotError as error:
        context.note("messages", f"not parsed: {error}")
        return context, None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        return context, None
    expression = statements[0]
    if expression.find(exp.Placeholder, exp.Parameter) is not None:
        # ? and $n parameters bind by position: a rewrite that copies a WHERE term
        # would change how many there are
        context.note("messages", "statements with parameters are not rewritten")
        return context, None
    context.counter = highest_invented_number(expression)
    return context, expression


def binds(connection, sql: str, placeholders: dict) -> str | None:
    """None when DuckDB plans ``sql``; else its complaint (nothing runs)."""
    if connection is None:
        return None
    import duckdb

    duck = connection.duckdb
    for name, empty in placeholders.items():
        duck.register(name, empty)
    try:
        duck.execute("EXPLAIN " + sql).fetchall()
    except duckdb.Error as error:
        return str(error).splitlines()[0]
    finally:
        for name in placeholders:
            duck.unregister(name)
    return None


def run_steps(connection, steps) -> list[dict]:
    reports = []
    with connection.session.translate_errors():
        for step in steps:
            reports.append(step.run(connection))
    return reports
