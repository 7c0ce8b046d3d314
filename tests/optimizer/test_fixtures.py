"""Every rule against its golden fixtures, and both forms run on DuckDB with equal results."""

from __future__ import annotations

import pytest
import sqlglot

from sqlml import optimizer

from .fixtures import apply_rule, load_cases, normalized

CASES = load_cases()


def test_every_rule_has_fixtures():
    assert {c.file for c in CASES} == set(optimizer.RULE_NAMES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule_fixture(case, scored):
    con, score, cheap = scored
    rule, (original, expected) = case.file, case.statements
    rewritten, context = apply_rule(rule, original, con, case.options.get("patch"))
    assert rewritten == normalized(expected)
    assert (rule in context.fired) == (normalized(original) != normalized(expected))
    if case.options.get("execute", "true") == "false":
        return
    ordered = isinstance(sqlglot.parse_one(original, read="duckdb"), sqlglot.exp.Query) and bool(
        sqlglot.parse_one(original, read="duckdb").args.get("order")
    )
    check, reset = case.options.get("check"), case.options.get("reset")
    score.reset(), cheap.reset()
    before = con.duckdb.execute(original).fetchall()
    original_calls = score.total + cheap.total
    if check:
        before = con.duckdb.execute(check).fetchall()
    if reset:
        con.duckdb.execute(reset)
    score.reset(), cheap.reset()
    optimizer.run_steps(con, context.steps)
    after = con.duckdb.execute(rewritten).fetchall()
    calls = score.total + cheap.total
    if check:
        after = con.duckdb.execute(check).fetchall()
    if ordered:
        assert after == before
    else:
        assert sorted(after, key=repr) == sorted(before, key=repr)
    if "calls" in case.options:
        assert calls == int(case.options["calls"])
    if "original" in case.options:
        assert original_calls == int(case.options["original"])
