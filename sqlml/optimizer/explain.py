"""``EXPLAIN ML <query>``: the query as the optimizer rewrites it, and the rules that fired."""

from __future__ import annotations

import pyarrow as pa

from sqlml import optimizer


def explain_ml(ctx):
    p = ctx.parser()
    p.expect("EXPLAIN", "ML")
    query = p.rest("a query after EXPLAIN ML")
    result = optimizer.rewrite(query, connection=ctx.connection)
    table = pa.table(
        {
            "original_sql": [result.original],
            "rewritten_sql": [result.sql],
            "rules_fired": [result.fired],
            "available_rules": [[rule.__module__.rsplit(".", 1)[-1] for rule in optimizer.RULES]],
        }
    )
    return ctx.connection.wrap(ctx.duck.from_arrow(table))
