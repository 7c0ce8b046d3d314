"""The optimizer through the connection: results, model-call counts, EXPLAIN ML, switches."""

from __future__ import annotations

import pytest

import sqlml
from sqlml import optimizer
from sqlml.errors import InvalidOptionError

from .counting import CountingModel, make_tables

QUERY = "SELECT id, ml_score('m', x) AS p FROM t WHERE y < 3 AND ml_score('m', x) > 50 ORDER BY id"


def plain(con, sql):
    """The statement as DuckDB alone runs it (no rewrite)."""
    return con.duckdb.execute(sql).fetchall()


def test_calls_equal_distinct_inputs_and_results_match(scored):
    con, score, _ = scored
    expected = plain(con, QUERY)
    assert score.total == 4400  # DuckDB alone: WHERE on 3000 rows, SELECT again on 1400
    score.reset()
    assert con.sql(QUERY).fetchall() == expected
    distinct = con.duckdb.execute("SELECT count(DISTINCT x) FROM t WHERE y < 3").fetchall()[0][0]
    assert score.total == distinct == 30
    score.reset()
    assert con.sql(QUERY).fetchall() == expected
    assert score.total == 0  # every input is cached now


def test_execute_path_and_column_names_are_kept(scored):
    con, score, _ = scored
    sql = "SELECT id, ml_score('m', x), ml_score('m', x) > 50 FROM t WHERE y = 1 ORDER BY id"
    expected = con.duckdb.sql(sql)
    names, rows = expected.columns, expected.fetchall()
    relation = con.sql(sql)
    assert relation.columns == names
    assert relation.fetchall() == rows
    con.execute(sql)
    assert [d[0] for d in con.description] == names
    assert con.fetchall() == rows


def test_explain_ml_shows_rewrite_rules_and_steps_without_running(scored):
    con, score, _ = scored
    row = con.sql(f"EXPLAIN ML {QUERY}").fetchall()[0]
    original, rewritten, fired, steps, notes, available = row
    assert original == QUERY
    assert "__ml_pred_1" in rewritten and "MATERIALIZED" in rewritten
    assert fired == ["predicate_placement", "distinct_inputs", "prediction_cache"]
    assert len(steps) == 1 and "sqlml.prediction_cache" in steps[0]
    assert available == list(optimizer.RULE_NAMES)
    assert score.total == 0  # nothing ran
    assert con.sql("SELECT count(*) FROM sqlml.prediction_cache").fetchall() == [(0,)]


def test_explain_ml_of_a_query_without_model_calls(con):
    row = con.sql("EXPLAIN ML SELECT 42 AS x").fetchall()[0]
    assert row[1] == "SELECT 42 AS x" and row[2] == []


def test_rules_switch_off_per_connection(scored):
    con, score, _ = scored
    rules = con.sql("SELECT rule, enabled FROM ml_optimizer_rules() ORDER BY position").fetchall()
    assert rules == [(name, True) for name in optimizer.RULE_NAMES]
    for name in ("distinct_inputs", "prediction_cache"):
        assert con.sql(f"SELECT ml_optimizer_rule('{name}', false)").fetchall() == [(f"{name} off",)]
    score.reset()
    rows = con.sql(QUERY).fetchall()
    assert score.total == 3000  # compute_once: each row passing y < 3 once, no dedup, no cache
    assert rows == plain(con, QUERY)
    assert con.sql(f"EXPLAIN ML {QUERY}").fetchall()[0][2] == ["predicate_placement", "compute_once"]
    other = con.cursor()  # a cursor shares the session, and with it the switches
    assert other.sql("SELECT enabled FROM ml_optimizer_rules() WHERE rule = 'distinct_inputs'").fetchall() == [(False,)]
    with pytest.raises(InvalidOptionError, match="distinct_input"):
        con.sql("SELECT ml_optimizer_rule('distinct_input', true)").fetchall()


def test_model_functions_registry_is_printable(scored):
    con, _, _ = scored
    rows = dict((r[0], r) for r in con.sql("SELECT * FROM ml_model_functions()").fetchall())
    assert {"ml_predict", "ml_predict_proba", "ml_score", "ml_cheap"} <= set(rows)
    assert rows["ml_cheap"][1] == 10.0 and rows["ml_score"][2] is True


def test_statements_without_model_calls_are_not_parsed(con, monkeypatch):
    import sqlglot

    def boom(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(sqlglot, "parse", boom)
    assert con.sql("SELECT count(*) FROM ml_catalog()").fetchall() == [(0,)]


def test_sql_the_rewriter_cannot_parse_runs_unchanged(scored):
    con, score, _ = scored
    # sqlglot cannot parse a PIVOT statement followed by ORDER BY; DuckDB can
    sql = "PIVOT (SELECT y, ml_score('m', x) AS s FROM t) ON y USING sum(s) ORDER BY 1"
    result = optimizer.rewrite(sql, connection=con, dry_run=True)
    assert result.sql == sql and not result.fired
    assert con.sql(sql).fetchall() == plain(con, sql)


def test_a_rewrite_duckdb_would_reject_is_not_used(scored):
    con, score, _ = scored
    # WHERE may name a SELECT alias in DuckDB; the hoisted keys query could not
    sql = "SELECT x + 1 AS x1, ml_score('m', x) AS p FROM t WHERE x1 > 90 ORDER BY ALL"
    result = optimizer.rewrite(sql, connection=con, dry_run=True)
    assert result.sql == sql and result.notes and "rewrite not used" in result.notes[0]
    assert con.sql(sql).fetchall() == plain(con, sql)


def test_hostile_names(con):
    model = CountingModel().install(con)
    model.versions["it's \"odd\""] = 2
    try:
        con.execute('CREATE TABLE "my table" ("select" DOUBLE, "a b" INTEGER)')
        con.execute('INSERT INTO "my table" SELECT i % 4, i FROM range(100) r(i)')
        sql = (
            'SELECT "a b", ml_score(\'it\'\'s "odd"\', "select") AS "p""q" FROM "my table" AS "from" '
            'WHERE "from"."a b" > 10 AND ml_score(\'it\'\'s "odd"\', "from"."select") > 2 ORDER BY 1'
        )
        expected = plain(con, sql)
        model.reset()
        relation = con.sql(sql)
        assert relation.columns == ["a b", 'p"q']
        assert relation.fetchall() == expected
        assert model.total == 4
    finally:
        model.uninstall()


def test_read_only_connection_dedups_but_does_not_cache(db_path):
    with sqlml.connect(db_path) as con:
        make_tables(con)
    con = sqlml.connect(db_path, read_only=True)
    model = CountingModel().install(con)
    try:
        sql = "SELECT id, ml_score('m', x) FROM t ORDER BY id"
        expected = plain(con, sql)
        model.reset()
        assert con.sql(sql).fetchall() == expected
        assert model.total == 100
        assert con.sql(f"EXPLAIN ML {sql}").fetchall()[0][2] == ["distinct_inputs"]
    finally:
        model.uninstall()
        con.close()


def test_errors_while_filling_the_cache_reach_the_caller_typed(scored):
    con, score, _ = scored
    score.versions["broken"] = 1
    with pytest.raises(sqlml.ServingError, match="broken model"):
        con.sql("SELECT ml_score('broken', x) FROM t").fetchall()
    assert con.sql("SELECT count(*) FROM sqlml.prediction_cache").fetchall() == [(0,)]


def test_statements_with_parameters_run_unchanged(scored):
    con, score, _ = scored
    sql = "SELECT id, ml_score('m', x) AS p FROM t WHERE y = ? AND ml_score('m', x) > ? ORDER BY id"
    result = optimizer.rewrite(sql, connection=con, dry_run=True)
    assert result.sql == sql and "parameters" in result.notes[0]
    assert con.sql(sql, [2, 50]).fetchall() == con.duckdb.execute(sql, [2, 50]).fetchall()
    assert con.execute(sql, [2, 50]).fetchall() == con.duckdb.execute(sql, [2, 50]).fetchall()
