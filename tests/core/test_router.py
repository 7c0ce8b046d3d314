import duckdb
import pytest

import sqlml
from sqlml.query import classify, router
from sqlml.query.parser import StatementParser
from sqlml.query.tokens import split_statements


def test_plain_sql_takes_the_fast_path(con, monkeypatch):
    calls = []
    monkeypatch.setattr(router, "split_statements", lambda text: calls.append(text) or [])
    assert con.sql("SELECT 1 AS one").fetchall() == [(1,)]
    con.sql("CREATE TABLE point(id INT, payload VARCHAR); INSERT INTO point VALUES (1, 'x')")
    assert con.sql("SELECT payload FROM point WHERE id = 1").fetchall() == [("x",)]
    assert calls == []  # never split, never parsed


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SELECT * FROM flights", False),
        ("SELECT model_year FROM planes", False),
        ("CREATE MODEL m AS SELECT 1", True),
        ("create or replace labeling function f on t as 1", True),
        ("SELECT ml_predict('m', x) FROM t", True),
        ("SELECT ML_PREDICT ('m', x) FROM t", True),
        ("SELECT html_escape(x) FROM t", False),
    ],
)
def test_fast_path_pattern(text, expected):
    assert classify.needs_front_end(text) is expected


def test_statement_routing_and_result(con, widget_statement):
    result = con.sql("CREATE WIDGET gadget WITH (size := 3, tags := ['a', 'b'])")
    assert result.fetchall() == [("gadget", "{'size': 3, 'tags': ['a', 'b']}")]
    assert con.sql("SELECT name FROM ml_catalog(kind := 'widget')").fetchall() == [("gadget",)]


def test_sqlml_and_plain_statements_mix_in_one_script(con, widget_statement):
    result = con.sql(
        """
        CREATE TABLE src AS SELECT range AS id FROM range(4);  -- plain
        CREATE WIDGET w1 AS SELECT * FROM src;                 -- sqlml
        INSERT INTO src VALUES (99);                           -- plain
        SELECT count(*) FROM src
        """
    )
    assert result.fetchall() == [(5,)]
    assert con.sql("SELECT built FROM w1").fetchall() == [(1,)]
    props = con.sql("SELECT properties->>'query' FROM sqlml.objects WHERE name = 'w1'").fetchall()
    assert props == [("SELECT * FROM src",)]


def test_execute_returns_sqlml_statement_rows(con, widget_statement):
    con.execute("CREATE WIDGET w2")
    assert con.fetchall() == [("w2", "{}")]
    assert con.fetchone() is None


def test_or_replace_and_existing_names(con, widget_statement):
    con.sql("CREATE WIDGET w")
    with pytest.raises(sqlml.ObjectExistsError, match="widget 'w' already exists"):
        con.sql("CREATE WIDGET w")
    con.sql("CREATE OR REPLACE WIDGET w WITH (v := 2)")
    assert con.sql("SELECT properties->>'$.options.v' FROM sqlml.objects").fetchall() == [("2",)]


def test_failed_statement_leaves_nothing_behind(con, widget_statement):
    con.sql("CREATE WIDGET keep")
    before = con.sql("SELECT kind, name, properties FROM sqlml.objects ORDER BY ALL").fetchall()
    with pytest.raises(sqlml.DataError, match="asked to fail"):
        con.sql("CREATE WIDGET broken WITH (fail := true)")
    with pytest.raises(sqlml.DataError):
        con.sql("CREATE OR REPLACE WIDGET keep WITH (fail := true)")
    after = con.sql("SELECT kind, name, properties FROM sqlml.objects ORDER BY ALL").fetchall()
    assert after == before
    tables = con.sql("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1").fetchall()
    assert tables == [("keep",)]


def test_statement_inside_a_user_transaction_joins_it(con, widget_statement):
    con.sql("BEGIN")
    con.sql("CREATE WIDGET inside")
    con.sql("ROLLBACK")
    assert con.sql("SELECT count(*) FROM sqlml.objects").fetchall() == [(0,)]


def test_syntax_error_reports_line_column_and_caret(con, widget_statement):
    script = "SELECT 1;\nCREATE WIDGET w\n  WITH (size := , x := 1)"
    with pytest.raises(sqlml.SqlmlSyntaxError) as info:
        con.sql(script)
    error = info.value
    assert (error.line, error.column) == (3, 17)
    assert "expected a value" in str(error)
    assert error.picture.splitlines() == ["  WITH (size := , x := 1)", "                ^"]


def test_syntax_error_at_end_of_statement(con, widget_statement):
    with pytest.raises(sqlml.SqlmlSyntaxError, match="expected a widget name, found the end"):
        con.sql("CREATE WIDGET")


@pytest.mark.parametrize("name", ['we"ird', "with space", "select", "ÄÖ", "a;b"])
def test_hostile_identifiers(con, widget_statement, name):
    quoted = '"' + name.replace('"', '""') + '"'
    con.sql(f"CREATE WIDGET {quoted} WITH (note := 'it''s; fine')")
    assert con.sql("SELECT name FROM ml_catalog()").fetchall() == [(name,)]
    assert con.sql(f"SELECT built FROM {quoted}").fetchall() == [(1,)]


def test_split_ignores_semicolons_in_strings_comments_and_dollar_quotes():
    text = "SELECT 'a;b'; -- x;y\nSELECT $$c;d$$ /* ; */; SELECT \"e;f\" FROM t"
    parts = [text[a:b].strip() for a, b in split_statements(text)]
    assert parts == ["SELECT 'a;b'", '-- x;y\nSELECT $$c;d$$ /* ; */', 'SELECT "e;f" FROM t']


def test_option_literals():
    p = StatementParser("(a := 1, b = -2.5e-1, c := 'x''y', d := [1, [2, 'z']], e := TRUE, f := NULL, g := adam, h := {'k': 1})")
    assert p.options() == {
        "a": 1,
        "b": -0.25,
        "c": "x'y",
        "d": [1, [2, "z"]],
        "e": True,
        "f": None,
        "g": "adam",
        "h": {"k": 1},
    }


def test_duplicate_option_is_an_error():
    with pytest.raises(sqlml.SqlmlSyntaxError, match="option 'a' given twice"):
        StatementParser("(a := 1, A := 2)").options()


def test_read_only_connection_refuses_sqlml_writes(db_path, widget_statement):
    sqlml.connect(db_path).close()
    with sqlml.connect(db_path, read_only=True) as ro:
        with pytest.raises(sqlml.ReadOnlyError, match="read-only"):
            ro.sql("CREATE WIDGET w")
        assert ro.sql("SELECT count(*) FROM ml_catalog()").fetchall() == [(0,)]


@pytest.mark.parametrize(
    "text, rows",
    [
        ("SELECT 1", True),
        ("  -- note\n/* c */ (SELECT 1) UNION ALL (SELECT 2)", True),
        ("with x as (select 1) select * from x", True),
        ("FROM t", True),
        ("INSERT INTO t VALUES (1)", False),
        ("INSERT INTO t VALUES (1) RETURNING *", True),
        ("CREATE TABLE t AS SELECT 1", False),
        ("SELECT 1; CREATE TABLE u(a INT)", False),
        ("CREATE TABLE u(a INT); SELECT 'x;y'", True),
        ("DESCRIBE t", True),
        ("SET threads = 2", False),
    ],
)
def test_returns_rows(text, rows):
    assert classify.returns_rows(text) is rows


def test_cached_plain_verdict_never_hides_a_statement_added_later(con, monkeypatch):
    from sqlml.query import statements

    from . import widgets

    text = "CREATE WIDGET late"
    with pytest.raises(duckdb.ParserException):  # no such statement yet: DuckDB's parser refuses it
        con.sql(text)
    assert classify.plain_verdict(text) == (False, {"CREATE", "WIDGET", "late"})  # cached as plain text
    # Same number of statements and the same last key as before, but a different set.
    keys = list(statements.STATEMENTS)
    middle, last = keys[len(keys) // 2], keys[-1]
    handler = statements.STATEMENTS[last]
    monkeypatch.delitem(statements.STATEMENTS, middle)
    monkeypatch.delitem(statements.STATEMENTS, last)
    monkeypatch.setitem(statements.STATEMENTS, "CREATE WIDGET", widgets.create_widget)
    monkeypatch.setitem(statements.STATEMENTS, last, handler)
    assert classify.plain_verdict(text) is None
    assert con.sql(text).fetchall() == [("late", "{}")]


def test_plain_verdict_cache_is_bounded(con):
    for i in range(classify.PLAIN_ENTRIES + 10):
        classify.plain_verdict(f"SELECT {i}")
        assert len(classify._table().plain) <= classify.PLAIN_ENTRIES
    long_text = "SELECT 1" + " " * classify.PLAIN_TEXT_LIMIT
    assert con.sql(long_text).fetchall() == [(1,)]
    assert long_text not in classify._table().plain


def test_relation_methods_forward_and_translate_errors(con):
    relation = con.sql("SELECT 1 AS a UNION ALL SELECT 2")
    assert "fetchall" in vars(sqlml.Relation)  # a class method, not built per call
    assert relation.filter("a > 1").fetchall() == [(2,)]
    assert relation.columns == ["a"]
    with pytest.raises(sqlml.SqlmlError):
        con.sql("SELECT ml_predict('no_such_model', 1)").fetchall()


def test_plain_text_finds_a_dataframe_bound_after_its_verdict_was_cached(con):
    import pyarrow as pa

    text = "SELECT count(*) FROM frame_table_late"
    with pytest.raises(duckdb.Error):
        con.sql(text)
    frame_table_late = pa.table({"a": [1, 2, 3]})  # noqa: F841 - found by DuckDB's replacement scan
    assert con.sql(text).fetchall() == [(3,)]
    assert con.execute(text).fetchall() == [(3,)]
