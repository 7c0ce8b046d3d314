"""Golden fixtures: ``fixtures/<rule>.sql`` holds input/expected pairs for one rule.

Each case (read by ``tests/sqlfixtures.py``) is optional ``# key: value`` lines, then the
input statement and the expected rewrite, each ending with ``;`` at the end of a line. Keys:

    title      what the case shows
    execute    false: compare text only (default true: run both forms on DuckDB too)
    calls      rows the model evaluates for the rewritten form (fill included)
    original   rows the model evaluates for the input statement
    patch      NAME=VALUE: a constant of the rule's module set for this case
    check      a query whose result both forms must leave the same (statements that write)
    reset      SQL undoing what the input statement wrote, run before the rewritten one
"""

from __future__ import annotations

import importlib
from pathlib import Path

import sqlglot

from sqlml import optimizer
from sqlml.optimizer.context import RewriteContext
from sqlml.optimizer.scopes import highest_invented_number
from tests.sqlfixtures import Case, load_cases as load_fixture_cases

FIXTURES = Path(__file__).parent / "fixtures"


def load_cases() -> list[Case]:
    """Input/expected pairs; ``case.file`` is the rule."""
    return load_fixture_cases(FIXTURES)


def normalized(sql: str) -> str:
    return sqlglot.parse_one(sql, read="duckdb").sql(dialect="duckdb", normalize_functions=False)


def apply_rule(rule: str, sql: str, connection=None, patch: str | None = None) -> tuple[str, RewriteContext]:
    """``sql`` after one rule alone (every other rule counts as switched off)."""
    from sqlml.optimizer.runtime.cache_store import store_for

    module = importlib.import_module(f"sqlml.optimizer.{rule}")
    if patch:
        name, _, value = patch.partition("=")
        saved = getattr(module, name.strip())
        setattr(module, name.strip(), type(saved)(value.strip()))
        try:
            return apply_rule(rule, sql, connection)
        finally:
            setattr(module, name.strip(), saved)
    others = frozenset(optimizer.RULE_NAMES) - {rule}
    context = RewriteContext(connection=connection, disabled=others, store=store_for(connection))
    expression = sqlglot.parse_one(sql, read="duckdb")
    context.counter = highest_invented_number(expression)
    expression = module.rule(expression, context)
    return expression.sql(dialect="duckdb", normalize_functions=False), context
