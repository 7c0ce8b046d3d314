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
def test_sql_many_computes_shared_calls_once(scored_one, cache):
    con, model = scored_one
    if not cache:
        con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    expected = separately(con, QUERIES)
    model.reset()
    results = con.sql_many(QUERIES)
    assert [r.fetchall() for r in results] == expected
    assert model.total == union_inputs(con)
    assert model.rows == 0  # one batch fill, no per-query UDF calls


def test_without_sharing_each_query_computes_its_own(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    for q in QUERIES:
        con.sql(q).fetchall()
    assert model.total > union_inputs(con)


def test_scripts_share_model_calls(scored_one):
    con, model = scored_one
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
    counted = QUERIES[2].replace("id, ml_score('m', x, z) AS s", "count(*)").replace(" ORDER BY id", "")
    assert last == con.duckdb.execute(counted + " AND ml_score('m', x, z) > 60").fetchall()
    assert con.sql("SELECT count(*), sum(s) FROM a").fetchall() == con.duckdb.execute(
        "SELECT count(*), sum(ml_score('m', x, z)) FROM t WHERE y < 5"
    ).fetchall()


def test_a_script_run_stops_at_sqlml_statements(scored_one):
    con, model = scored_one
    from sqlml.query.batch import share_script
    from sqlml.query.tokens import split_statements

    script = (
        "CREATE TABLE a AS SELECT ml_score('m', x) AS s FROM t; "
        "EXPLAIN ML SELECT 1; "
        "CREATE TABLE b AS SELECT ml_score('m', x) AS s FROM t"
    )
    assert share_script(con, script, split_statements(script), 0) == {}


def test_sql_many_mixes_statements_and_queries(scored_one):
    con, model = scored_one
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


# -- shared results: one model pass, each statement reads it through a key join --------------


def test_shared_statements_read_one_table_instead_of_recomputing(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    from sqlml.optimizer.runtime.multi_query import plan

    plans = plan(con, QUERIES)
    assert all(p.shared for p in plans)
    tables = {name for p in plans for name in _shared_tables(p.sql)}
    assert len(tables) == 1  # one call, one table, read by all three
    for p in plans:
        assert "DISTINCT" not in p.sql.upper()  # no per-statement distinct inputs
        assert "prediction_cache" not in p.sql
    ((rows,),) = con.duckdb.execute(f"SELECT count(*) FROM {tables.pop()}").fetchall()
    assert rows == union_inputs(con) == model.batch_rows


def _shared_tables(sql):
    import re

    return re.findall(r"__sqlml_shared_[0-9a-f]+_\d+(?:_k)?", sql)


def test_statements_over_the_same_rows_compute_their_inputs_once(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    queries = [f"SELECT {g}, sum(ml_score('m', x, z)) FROM t WHERE y < 5 GROUP BY {g} ORDER BY 1" for g in ("y", "name", "x")]
    expected = separately(con, queries)
    model.reset()
    assert [r.fetchall() for r in con.sql_many(queries)] == expected
    distinct = con.duckdb.execute("SELECT count(*) FROM (SELECT DISTINCT x, z FROM t WHERE y < 5)").fetchall()[0][0]
    assert model.total == model.batch_rows == distinct


def test_sql_many_fills_the_persistent_cache_and_then_reads_it(scored_one):
    con, model = scored_one
    expected = separately(con, QUERIES)
    model.reset()
    assert [r.fetchall() for r in con.sql_many(QUERIES)] == expected
    assert model.total == union_inputs(con)
    ((cached,),) = con.sql("SELECT sum(cached_rows) FROM ml_prediction_cache()").fetchall()
    assert cached == union_inputs(con)
    model.reset()
    assert [r.fetchall() for r in con.sql_many(QUERIES)] == expected
    assert model.total == 0  # every input was cached
    con.sql("SELECT count(*) FROM t WHERE ml_score('m', x, z) > 0").fetchall()
    assert model.total == 0  # and single statements find them too


def test_null_inputs_give_null_without_reaching_the_model(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    queries = [
        "SELECT count(*), count(ml_score('m', x, w)) FROM t WHERE y < 5",
        "SELECT count(*), count(ml_score('m', x, w)) FROM t WHERE y >= 3",
    ]
    expected = separately(con, queries)
    model.reset()
    assert [r.fetchall() for r in con.sql_many(queries)] == expected
    non_null = con.duckdb.execute("SELECT count(*) FROM (SELECT DISTINCT x, w FROM t WHERE w IS NOT NULL)").fetchall()[0][0]
    assert model.total == non_null
    assert all(None not in row for row in model.inputs)


def test_a_statement_after_a_write_still_gets_every_row_right(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    script = (
        "SELECT count(*) FROM t WHERE ml_score('m', x, z) > 60; "
        "INSERT INTO t SELECT 100000 + i, 1000.0 + i, 1, 1.0, 'new', 1.0 FROM range(5) r(i); "
        "SELECT sum(ml_score('m', x, z)) FROM t"
    )
    from sqlml.optimizer.runtime.multi_query import plan
    from sqlml.query.tokens import split_statements

    statements = [script[a:b].strip() for a, b in split_statements(script)]
    plans = plan(con, statements)
    assert [p.shared for p in plans] == [True, False, True]
    assert not plans[0].verify and plans[2].verify  # the INSERT may add inputs the table lacks
    assert "IS NOT DISTINCT FROM" in plans[2].sql and "IS NOT DISTINCT FROM" not in plans[0].sql
    model.reset()
    last = con.sql(script).fetchall()
    calls = model.total
    assert last == con.duckdb.execute("SELECT sum(ml_score('m', x, z)) FROM t").fetchall()
    new_inputs = 5  # not in the shared table: the statement computes them itself
    assert calls == union_inputs_of(con, "SELECT x, z FROM t WHERE id < 100000") + new_inputs


def union_inputs_of(con, sql):
    return con.duckdb.execute(f"SELECT count(*) FROM (SELECT DISTINCT * FROM ({sql}))").fetchall()[0][0]


def test_a_statement_reading_a_table_made_earlier_in_the_batch(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    results = con.sql_many(
        [
            "SELECT count(*) FROM t WHERE ml_score('m', x, z) > 60",
            "CREATE TABLE t2 AS SELECT * FROM t WHERE y = 1",
            "SELECT sum(ml_score('m', x, z)) FROM t2",
            "SELECT sum(ml_score('m', x, z)) FROM t WHERE y = 2",
        ]
    )
    assert results[2].fetchall() == con.duckdb.execute("SELECT sum(ml_score('m', x, z)) FROM t2").fetchall()
    assert results[3].fetchall() == con.duckdb.execute("SELECT sum(ml_score('m', x, z)) FROM t WHERE y = 2").fetchall()


def test_an_old_result_read_again_after_the_next_batch_is_still_right(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    first = con.sql_many(QUERIES[:2])
    expected = first[0].fetchall()
    con.sql_many(["SELECT sum(ml_score('m', x, z)) FROM t WHERE y = 9", "SELECT count(ml_score('m', x, z)) FROM t WHERE y = 8"])
    assert first[0].fetchall() == expected  # its table now holds other inputs: the rest reach the model


def test_colliding_keys_are_left_out_of_the_shared_table():
    import pyarrow as pa

    from sqlml.optimizer.runtime.shared_calls import drop_colliding_keys

    rows = pa.table({"k0": [1, 2, 3, 4], "__ml_h": pa.array([10, 10, 11, 12], pa.uint64())})
    assert drop_colliding_keys(rows).column("k0").to_pylist() == [3, 4]
    assert drop_colliding_keys(rows.slice(2)).num_rows == 2


def test_versions_do_not_share_a_table(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    queries = ["SELECT sum(ml_score('m', x)) FROM t WHERE y < 5", "SELECT sum(ml_score('m', x)) FROM t WHERE y >= 5"]
    before = [r.fetchall() for r in con.sql_many(queries)]
    model.versions["m"] = 2
    after = [r.fetchall() for r in con.sql_many(queries)]
    assert [row[0][0] * 2 for row in before] == [row[0][0] for row in after]


def _reading_cases():
    from tests.optimizer.fixtures import load_cases

    return [
        c
        for c in load_cases()
        if c.file in ("distinct_inputs", "prediction_cache", "predicate_placement")
        and c.options.get("execute", "true") != "false"
        and "check" not in c.options
        and "patch" not in c.options
        and c.statements[0].lstrip().upper().startswith(("SELECT", "WITH", "("))
    ]


@pytest.mark.parametrize("case", _reading_cases(), ids=lambda c: c.id)
def test_every_optimizer_shape_gives_the_same_rows_when_shared(scored_one, case):
    con, model = scored_one
    cheap = CountingModel("ml_cheap", cost=10.0).install(con)  # the fixtures' second model
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    other = "SELECT sum(ml_score('m', x)) FROM t WHERE y < 3"
    expected = [sorted(map(repr, con.duckdb.execute(q).fetchall())) for q in (case.statements[0], other)]
    try:
        got = [sorted(map(repr, r.fetchall())) for r in con.sql_many([case.statements[0], other])]
    finally:
        cheap.uninstall()
    assert got == expected


# -- the fixed costs of sharing: what each statement still does -----------------------------


def test_shared_tables_store_inputs_only_for_statements_that_compare_them(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    from sqlml.optimizer.runtime.multi_query import plan

    (table,) = {name for p in plan(con, QUERIES) for name in _shared_tables(p.sql)}
    assert _columns(con, table) == ["__ml_h", "__ml_v"]  # a key join needs no inputs
    script = [
        "SELECT count(*) FROM t WHERE ml_score('m', x, z) > 60",
        "INSERT INTO t SELECT 100000 + i, 1000.0 + i, 1, 1.0, 'new', 1.0 FROM range(5) r(i)",
        "SELECT sum(ml_score('m', x, z)) FROM t",
    ]
    plans = plan(con, script)
    (verifying,) = set(_shared_tables(plans[2].sql))
    assert verifying.endswith("_k") and verifying != table  # its own name: the layouts never meet
    assert _columns(con, verifying) == ["k0", "k1", "__ml_h", "__ml_v"]


def _columns(con, table):
    return [row[0] for row in con.duckdb.execute(f"DESCRIBE {table}").fetchall()]


def test_a_verifying_relation_read_after_a_later_batch_is_still_right(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    first = con.sql_many(
        [
            "SELECT count(*) FROM t WHERE ml_score('m', x, z) > 60",
            "INSERT INTO t SELECT 100000 + i, 1000.0 + i, 1, 1.0, 'new', 1.0 FROM range(5) r(i)",
            "SELECT sum(ml_score('m', x, z)) FROM t",
        ]
    )
    expected = con.duckdb.execute("SELECT sum(ml_score('m', x, z)) FROM t").fetchall()
    con.sql_many(["SELECT sum(ml_score('m', x, z)) FROM t WHERE y = 9", "SELECT count(ml_score('m', x, z)) FROM t"])
    assert first[2].fetchall() == expected


def test_each_statement_is_parsed_once_and_not_optimized_again(scored_one, monkeypatch):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    import sqlglot

    from sqlml import optimizer

    parses, rewrites = [], []
    real_parse, real_rewrite = sqlglot.parse, optimizer.rewrite
    monkeypatch.setattr(sqlglot, "parse", lambda *a, **k: parses.append(a[0]) or real_parse(*a, **k))
    monkeypatch.setattr(optimizer, "rewrite", lambda *a, **k: rewrites.append(a[0]) or real_rewrite(*a, **k))
    expected = separately(con, QUERIES)
    model.reset()
    results = con.sql_many(QUERIES)
    assert parses == QUERIES  # no parse of a rewrite, no round trip through text
    assert rewrites == []  # the rewrites go to DuckDB as they are
    assert [r.fetchall() for r in results] == expected
    assert model.rows == 0


def test_a_table_without_colliding_keys_is_kept_as_it_is():
    import pyarrow as pa

    from sqlml.optimizer.runtime.shared_calls import drop_colliding_keys

    rows = pa.table({"k0": [1, 2, 3], "__ml_h": pa.array([12, 10, 11], pa.uint64())})
    assert drop_colliding_keys(rows) is rows
    assert drop_colliding_keys(rows.slice(0, 0)).num_rows == 0
    repeated_last = pa.table({"k0": [1, 2, 3, 4], "__ml_h": pa.array([12, 10, 11, 12], pa.uint64())})
    assert drop_colliding_keys(repeated_last).column("k0").to_pylist() == [2, 3]
