"""A fitted label model labels new rows (ml_label_model_predict); votes imported from a label
matrix column or a long votes table; what each method gives rows without votes."""

from __future__ import annotations

import numpy as np
import pytest

from sqlml.errors import DataError, LabelingError, ObjectExistsError

METHODS = ["label_model", "majority", "dawid_skene", "triplet"]


@pytest.fixture
def labeled(spam_lfs):
    con = spam_lfs
    con.sql("CREATE LABELING FUNCTION says_love ON comments AS CASE WHEN text LIKE '%love%' THEN 'ham' END")
    return con


@pytest.mark.parametrize("method", METHODS)
def test_predict_equals_the_fitted_table_on_its_rows(labeled, method):
    con = labeled
    con.sql(f"CREATE LABEL MODEL lm ON comments KEY id GOLD gold WITH (method := '{method}')")
    fitted = con.sql("SELECT * FROM lm ORDER BY id").fetchall()
    again = con.sql("SELECT * FROM ml_label_model_predict('lm', 'SELECT * FROM comments') ORDER BY id").fetchall()
    assert again == fitted
    by_name = con.sql("SELECT * FROM ml_label_model_predict('lm', 'comments') ORDER BY id").fetchall()
    assert by_name == fitted


def test_predict_labels_new_rows_without_refitting(labeled):
    con = labeled
    con.sql("CREATE LABEL MODEL lm ON comments KEY id")
    before = con.sql("SELECT properties FROM sqlml.objects WHERE kind = 'label model'").fetchall()
    con.sql("CREATE TABLE incoming AS SELECT * FROM (VALUES (100, 'free http://spam'), (101, 'my favourite song'), "
            "(102, 'nothing to see')) AS t(id, text)")
    rows = con.sql("SELECT id, label, source, round(weight, 6) FROM ml_label_model_predict('lm', 'SELECT * FROM incoming') "
                   "ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows[:2]] == [(100, "spam", "weak"), (101, "ham", "weak")]
    assert rows[2][2] == "abstain" and rows[2][3] == 0
    # a row with the same votes as a training row gets the training row's posterior
    train = dict(con.sql("SELECT id, probs FROM lm").fetchall())
    new = dict(con.sql("SELECT id, probs FROM ml_label_model_predict('lm', 'incoming')").fetchall())
    assert new[100] == train[5]  # 'free stuff http://z': has_link only
    assert con.sql("SELECT properties FROM sqlml.objects WHERE kind = 'label model'").fetchall() == before
    joined = con.sql("SELECT i.text, p.label FROM incoming AS i JOIN ml_label_model_predict('lm', 'incoming') AS p "
                     "USING (id) ORDER BY id").fetchall()
    assert joined[0] == ("free http://spam", "spam")


def test_predict_with_python_lfs(comments):
    import pyarrow.compute as pc

    import sqlml

    con = comments
    con.sql("CREATE LABELING FUNCTION has_link ON comments WITH (classes := ['ham', 'spam']) AS "
            "CASE WHEN text LIKE '%http%' THEN 'spam' END")

    @sqlml.labeling_function(on="comments", inputs=["text"])
    def mentions_song(text):
        return pc.if_else(pc.match_substring(text, "song"), "ham", None)

    con.register(mentions_song)
    con.sql("CREATE LABEL MODEL lm ON comments KEY id WITH (method := 'majority')")
    got = con.sql("SELECT * FROM ml_label_model_predict('lm', 'comments') ORDER BY id").fetchall()
    assert got == con.sql("SELECT * FROM lm ORDER BY id").fetchall()


def test_predict_errors_name_the_model(labeled):
    con = labeled
    con.sql("CREATE LABEL MODEL lm ON comments KEY id")
    con.sql("CREATE TABLE thin AS SELECT id FROM comments")
    with pytest.raises(DataError, match=r"label model 'lm': labeling function 'has_link' reads column 'text'"):
        con.sql("SELECT * FROM ml_label_model_predict('lm', 'SELECT id FROM thin')")
    with pytest.raises(DataError, match=r"label model 'lm'.*no key column 'id'"):
        con.sql("SELECT * FROM ml_label_model_predict('lm', 'SELECT text FROM comments')")
    with pytest.raises(Exception, match="option .query."):
        con.sql("SELECT * FROM ml_label_model_predict('lm', 'SELECT * FROM comments); DROP TABLE comments; SELECT (1')")
    assert con.sql("SELECT count(*) FROM comments").fetchall()[0][0] == 10
    con.sql("CREATE OR REPLACE LABELING FUNCTION says_love ON comments AS CASE WHEN text LIKE '%lov%' THEN 'ham' END")
    with pytest.raises(LabelingError, match="'says_love' was replaced"):
        con.sql("SELECT * FROM ml_label_model_predict('lm', 'comments')")


def test_import_a_label_matrix_column(con):
    con.sql("CREATE TABLE docs AS SELECT i AS id, [CASE WHEN i % 2 = 0 THEN 1 ELSE -1 END, i % 2, "
            "CASE WHEN i % 3 = 0 THEN 0 ELSE -1 END]::INTEGER[] AS weak FROM range(30) t(i)")
    made = con.sql("CREATE LABELING FUNCTIONS ON docs FROM COLUMN weak WITH (classes := ['ham', 'spam'], "
                   "names := ['rule_a', 'rule_b', 'rule_c'])").fetchall()
    assert [r[0] for r in made] == ["rule_a", "rule_b", "rule_c"]
    con.sql("APPLY LABELING FUNCTIONS ON docs KEY id")
    summary = dict(con.sql("SELECT lf, coverage FROM ml_lf_summary('docs')").fetchall())
    assert summary == {"rule_a": 0.5, "rule_b": 1.0, "rule_c": pytest.approx(10 / 30)}
    votes = set(con.sql("SELECT id, labeling_function, label FROM ml_votes('docs') WHERE id < 4").fetchall())
    assert votes == {(0, "rule_a", "spam"), (0, "rule_b", "ham"), (0, "rule_c", "ham"), (1, "rule_b", "spam"),
                     (2, "rule_a", "spam"), (2, "rule_b", "ham"), (3, "rule_b", "spam"), (3, "rule_c", "ham")}
    for method in METHODS:
        con.sql(f"CREATE OR REPLACE LABEL MODEL lm ON docs WITH (method := '{method}')")
    con.sql("INSERT INTO docs VALUES (30, [1, 1, -1])")  # incremental APPLY sees the new row
    report = con.sql("APPLY LABELING FUNCTIONS ON docs").fetchall()
    assert {r[0]: r[2] for r in report} == {"rule_a": 1, "rule_b": 1, "rule_c": 1}
    with pytest.raises(ObjectExistsError):
        con.sql("CREATE LABELING FUNCTIONS ON docs FROM COLUMN weak WITH (names := ['rule_a', 'x', 'y'])")


def test_import_a_long_votes_table(con):
    con.sql("CREATE TABLE docs AS SELECT i AS id FROM range(12) t(i)")
    con.sql("CREATE TABLE other_votes AS SELECT i AS id, 'crowd' AS lf, CASE WHEN i % 3 = 0 THEN 'spam' ELSE 'ham' END "
            "AS label FROM range(12) t(i) UNION ALL SELECT i, 'regex', 'spam' FROM range(0, 12, 2) t(i) "
            "UNION ALL SELECT i, 'model', 'ham' FROM range(0, 12, 4) t(i)")
    made = con.sql("CREATE LABELING FUNCTIONS ON docs FROM TABLE other_votes KEY id "
                   "WITH (classes := ['ham', 'spam'], prefix := 'ext_')").fetchall()
    assert sorted(r[0] for r in made) == ["ext_crowd", "ext_model", "ext_regex"]
    con.sql("APPLY LABELING FUNCTIONS ON docs KEY id")
    got = set(con.sql("SELECT id, labeling_function, label FROM ml_votes('docs') WHERE id IN (0, 1)").fetchall())
    assert got == {(0, "ext_crowd", "spam"), (0, "ext_regex", "spam"), (0, "ext_model", "ham"), (1, "ext_crowd", "ham")}
    con.sql("CREATE LABEL MODEL lm ON docs")
    assert con.sql("SELECT count(*) FROM lm").fetchall()[0][0] == 12


def test_imported_votes_outside_the_classes_are_refused(con):
    con.sql("CREATE TABLE docs AS SELECT i AS id, [i % 4, -1]::INTEGER[] AS weak FROM range(8) t(i)")
    with pytest.raises(DataError, match=r"column 'weak' of 'docs' holds 4 vote\(s\) outside the classes"):
        con.sql("CREATE LABELING FUNCTIONS ON docs FROM COLUMN weak WITH (classes := ['ham', 'spam'])")
    con.sql("CREATE TABLE v AS SELECT 1 AS id, 'a' AS lf, 'eggs' AS label")
    with pytest.raises(DataError, match=r"votes table 'v' holds 1 vote\(s\) outside the classes"):
        con.sql("CREATE LABELING FUNCTIONS ON docs FROM TABLE v KEY id WITH (classes := ['ham', 'spam'])")
    assert con.sql("SELECT count(*) FROM sqlml.labeling_functions").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM sqlml.label_sets").fetchall()[0][0] == 0


@pytest.mark.parametrize("method", METHODS)
def test_rows_without_votes_get_what_the_docs_say(labeled, method):
    """Methods that ignore abstains give vote-less rows the class balance; Dawid-Skene (which
    models abstaining) gives them P(class | every LF abstained)."""
    from sqlml.labeling.predict import load_model

    con = labeled
    con.sql(f"CREATE LABEL MODEL lm ON comments KEY id WITH (method := '{method}')")
    probs = np.array(con.sql("SELECT probs FROM lm WHERE source = 'abstain' LIMIT 1").fetchall()[0][0])
    _, model, _, _ = load_model(con.duckdb, "lm")
    if method == "dawid_skene":
        expected = model.class_balance * np.exp(model.log_abstain.sum(axis=0))
        expected /= expected.sum()
        assert not np.allclose(expected, model.class_balance)
    else:
        expected = model.class_balance
    np.testing.assert_allclose(probs, expected, rtol=1e-5)


def test_auto_method_chooses_on_gold_rows(labeled):
    import json

    con = labeled
    row = con.sql("CREATE LABEL MODEL lm ON comments KEY id GOLD gold WITH (method := 'auto')").fetchall()[0]
    props = json.loads(con.sql("SELECT properties FROM ml_catalog(kind := 'label model')").fetchall()[0][0])
    scores = props["options"]["gold_accuracy_by_method"]
    assert set(scores) == {"label_model", "majority", "dawid_skene", "triplet"}
    assert row[1] == props["method"] == props["options"]["chosen_method"]
    assert scores[row[1]] == max(scores.values())
    with pytest.raises(Exception, match="'auto' picks"):
        con.sql("CREATE OR REPLACE LABEL MODEL lm ON comments KEY id WITH (method := 'auto')")
