"""The prediction cache: hits, misses, overlapping queries, invalidation, persistence."""

from __future__ import annotations

import sqlml
from sqlml.optimizer.runtime import cache_store
from tests.optimizer.counting import CountingModel, make_tables


def stats(con):
    return con.sql("SELECT model, version, lookups, hits, misses, cached_rows FROM ml_prediction_cache()").fetchall()


def test_repeated_query_hits_and_overlapping_query_computes_only_misses(scored_one):
    con, model = scored_one
    first = con.sql("SELECT id, ml_score('m', x) FROM t WHERE y = 1 ORDER BY id").fetchall()
    assert model.total == 10  # x values of the rows with y = 1
    assert stats(con) == [("m", 1, 10, 0, 10, 10)]
    model.reset()
    assert con.sql("SELECT id, ml_score('m', x) FROM t WHERE y = 1 ORDER BY id").fetchall() == first
    assert model.total == 0
    assert stats(con) == [("m", 1, 20, 10, 10, 10)]
    model.reset()
    con.sql("SELECT count(*) FROM t WHERE y IN (1, 2) AND ml_score('m', x) > 50").fetchall()
    assert model.total == 10  # the y = 2 inputs are new, the y = 1 ones are cached
    assert sorted(v for _, v in model.inputs) == sorted(
        r[0] for r in con.duckdb.execute("SELECT DISTINCT x FROM t WHERE y = 2").fetchall()
    )
    assert stats(con) == [("m", 1, 40, 20, 20, 20)]


def test_misses_go_through_the_batch_path(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_score('m', x, z) FROM t").fetchall()
    assert model.batch_rows == 1300 and model.rows == 0  # (x, z) pairs: lcm(100, 13)


def test_without_a_batch_path_misses_go_through_sql(con):
    make_tables(con)
    model = CountingModel("ml_plain", batch=False).install(con)
    try:
        rows = con.sql("SELECT id, ml_plain('m', x) FROM t ORDER BY id").fetchall()
        assert model.rows == 100 and model.batch_rows == 0
        assert rows == con.duckdb.execute("SELECT id, ml_plain('m', x) FROM t ORDER BY id").fetchall()
    finally:
        model.uninstall()


def test_a_new_model_version_invalidates(scored_one):
    con, model = scored_one
    sql = "SELECT sum(ml_score('m', x)) FROM t"
    assert con.sql(sql).fetchall() == [(495000.0,)]
    model.versions["m"] = 2
    model.reset()
    assert con.sql(sql).fetchall() == [(990000.0,)]  # new weights, new results
    assert model.total == 100
    assert stats(con) == [("m", 2, 100, 0, 100, 100)]  # the old version's rows are gone
    versions = con.duckdb.execute("SELECT DISTINCT version FROM sqlml.prediction_cache").fetchall()
    assert versions == [(2,)]


def test_null_inputs_and_results_are_cached(scored_one):
    con, model = scored_one
    sql = "SELECT id, ml_score('m', w) FROM t ORDER BY id"
    expected = con.duckdb.execute(sql).fetchall()
    assert any(r[1] is None for r in expected)
    model.reset()
    assert con.sql(sql).fetchall() == expected
    model.reset()
    assert con.sql(sql).fetchall() == expected
    assert model.total == 0


def test_different_models_and_arguments_do_not_share_entries(scored_one):
    con, model = scored_one
    a = con.sql("SELECT sum(ml_score('m', x)) FROM t").fetchall()
    model.versions["other"] = 3
    b = con.sql("SELECT sum(ml_score('other', x)) FROM t").fetchall()
    c = con.sql("SELECT sum(ml_score('m', x, 1.0)) FROM t").fetchall()
    assert (a, b, c) == ([(495000.0,)], [(3 * 495000.0,)], [(505000.0,)])
    assert model.total == 300


def test_the_cache_persists_in_the_database_file(db_path):
    with sqlml.connect(db_path) as con:
        make_tables(con)
        model = CountingModel().install(con)
        try:
            con.sql("SELECT ml_score('m', x) FROM t").fetchall()
        finally:
            model.uninstall()
    with sqlml.connect(db_path) as con:
        model = CountingModel().install(con)
        try:
            con.sql("SELECT ml_score('m', x) FROM t").fetchall()
            assert model.total == 0
        finally:
            model.uninstall()


def test_clear(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_score('m', x) FROM t").fetchall()
    model.versions["other"] = 1
    con.sql("SELECT ml_score('other', z) FROM t").fetchall()
    assert con.sql("SELECT ml_clear_prediction_cache('other')").fetchall() == [(13,)]
    assert [r[0] for r in stats(con)] == ["m"]
    assert con.sql("SELECT ml_clear_prediction_cache(NULL)").fetchall() == [(100,)]
    assert stats(con) == []
    assert cache_store.clear(con.duckdb) == 0


def test_cache_switched_off_computes_every_distinct_input_each_time(scored_one):
    con, model = scored_one
    con.sql("SELECT ml_optimizer_rule('prediction_cache', false)").fetchall()
    for _ in range(2):
        con.sql("SELECT ml_score('m', x) FROM t").fetchall()
    assert model.total == 200
    assert stats(con) == []


def test_cursors_filling_at_once_compute_each_input_once(scored_one):
    import threading

    con, model = scored_one
    errors = []

    def work():
        cursor = con.cursor()
        try:
            for _ in range(2):
                cursor.sql("SELECT sum(ml_score('m', id)) FROM t").fetchall()
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert model.total == 10_000  # one fill computed every id; the others found them cached
