"""CREATE / DROP LABELING FUNCTION, classes, builders, bad input."""

import pytest

import sqlml
from sqlml.errors import DataError, InvalidOptionError, LabelingError, ObjectExistsError, SqlmlSyntaxError, UnknownObjectError


def test_create_reports_and_catalogs(comments):
    con = comments
    shown = con.sql(
        "CREATE LABELING FUNCTION has_link ON comments WITH (classes := ['ham', 'spam']) AS "
        "CASE WHEN text LIKE '%http%' THEN 'spam' END"
    ).fetchall()
    assert shown == [("has_link", "comments", "name")]
    assert con.sql("SELECT kind, name FROM ml_catalog(kind := 'labeling function')").fetchall() == [
        ("labeling function", "has_link")
    ]
    assert con.sql("SELECT classes FROM sqlml.label_sets").fetchall() == [(["ham", "spam"],)]


def test_first_lf_must_declare_classes(comments):
    with pytest.raises(LabelingError, match="no classes yet"):
        comments.sql("CREATE LABELING FUNCTION f ON comments AS CASE WHEN id > 3 THEN 'spam' END")


def test_classes_declared_once(spam_lfs):
    with pytest.raises(LabelingError, match="declares classes"):
        spam_lfs.sql(
            "CREATE LABELING FUNCTION other ON comments WITH (classes := ['a', 'b']) AS CASE WHEN id = 1 THEN 'a' END"
        )
    # repeating the same classes is fine
    spam_lfs.sql(
        "CREATE LABELING FUNCTION other ON comments WITH (classes := ['ham', 'spam']) AS CASE WHEN id = 1 THEN 'ham' END"
    )


def test_duplicate_name_needs_or_replace(spam_lfs, votes):
    with pytest.raises(ObjectExistsError, match="has_link"):
        spam_lfs.sql("CREATE LABELING FUNCTION has_link ON comments AS CASE WHEN id = 1 THEN 'ham' END")
    spam_lfs.sql("CREATE OR REPLACE LABELING FUNCTION has_link ON comments AS CASE WHEN id = 1 THEN 'ham' END")
    spam_lfs.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    assert {v for v in votes(spam_lfs) if v[1] == "has_link"} == {(1, "has_link", "ham")}


def test_missing_column_names_the_lf(comments):
    with pytest.raises(DataError, match="'f'.*does not bind.*txt"):
        comments.sql("CREATE LABELING FUNCTION f ON comments WITH (classes := ['ham', 'spam']) AS CASE WHEN txt = '' THEN 0 END")


def test_missing_table(con):
    with pytest.raises(DataError, match="nope"):
        con.sql("CREATE LABELING FUNCTION f ON nope WITH (classes := ['a', 'b']) AS 0")


def test_wrong_return_type(comments):
    with pytest.raises(LabelingError, match="BOOLEAN"):
        comments.sql("CREATE LABELING FUNCTION f ON comments WITH (classes := ['ham', 'spam']) AS text LIKE '%x%'")


def test_expression_cannot_escape_its_parentheses(comments):
    with pytest.raises(SqlmlSyntaxError, match="not one SQL expression"):
        comments.sql("CREATE LABELING FUNCTION f ON comments WITH (classes := ['ham', 'spam']) AS 0) AS x, (1")


def test_unknown_option(comments):
    with pytest.raises(InvalidOptionError, match="clases"):
        comments.sql("CREATE LABELING FUNCTION f ON comments WITH (clases := ['ham', 'spam']) AS 0")


def test_drop(spam_lfs, votes):
    con = spam_lfs
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    con.sql("DROP LABELING FUNCTION says_song")
    assert {v[1] for v in votes(con)} == {"has_link", "says_subscribe"}
    assert "says_song" not in [r[0] for r in con.sql("SELECT name FROM ml_labeling_functions()").fetchall()]
    con.sql("DROP LABELING FUNCTION IF EXISTS says_song")
    with pytest.raises(UnknownObjectError, match="Did you mean 'has_link'"):
        con.sql("DROP LABELING FUNCTION has_lnk")


def test_dropping_the_last_lf_forgets_the_classes(spam_lfs):
    con = spam_lfs
    for name in ("has_link", "says_song", "says_subscribe"):
        con.sql(f"DROP LABELING FUNCTION {name}")
    assert con.sql("SELECT count(*) FROM sqlml.label_sets").fetchall() == [(0,)]
    con.sql("CREATE LABELING FUNCTION x ON comments WITH (classes := ['a', 'b', 'c']) AS 'c'")


def test_failed_statement_leaves_nothing(comments):
    with pytest.raises(LabelingError):
        comments.sql("CREATE LABELING FUNCTION f ON comments WITH (classes := ['ham', 'spam']) AS id > 1")
    assert comments.sql("SELECT count(*) FROM sqlml.label_sets").fetchall() == [(0,)]
    assert comments.sql("SELECT count(*) FROM sqlml.objects").fetchall() == [(0,)]


def test_hostile_names(con):
    con.sql('CREATE TABLE "my ""odd"" table" AS SELECT range AS "select", \'x\' || range AS "te xt" FROM range(4)')
    con.sql(
        'CREATE LABELING FUNCTION "lf ""quoted""; drop" ON "my ""odd"" table" '
        "WITH (classes := ['it''s', 'select']) AS CASE WHEN \"select\" % 2 = 0 THEN 'it''s' END"
    )
    result = con.sql('APPLY LABELING FUNCTIONS ON "my ""odd"" table" KEY "select"').fetchall()
    assert result == [('lf "quoted"; drop', "new", 4, 2, 0)]
    assert sorted(con.sql("SELECT * FROM ml_votes('my \"odd\" table')").fetchall()) == [
        (0, 'lf "quoted"; drop', "it's"),
        (2, 'lf "quoted"; drop', "it's"),
    ]
    summary = con.sql("SELECT lf, coverage FROM ml_lf_summary('my \"odd\" table')").fetchall()
    assert summary == [('lf "quoted"; drop', 0.5)]


def test_builders_compile_to_sql(comments, votes):
    con = comments
    kw = sqlml.keyword_lf("kw", on="comments", column="text", keywords=["HTTP", "subscribe"], label="spam",
                          classes=["ham", "spam"])
    assert "contains(lower" in kw.expression
    con.register(kw)
    con.register(sqlml.regex_lf("rx", on="comments", column="text", pattern=r"\bsong\b", label="ham"))
    con.register(sqlml.threshold_lf("short", on="comments", column="id", op=">=", value=9, label=0, otherwise=1))
    con.sql("CREATE TABLE known AS SELECT * FROM (VALUES ('nice voice', 'ham'), ('lol', 'ham')) AS k(t, lbl)")
    con.register(sqlml.lookup_lf("known_text", on="comments", column="text", table="known", key="t", label_column="lbl"))
    con.sql("APPLY LABELING FUNCTIONS ON comments KEY id")
    got = votes(con)
    assert {v[0] for v in got if v[1] == "kw"} == {1, 3, 5, 7, 9}
    assert {v[0] for v in got if v[1] == "rx"} == {2, 4, 9}
    assert {(v[0], v[2]) for v in got if v[1] == "short"} == {(k, "ham" if k >= 9 else "spam") for k in range(1, 11)}
    assert {(v[0], v[2]) for v in got if v[1] == "known_text"} == {(6, "ham"), (10, "ham")}


def test_builder_rejects_bad_values():
    with pytest.raises(InvalidOptionError):
        sqlml.threshold_lf("t", on="x", column="c", op="~", value=1, label="a")
    with pytest.raises(InvalidOptionError):
        sqlml.keyword_lf("k", on="x", column="c", keywords=[], label="a")
