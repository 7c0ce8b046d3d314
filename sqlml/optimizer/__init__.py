"""Query rewrite rules for statements that call model functions.

``RULES`` is a plain tuple of rule functions applied in order; each rule module holds
one function ``rule(expression, context) -> expression`` and records in ``context``
whether it fired. Statements without model calls never get here (see sqlml.query.router).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RULES: tuple = ()


@dataclass
class RewriteResult:
    original: str
    sql: str
    fired: list[str] = field(default_factory=list)


def rewrite(sql: str, *, connection=None) -> RewriteResult:
    """Apply ``RULES`` to one statement; with no rule to apply the text is returned as is."""
    if not RULES:
        return RewriteResult(sql, sql)
    import sqlglot

    from sqlml.optimizer.context import RewriteContext

    context = RewriteContext(connection=connection)
    expression = sqlglot.parse_one(sql, read="duckdb")
    for rule in RULES:
        expression = rule(expression, context)
    if not context.fired:
        return RewriteResult(sql, sql)
    return RewriteResult(sql, expression.sql(dialect="duckdb"), list(context.fired))
