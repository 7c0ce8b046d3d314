"""The optimizer's statement, ``EXPLAIN ML <query>``: the query as the optimizer rewrites
it, the rules that fired, and the work that would run first (cache fills, bulk streams).
Nothing is executed."""

from __future__ import annotations

import pyarrow as pa

from sqlml import optimizer


def explain_ml(ctx):
    p = ctx.parser()
    p.expect("EXPLAIN", "ML")
    query = p.rest("a query after EXPLAIN ML")
    result = optimizer.rewrite(query, connection=ctx.connection, dry_run=True)
    table = pa.table(
        {
            "original_sql": [result.original],
            "rewritten_sql": [pretty(result.sql) if result.fired else result.sql],
            "rules_fired": [result.fired],
            "steps": [[f"{s.description}\n{s.sql}" for s in result.steps]],
            "notes": [result.notes],
            "available_rules": [list(optimizer.RULE_NAMES)],
        }
    )
    return ctx.connection.wrap(ctx.duck.from_arrow(table))


def pretty(sql: str) -> str:
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write="duckdb", pretty=True, normalize_functions=False)[0]
