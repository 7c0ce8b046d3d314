"""Text features in CREATE MODEL: n-gram bags learned in DuckDB, the same at training and serving."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sqlml.datasets import load_messages
from sqlml.errors import DataError, InvalidOptionError, TrainingError

ROWS = 800


@pytest.fixture
def messages(con):
    load_messages(con, "messages", ROWS, seed=1)
    load_messages(con, "fresh", 300, seed=2)
    return con


@pytest.fixture(scope="module")
def trained():
    """One connection with a text model 'spam' (logistic), shared by the tests that only read it."""
    import sqlml

    con = sqlml.connect()
    load_messages(con, "messages", ROWS, seed=1)
    load_messages(con, "fresh", 300, seed=2)
    _train(con)
    yield con
    con.close()


def _train(con, name="spam", extra=""):
    con.sql(
        f"CREATE MODEL {name} WITH (text := ['message'], label := 'truth', epochs := 6, lr := 0.05, progress := false"
        f"{extra}) AS SELECT message, truth FROM messages"
    )


@pytest.mark.parametrize("architecture", ["logistic", "fasttext"])
def test_text_model_learns_and_predicts_raw_text(trained, messages, architecture):
    con = messages
    if architecture == "logistic":
        con = trained
    else:
        _train(con, extra=f", architecture := '{architecture}', dim := 16")
    accuracy = con.sql("SELECT avg((ml_predict('spam', message) = truth)::INT) FROM fresh").fetchall()[0][0]
    assert accuracy > 0.95
    record = con.sql("SELECT features FROM sqlml.models WHERE name = 'spam'").fetchall()[0][0]
    assert '"kind": "text"' in record and '"vocabulary"' in record


def _prepared(con, **options):
    from sqlml.training.runner import prepare

    return prepare(con.duckdb, "m", {"text": ["message"], "label": "truth", **options},
                   "SELECT message, truth FROM messages ORDER BY id")


def test_vocabulary_is_learned_in_sql_with_idf(messages):
    con = messages
    prepared = _prepared(con, ngrams=[1, 2], min_df=3, vocabulary_size=200)
    prepared.training.cleanup()
    feature = prepared.spec.features[0]
    text = feature.text
    assert feature.kind == "text" and len(text["vocabulary"]) == 200
    # the document frequencies of the vocabulary, recomputed independently in SQL
    df = dict(con.sql(
        "SELECT term, count(*) FROM (SELECT unnest(list_distinct(list_concat(t, "
        "[t[i] || ' ' || t[i + 1] FOR i IN range(1, len(t))]))) AS term FROM "
        "(SELECT regexp_extract_all(lower(message), '[\\p{L}\\p{N}_]+') AS t FROM messages)) GROUP BY term"
    ).fetchall())
    n = ROWS
    for term, idf in list(zip(text["vocabulary"], text["idf"], strict=True))[:50]:
        assert df[term] >= 3
        assert idf == pytest.approx(np.log((1 + n) / (1 + df[term])) + 1, abs=1e-5)
    assert "are we" in text["vocabulary"] or "see you" in text["vocabulary"]  # bigrams


def test_training_and_serving_encode_identically(messages):
    """The staged training bags and the serving encoder give the same numbers."""
    import pyarrow.ipc as ipc

    from sqlml.models.features import FeatureSpec
    from sqlml.models.text import encoder, pad

    con = messages
    prepared = _prepared(con, shuffle=False)
    try:
        table = ipc.open_file(prepared.training.path).read_all()
        spec = FeatureSpec.from_json(prepared.spec.to_json())  # as loaded from the catalog
        text = spec.features[0].text
        staged = pad(table.column("f0"), table.column("g0"), text["max_tokens"])
        texts = pa.array([r[0] for r in con.sql("SELECT message FROM messages ORDER BY id").fetchall()])
        served = encoder(text).encode(texts)
        np.testing.assert_array_equal(staged, served)
        encoded, valid = spec.encode([texts])
        np.testing.assert_array_equal(encoded, served)
        assert valid.all()
    finally:
        prepared.training.cleanup()


def test_bulk_inference_and_row_udf_agree(trained):
    con = trained
    con.sql("CREATE TABLE scored AS SELECT id, ml_predict('spam', message) AS p FROM fresh")
    bulk = dict(con.sql("SELECT id, p FROM scored").fetchall())
    one_by_one = {i: con.sql("SELECT ml_predict('spam', ?)", [m]).fetchall()[0][0]
                  for i, m in con.sql("SELECT id, message FROM fresh ORDER BY id LIMIT 20").fetchall()}
    assert all(bulk[i] == p for i, p in one_by_one.items())


def test_served_model_takes_raw_text(trained):
    from sqlml.serving.predictor import ModelPredictor

    con = trained
    predictor = ModelPredictor.from_registry(con, "spam")
    assert [(f.name, f.kind) for f in predictor.fields] == [("message", "string")]
    rows = con.sql("SELECT message, ml_predict('spam', message) FROM fresh ORDER BY id LIMIT 25").fetchall()
    served = predictor.predict([{"message": m} for m, _ in rows])
    assert [s["label"] for s in served] == [p for _, p in rows]


def test_null_and_unknown_text_is_an_empty_bag(trained):
    con = trained
    out = con.sql("SELECT ml_predict('spam', NULL::VARCHAR), ml_predict('spam', 'zzzz qqqq')").fetchall()[0]
    assert out[0] in ("ham", "spam") and out[0] == out[1]


def test_soft_labels_and_weights_from_a_label_model(messages):
    con = messages
    con.sql("CREATE LABELING FUNCTION prize ON messages WITH (classes := ['ham', 'spam']) AS "
            "CASE WHEN regexp_matches(message, 'prize|claim|WIN|www') THEN 'spam' END")
    con.sql("CREATE LABELING FUNCTION daily ON messages AS CASE WHEN regexp_matches(message, 'lunch|dinner|home|mum') THEN 'ham' END")
    con.sql("CREATE LABELING FUNCTION late ON messages AS CASE WHEN contains(message, 'late') THEN 'ham' END")
    con.sql("CREATE LABEL MODEL weak ON messages KEY id")
    con.sql(
        "CREATE MODEL spam WITH (text := ['message'], soft_label := 'probs', weight := 'weight', "
        "classes := ['ham', 'spam'], epochs := 6, lr := 0.05, progress := false) AS "
        "SELECT m.message, l.label, l.probs, l.weight FROM messages AS m JOIN weak AS l USING (id)"
    )
    end = con.sql("SELECT avg((ml_predict('spam', message) = truth)::INT) FROM fresh").fetchall()[0][0]
    assert end > 0.9


def test_text_option_on_a_non_text_column_is_refused(messages):
    con = messages
    with pytest.raises(DataError, match=r"model 'bad'.*'id'.*not text"):
        con.sql("CREATE MODEL bad WITH (text := ['id'], label := 'truth', progress := false) AS SELECT id, message, truth FROM messages")
    assert con.sql("SELECT count(*) FROM sqlml.models").fetchall()[0][0] == 0


def test_empty_vocabulary_is_refused(messages):
    con = messages
    with pytest.raises(DataError, match=r"model 'bad'.*'message'.*empty vocabulary"):
        con.sql("CREATE MODEL bad WITH (text := ['message'], label := 'truth', min_df := 100000, progress := false) "
                "AS SELECT message, truth FROM messages")
    assert con.sql("SELECT count(*) FROM sqlml.models").fetchall()[0][0] == 0


def test_text_options_are_checked(messages):
    con = messages
    with pytest.raises(InvalidOptionError, match="ngrams"):
        con.sql("CREATE MODEL bad WITH (text := ['message'], label := 'truth', ngrams := [3, 1]) AS SELECT message, truth FROM messages")
    with pytest.raises(InvalidOptionError, match="text option"):
        con.sql("CREATE MODEL bad WITH (label := 'truth', min_df := 2) AS SELECT id, truth FROM messages")
    with pytest.raises(DataError, match="not in the training query"):
        con.sql("CREATE MODEL bad WITH (text := ['body'], label := 'truth') AS SELECT message, truth FROM messages")
    with pytest.raises(TrainingError, match="fasttext"):
        con.sql("CREATE MODEL bad WITH (architecture := 'fasttext', label := 'truth', progress := false) AS SELECT id, truth FROM messages")


def test_hashed_terms_and_count_weighting(messages):
    from sqlml.models.text import encoder

    con = messages
    prepared = _prepared(con, hash_buckets=4096, text_weighting="count", ngrams=[1, 3])
    prepared.training.cleanup()
    text = prepared.spec.features[0].text
    assert all(0 <= int(t) < 4096 for t in text["vocabulary"])
    bag = encoder(text).encode(pa.array(["see you see you at lunch"]))[0]
    weights = bag[text["max_tokens"]:]
    assert sorted(weights[weights > 0].tolist())[-1] == 2.0  # 'see' twice (counts), n-grams up to 3 hashed


def test_text_with_numeric_features(messages):
    con = messages
    con.sql(
        "CREATE MODEL spam WITH (text := ['message'], label := 'truth', epochs := 6, lr := 0.05, progress := false, "
        "architecture := 'mlp', hidden := [16]) AS SELECT message, length(message) AS n_chars, truth FROM messages"
    )
    accuracy = con.sql("SELECT avg((ml_predict('spam', message, length(message)) = truth)::INT) FROM fresh").fetchall()[0][0]
    assert accuracy > 0.95
