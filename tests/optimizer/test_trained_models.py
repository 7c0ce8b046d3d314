"""Serving trained models: optimizer, cache and batch path agree exactly with plain ml_predict."""

from __future__ import annotations

import pytest

from sqlml.optimizer.model_functions import MODEL_FUNCTIONS
from sqlml.optimizer.runtime.trained_models import model_version
from tests.trained import train_model

QUERY = (
    "SELECT id, ml_predict('delay', a, b, color) AS label, ml_predict_proba('delay', a, b, color) AS probs "
    "FROM train WHERE color <> 'green' ORDER BY id"
)


def stats(con):
    return con.sql("SELECT function, model, version, lookups, hits, misses FROM ml_prediction_cache() ORDER BY ALL").fetchall()


def test_rewritten_and_cached_results_equal_plain_udf_results(trained):
    con = trained
    plain = con.duckdb.execute(QUERY).fetchall()
    assert con.sql(QUERY).fetchall() == plain  # misses: computed through the batch path
    assert con.sql(QUERY).fetchall() == plain  # hits: read back from the cache table
    distinct = con.duckdb.execute("SELECT count(*) FROM (SELECT DISTINCT a, b, color FROM train WHERE color <> 'green')").fetchall()[0][0]
    assert stats(con) == [
        ("ml_predict", "delay", 1, 2 * distinct, distinct, distinct),
        ("ml_predict_proba", "delay", 1, 2 * distinct, distinct, distinct),
    ]


def test_new_version_invalidates_and_pinned_versions_share_entries(trained):
    con = trained
    first = con.sql(QUERY).fetchall()
    pinned = con.sql(QUERY.replace("'delay'", "'delay@1'")).fetchall()
    assert pinned == first
    assert [r[4] for r in stats(con)] == [r[3] // 2 for r in stats(con)]  # the pinned query only hit
    train_model(con, epochs=1, seed=7, replace=True)
    second = con.sql(QUERY).fetchall()
    assert second == con.duckdb.execute(QUERY).fetchall()
    assert second != first
    assert {r[2] for r in stats(con)} == {2}
    assert con.duckdb.execute("SELECT DISTINCT version FROM sqlml.prediction_cache").fetchall() == [(2,)]


def test_model_version_token_and_unknown_models(trained):
    con = trained
    version = model_version(con, "delay")
    assert version.number == 1 and version.name == "delay" and version.token.startswith("delay@1:")
    assert model_version(con, "delay@1") == version
    assert model_version(con, "nope") is None
    assert MODEL_FUNCTIONS["ml_predict"].batch is not None


def test_unknown_model_still_raises_the_registry_error(trained):
    from sqlml.errors import UnknownObjectError

    with pytest.raises(UnknownObjectError, match="delay"):
        trained.sql("SELECT ml_predict('delya', a, b, color) FROM train").fetchall()


def test_null_features_predict_null_through_the_cache(trained):
    con = trained
    sql = "SELECT id, ml_predict('delay', CASE WHEN id % 4 = 0 THEN NULL ELSE a END, b, color) FROM train ORDER BY id"
    plain = con.duckdb.execute(sql).fetchall()
    assert [r[1] is None for r in plain[:4]] == [True, False, False, False]
    assert con.sql(sql).fetchall() == plain
    assert con.sql(sql).fetchall() == plain


def test_create_table_as_select_scores_through_the_cache(trained):
    con = trained
    con.sql("CREATE TABLE scored AS SELECT id, ml_predict('delay', a, b, color) AS p FROM train")
    expected = con.duckdb.execute("SELECT id, ml_predict('delay', a, b, color) FROM train ORDER BY id").fetchall()
    assert con.sql("SELECT * FROM scored ORDER BY id").fetchall() == expected
