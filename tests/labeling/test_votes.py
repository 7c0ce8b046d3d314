"""APPLY LABELING FUNCTIONS: votes, Python LFs, errors naming LF and row, incremental work."""

import pyarrow.compute as pc
import pytest

import sqlml
from sqlml.errors import DataError, LabelingError


def test_votes_are_sparse_rows(spam_lfs, votes):
    con = spam_lfs
    report = con.sql("APPLY LABELING FUNCTIONS ON comments KEY id").fetchall()
    assert report == [
        ("has_link", "new", 10, 4, 0),
        ("says_song", "new", 10, 3, 0),
        ("says_subscribe", "new", 10, 2, 0),
    ]
    assert votes(con) == {
        (1, "has_link", "spam"), (3, "has_link", "spam"), (5, "has_link", "spam"), (9, "has_link", "spam"),
        (2, "says_song", "ham"), (4, "says_song", "ham"), (9, "says_song", "ham"),
        (3, "says_subscribe", "spam"), (7, "says_subscribe", "spam"),
    }
    # abstains are not stored; every labeled row is remembered
    assert con.sql("SELECT count(*) FROM query_table(ml_rows_table('comments'))").fetchall() == [(10,)]


def test_undeclared_class_names_lf_value_and_row(spam_lfs):
    con = spam_lfs
    con.sql("CREATE LABELING FUNCTION bad ON comments AS CASE WHEN id = 6 THEN 'eggs' END")
    with pytest.raises(LabelingError, match=r"'bad' voted 'eggs'.*not a declared class.*id = 6"):
        con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    con.sql("CREATE OR REPLACE LABELING FUNCTION bad ON comments AS CASE WHEN id = 6 THEN 7 END")
    with pytest.raises(LabelingError, match=r"'bad' voted '7'"):
        con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    # the failed statement left no votes behind
    assert con.sql("SELECT count(*) FROM sqlml.label_sets WHERE key_column IS NOT NULL").fetchall() == [(0,)]


def test_integer_lfs_may_abstain_with_minus_one(comments, votes):
    con = comments
    con.sql("CREATE LABELING FUNCTION odd ON comments WITH (classes := ['ham', 'spam']) AS CASE WHEN id % 2 = 1 THEN 1 ELSE -1 END")
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    assert {v[0] for v in votes(con)} == {1, 3, 5, 7, 9}


def test_key_must_exist_and_be_unique(spam_lfs):
    con = spam_lfs
    with pytest.raises(DataError, match="no key column 'nope'"):
        con.sql("APPLY LABELING FUNCTIONS ON comments KEY nope")
    with pytest.raises(DataError, match="needs a key column"):
        con.sql("APPLY LABELING FUNCTIONS ON comments")
    con.sql("INSERT INTO comments VALUES (1, 'dup', NULL)")
    with pytest.raises(DataError, match="unique"):
        con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")


def test_primary_key_is_the_default_key(con):
    con.sql("CREATE TABLE t (k VARCHAR PRIMARY KEY, x INTEGER)")
    con.sql("INSERT INTO t VALUES ('a', 1), ('b', 5)")
    con.sql("CREATE LABELING FUNCTION big ON t WITH (classes := ['lo', 'hi']) AS CASE WHEN x > 2 THEN 'hi' END")
    assert con.sql("APPLY LABELING FUNCTIONS ON t").fetchall() == [("big", "new", 2, 1, 0)]
    assert con.sql("FROM ml_votes('t')").fetchall() == [("b", "big", "hi")]


def test_empty_table(con):
    con.sql("CREATE TABLE empty (id INTEGER, text VARCHAR)")
    con.sql("CREATE LABELING FUNCTION f ON empty WITH (classes := ['a', 'b']) AS CASE WHEN text = 'x' THEN 'a' END")
    assert con.sql("APPLY LABELING FUNCTIONS ON empty KEY id").fetchall() == [("f", "new", 0, 0, 0)]
    assert con.sql("SELECT coverage FROM ml_lf_summary('empty')").fetchall() == [(0.0,)]


def counting_lf(name, calls, **kw):
    @sqlml.labeling_function(on="comments", inputs=["text"], name=name, **kw)
    def lf(text):
        calls.append(len(text))
        return pc.if_else(pc.match_substring(text, "love"), "ham", None)

    return lf


def test_python_lf_runs_over_arrow_arrays(spam_lfs, votes):
    con = spam_lfs
    calls = []
    con.register(counting_lf("py_love", calls))
    report = dict((r[0], r[2:]) for r in con.sql("APPLY LABELING FUNCTIONS ON comments KEY id").fetchall())
    assert report["py_love"] == (10, 2, 0)
    assert sum(calls) == 10 and len(calls) == 1  # one Arrow chunk, not ten calls
    assert {(v[0], v[2]) for v in votes(con) if v[1] == "py_love"} == {(2, "ham"), (7, "ham")}
    assert con.sql("SELECT kind, inputs FROM ml_labeling_functions() WHERE name = 'py_love'").fetchall() == [
        ("python", ["text"])
    ]


def test_python_lf_may_return_lists_and_indexes(comments, votes):
    con = comments

    @sqlml.labeling_function(on="comments", inputs=["id", "text"], classes=["ham", "spam"])
    def by_id(ids, text):
        return [1 if i.as_py() < 3 else None for i in ids]

    con.register(by_id)
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    assert votes(con) == {(1, "by_id", "spam"), (2, "by_id", "spam")}


def test_raising_python_lf_names_itself_and_the_row(spam_lfs):
    con = spam_lfs

    @sqlml.labeling_function(on="comments", inputs=["text"])
    def fragile(text):
        out = []
        for t in text.to_pylist():
            if t == "meh":
                raise ValueError("cannot read meh")
            out.append(None)
        return out

    con.register(fragile)
    with pytest.raises(LabelingError, match=r"'fragile' raised ValueError: cannot read meh on the row with id = 8"):
        con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")


def test_fault_tolerant_python_lf_abstains_and_counts(spam_lfs, votes):
    con = spam_lfs

    @sqlml.labeling_function(on="comments", inputs=["text"], fault_tolerant=True)
    def fragile(text):
        if any(t == "meh" or t == "lol" for t in text.to_pylist()):
            raise ValueError("boom")
        return ["ham"] * len(text)

    con.register(fragile)
    report = dict((r[0], r[2:]) for r in con.sql("APPLY LABELING FUNCTIONS ON comments KEY id").fetchall())
    assert report["fragile"] == (10, 8, 2)
    assert {v[0] for v in votes(con) if v[1] == "fragile"} == set(range(1, 11)) - {8, 10}
    assert con.sql("SELECT faults FROM ml_labeling_functions() WHERE name = 'fragile'").fetchall() == [(2,)]


def test_python_lf_with_undeclared_class(spam_lfs):
    con = spam_lfs

    @sqlml.labeling_function(on="comments", inputs=["text"])
    def wrong(text):
        return ["eggs"] * len(text)

    con.register(wrong)
    with pytest.raises(LabelingError, match=r"'wrong' voted 'eggs'.*id = 1"):
        con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")


def test_python_lf_with_missing_input(comments):
    @sqlml.labeling_function(on="comments", inputs=["body"], classes=["ham", "spam"])
    def nothing(body):
        return [None] * len(body)

    with pytest.raises(DataError, match="no column 'body'"):
        comments.register(nothing)


def test_python_lf_must_be_registered_again_after_reconnect(db_path):
    con = sqlml.connect(db_path)
    con.sql("CREATE TABLE comments AS SELECT range AS id, 'x' AS text FROM range(3)")
    calls = []

    @sqlml.labeling_function(on="comments", inputs=["text"], classes=["ham", "spam"])
    def py(text):
        calls.append(len(text))
        return ["ham"] * len(text)

    con.register(py)
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    con.close()
    con = sqlml.connect(db_path)
    # nothing to do: the votes are stored, so the function is not needed
    assert con.sql("APPLY LABELING FUNCTIONS ON comments").fetchall() == [("py", "unchanged", 0, 3, 0)]
    con.sql("INSERT INTO comments VALUES (3, 'y')")
    with pytest.raises(LabelingError, match="not registered in this connection"):
        con.sql("APPLY LABELING FUNCTIONS ON comments")
    con.register(py)
    assert con.sql("APPLY LABELING FUNCTIONS ON comments").fetchall() == [("py", "unchanged", 1, 4, 0)]
    assert calls == [3, 1]
    con.close()


def test_changing_one_lf_recomputes_only_that_lf(spam_lfs, votes):
    con = spam_lfs
    calls = []
    con.register(counting_lf("py_love", calls))
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    assert sum(calls) == 10
    con.sql("CREATE OR REPLACE LABELING FUNCTION says_song ON comments AS CASE WHEN text LIKE '%song%' THEN 'spam' END")
    report = {r[0]: r[1:3] for r in con.sql("APPLY LABELING FUNCTIONS ON comments").fetchall()}
    assert report == {
        "has_link": ("unchanged", 0),
        "says_song": ("changed", 10),
        "says_subscribe": ("unchanged", 0),
        "py_love": ("unchanged", 0),
    }
    assert sum(calls) == 10  # the Python LF did no work
    assert {v[2] for v in votes(con) if v[1] == "says_song"} == {"spam"}
    # re-creating an LF with the same definition changes nothing
    con.sql("CREATE OR REPLACE LABELING FUNCTION has_link ON comments AS CASE WHEN text LIKE '%http%' THEN 'spam' END")
    assert {r[0]: r[2] for r in con.sql("APPLY LABELING FUNCTIONS ON comments").fetchall()}["has_link"] == 0


def test_appended_rows_are_labeled_without_recomputing_old_rows(spam_lfs, votes):
    con = spam_lfs
    calls = []
    con.register(counting_lf("py_love", calls))
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    before = votes(con)
    con.sql("INSERT INTO comments VALUES (11, 'love my channel http://v', NULL), (12, 'ok', NULL)")
    report = con.sql("APPLY LABELING FUNCTIONS ON comments").fetchall()
    assert {r[0]: r[1:3] for r in report} == {lf: ("unchanged", 2) for lf in ("has_link", "says_song", "says_subscribe", "py_love")}
    assert calls == [10, 2]
    assert votes(con) - before == {(11, "has_link", "spam"), (11, "py_love", "ham")}
    # nothing new: no work at all
    assert all(r[2] == 0 for r in con.sql("APPLY LABELING FUNCTIONS ON comments").fetchall())
    assert calls == [10, 2]


def test_deleted_rows_lose_their_votes(spam_lfs, votes):
    con = spam_lfs
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    con.sql("DELETE FROM comments WHERE id IN (3, 9)")
    con.sql("APPLY LABELING FUNCTIONS ON comments")
    assert not {v for v in votes(con) if v[0] in (3, 9)}
    assert con.sql("SELECT count(*) FROM query_table(ml_rows_table('comments'))").fetchall() == [(8,)]


def test_full_recomputes_everything(spam_lfs):
    con = spam_lfs
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    report = con.sql("APPLY LABELING FUNCTIONS ON comments WITH (full := true)").fetchall()
    assert [r[1:3] for r in report] == [("recomputed", 10)] * 3
