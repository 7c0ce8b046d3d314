"""Multi-query optimization: model calls shared by several statements are computed once.

``con.sql_many([...])`` and scripts (``con.sql("q1; q2; q3")``) plan their statements
together. Each statement is rewritten with the prediction cache (the TEMP store when
the persistent cache is off or the connection is read-only); the cache fills the
statements need are merged by model call (same function, model, version and constant
arguments) into one fill over the UNION of their distinct inputs; that one fill runs,
then every statement runs its rewrite and finds all its model results stored.

N queries scoring overlapping rows with the same model therefore cost one model pass
over the union of their inputs, plus N cheap lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlml import optimizer
from sqlml.serving import cache


@dataclass
class Planned:
    text: str
    result: optimizer.RewriteResult


def sql_many(connection, statements: list[str]) -> list[Any]:
    """Run ``statements`` in order, sharing their model calls; a Relation or None each."""
    from sqlml.query.router import match_statement
    from sqlml.query.tokens import split_statements, tokenize

    results = []
    group: list[str] = []

    def flush():
        if group:
            results.extend(_run_group(connection, list(group)))
            group.clear()

    for text in statements:
        if not isinstance(text, str) or not text.strip():
            raise TypeError(f"sql_many takes SQL statements as strings, got {text!r}")
        if len(split_statements(text)) > 1:
            raise ValueError("sql_many takes one statement per string; pass a script to Connection.sql")
        if match_statement(tokenize(text)) is not None:
            flush()
            results.append(connection.sql(text))
        else:
            group.append(text)
    flush()
    return results


def _run_group(connection, texts: list[str]) -> list[Any]:
    """Plan together, then run each rewrite: its fills are done, its other steps (a bulk
    stream) run just before it, and the optimizer finds nothing left to rewrite."""
    results = []
    for planned in plan(connection, texts):
        optimizer.run_steps(connection, [s for s in planned.result.steps if s.fill is None])
        sql = planned.result.sql
        results.append(connection.sql(optimizer.OPTIMIZED + sql if planned.result.fired else sql))
    return results


def plan(connection, texts: list[str]) -> list[Planned]:
    """Rewrite every statement, run the merged fills; the statements are left to run."""
    store = _store(connection)
    # the cache rule is what shares: on for this plan even where the persistent cache is off
    disabled = optimizer.disabled_rules(connection) - {"prediction_cache"}
    plans = []
    for text in texts:
        result = optimizer.rewrite(text, connection=connection, dry_run=True, store=store, disabled=disabled)
        plans.append(Planned(text, result))
    fills = [step for p in plans for step in p.result.steps]
    run_merged(connection, fills)
    return plans


def _store(connection) -> str:
    persistent = None if "prediction_cache" in optimizer.disabled_rules(connection) else cache.store_for(connection)
    if persistent is not None:
        return persistent
    cache.ensure_temp_store(connection.duckdb)
    connection.duckdb.execute(f"DELETE FROM {cache.TEMP_STORE}")
    return cache.TEMP_STORE


def run_merged(connection, steps) -> list[dict]:
    """Run fill steps, merging those that compute the same model call into one fill."""
    groups: dict[tuple, list[cache.Fill]] = {}
    order = []
    for step in steps:
        fill = getattr(step, "fill", None)
        if fill is None:
            continue
        key = (fill.store, fill.function.name, fill.model, fill.version.token, fill.signature, len(fill.key_columns))
        if key not in groups:
            groups[key] = []
            order.append(key)
        if all(f.keys_sql != fill.keys_sql for f in groups[key]):
            groups[key].append(fill)
    reports = []
    with connection.session.translate_errors():
        for key in order:
            fills = groups[key]
            merged = fills[0] if len(fills) == 1 else _union(fills)
            report = cache.run_fill(connection, merged)
            report["statements"] = len(fills)
            reports.append(report)
    return reports


def _union(fills: list[cache.Fill]) -> cache.Fill:
    first = fills[0]
    parts = [f"SELECT * FROM ({f.keys_sql})" for f in fills]
    return replace(first, keys_sql=" UNION ".join(parts))


def share_script(connection, text: str, spans: list[tuple[int, int]], start: int) -> dict[int, str]:
    """Plan the run of plain statements from ``start`` in a script together.

    Returns {statement index: SQL to run} for the statements whose model calls were
    planned (their fills already ran); empty when fewer than two of them call models.
    The run ends at the first sqlml statement (it may create or drop models).
    """
    from sqlml.optimizer.model_functions import mentions_model_call
    from sqlml.query.router import match_statement
    from sqlml.query.tokens import tokenize

    run: list[tuple[int, str]] = []
    for index in range(start, len(spans)):
        a, b = spans[index]
        statement = text[a:b].strip()
        if match_statement(tokenize(statement)) is not None:
            break
        if mentions_model_call(statement):
            run.append((index, statement))
    if len(run) < 2:
        return {}
    plans = plan(connection, [statement for _, statement in run])
    return {
        index: p.result.sql
        for (index, _), p in zip(run, plans, strict=True)
        if p.result.fired and all(step.fill is not None for step in p.result.steps)
    }
