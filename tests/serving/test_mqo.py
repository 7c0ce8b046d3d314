"""Multi-query optimization: shared model calls computed once across statements."""

from __future__ import annotations

import pytest

import sqlml

from tests.optimizer.counting import CountingModel, make_tables

QUERIES = [
    "SELECT count(*) FROM t WHERE y < 5 AND ml_score('m', x, z) > 60",
    "SELECT y, max(ml_score('m', x, z)) FROM t WHERE y >= 3 GROUP BY y ORDER BY y",
    "SELECT id, ml_score('m', x, z) AS s FROM t WHERE name = 'n2' ORDER BY id",
]


def separately(con, queries):
    return [con.duckdb.execute(q).fetchall() for q in queries]


def union_inputs(con):
    return con.duckdb.execute(
        "SELECT count(*) FROM (SELECT x, z FROM t WHERE y < 5 UNION SELECT x, z FROM t WHERE y >= 3 "
        "UNION SELECT x, z FROM t WHERE name = 'n2')"
    ).fetchall()[0][0]


@pytest.mark.parametrize("cache", [True, False], ids=["persistent cache", "cache off"])
def test_sql_many_computes_shared_calls_once(scored, cache):
    con, model = scored
    if not cache:
        con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    expected = separately(con, QUERIES)
    model.reset()
    results = con.sql_many(QUERIES)
    assert [r.fetchall() for r in results] == expected
    assert model.total == union_inputs(con)
    assert model.rows == 0  # one batch fill, no per-query UDF calls


def test_without_sharing_each_query_computes_its_own(scored):
    con, model = scored
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    for q in QUERIES:
        con.sql(q).fetchall()
    assert model.total > union_inputs(con)


def test_scripts_share_model_calls(scored):
    con, model = scored
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    script = ";\n".join(
        [
            "CREATE TABLE a AS SELECT id, ml_score('m', x, z) AS s FROM t WHERE y < 5",
            "CREATE TABLE b AS SELECT id, ml_score('m', x, z) AS s FROM t WHERE y >= 3",
            "SELECT count(*) FROM t WHERE name = 'n2' AND ml_score('m', x, z) > 60",
        ]
    )
    last = con.sql(script).fetchall()
    assert model.total == union_inputs(con)
    assert last == con.duckdb.execute(QUERIES[2].replace("id, ml_score('m', x, z) AS s", "count(*)").replace(" ORDER BY id", "") + " AND ml_score('m', x, z) > 60").fetchall()
    assert con.sql("SELECT count(*), sum(s) FROM a").fetchall() == con.duckdb.execute(
        "SELECT count(*), sum(ml_score('m', x, z)) FROM t WHERE y < 5"
    ).fetchall()


def test_a_script_run_stops_at_sqlml_statements(scored):
    con, model = scored
    from sqlml.serving.mqo import share_script
    from sqlml.query.tokens import split_statements

    script = (
        "CREATE TABLE a AS SELECT ml_score('m', x) AS s FROM t; "
        "EXPLAIN ML SELECT 1; "
        "CREATE TABLE b AS SELECT ml_score('m', x) AS s FROM t"
    )
    assert share_script(con, script, split_statements(script), 0) == {}


def test_sql_many_mixes_statements_and_queries(scored):
    con, model = scored
    results = con.sql_many(
        [
            "CREATE TABLE scored AS SELECT id, ml_score('m', x) AS s FROM t",
            "EXPLAIN ML SELECT ml_score('m', x) FROM t",
            "SELECT sum(s) FROM scored",
        ]
    )
    assert results[0] is None
    assert results[1].fetchall()[0][2] == ["distinct_inputs", "prediction_cache"]
    assert results[2].fetchall() == [(495000.0,)]
    with pytest.raises(ValueError, match="one statement"):
        con.sql_many(["SELECT 1; SELECT 2"])


def test_read_only_connection_shares_through_a_temp_store(db_path):
    with sqlml.connect(db_path) as con:
        make_tables(con)
    con = sqlml.connect(db_path, read_only=True)
    model = CountingModel().install(con)
    try:
        expected = separately(con, QUERIES)
        model.reset()
        assert [r.fetchall() for r in con.sql_many(QUERIES)] == expected
        assert model.total == union_inputs(con)
    finally:
        model.uninstall()
        con.close()
