"""params= reach the queries and options of sqlml statements, or are refused saying how."""

import datetime
import decimal

import pytest

from sqlml.errors import ParameterError
from sqlml.query.params import bind, literal


def test_literals_by_type():
    assert literal("it's") == "'it''s'"
    assert literal(None) == "NULL" and literal(True) == "TRUE" and literal(3) == "3"
    assert literal(float("nan")) == "CAST('nan' AS DOUBLE)"
    assert literal(decimal.Decimal("1.25")) == "CAST('1.25' AS DECIMAL(38, 2))"
    assert literal(datetime.date(2013, 2, 1)) == "CAST('2013-02-01' AS DATE)"
    assert literal([1, "a"]) == "[1, 'a']"
    assert literal(b"\x00\xff") == "from_hex('00ff')"
    with pytest.raises(ParameterError, match="no SQL literal"):
        literal(object())


def test_placeholders_in_strings_and_comments_stay():
    text = "CREATE MODEL m AS SELECT '?' AS q, $1 AS a, ? AS b -- ?\n"
    assert bind(text, [1, 2], "CREATE MODEL") == "CREATE MODEL m AS SELECT '?' AS q, 1 AS a, 2 AS b -- ?\n"


def test_create_model_with_params_in_query_and_options(con):
    con.sql("CREATE TABLE t AS SELECT range AS n, (range % 7)::DOUBLE AS f, CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS label FROM range(300)")
    con.sql("CREATE MODEL m WITH (epochs := ?) AS SELECT f, label FROM t WHERE n > ? AND label <> $3", params=[2, 100, "z"])
    query, options = con.sql("SELECT query, options FROM sqlml.models WHERE name = 'm'").fetchall()[0]
    assert "n > 100" in query and "'z'" in query and '"epochs":2' in options.replace(" ", "")
    assert con.sql("SELECT rows FROM ml_evaluate('m', 't')").fetchall() == [(300,)]


def test_named_params_and_execute(con):
    con.sql("CREATE TABLE t AS SELECT range AS n FROM range(10)")
    con.execute("CREATE DATA SCHEMA s FROM (SELECT * FROM t WHERE n < $limit)", {"limit": 5})
    assert con.sql("SELECT source FROM ml_schema_history('s')").fetchall()[0][0].count("5") == 1


def test_refused_with_what_to_do(con):
    con.sql("CREATE TABLE t AS SELECT 1 AS a")
    with pytest.raises(ParameterError, match="one value per placeholder"):
        con.sql("CREATE DATA SCHEMA s FROM (SELECT * FROM t WHERE a > ? AND a < ?)", params=[1])
    with pytest.raises(ParameterError, match="no params were given"):
        con.sql("CREATE DATA SCHEMA s FROM (SELECT * FROM t WHERE a > ?)")
    with pytest.raises(ParameterError, match="con.register"):
        con.sql("CREATE DATA SCHEMA s FROM (SELECT * FROM t WHERE a > ?)", params=[[object()]])
    with pytest.raises(ParameterError, match="last statement"):
        con.sql("CREATE DATA SCHEMA s FROM (SELECT * FROM t WHERE a > ?); SELECT 1", params=[1])
    assert con.sql("SELECT a + ? FROM t", params=[1]).fetchall() == [(2,)]  # plain SQL: DuckDB binds them
