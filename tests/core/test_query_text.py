"""Query-text arguments are exactly one read-only query (``sqlutil.select_query``)."""

from __future__ import annotations

import duckdb
import pytest

from sqlml.errors import InvalidOptionError
from sqlml.sqlutil import relation_sql, select_query


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM t); DROP TABLE victim; SELECT (1",
        "SELECT 1; DROP TABLE victim",
        "DROP TABLE victim",
        "INSERT INTO victim VALUES (2)",
        "",
        "   ",
        "SELECT 1\x00",
    ],
)
def test_anything_but_one_query_is_refused_and_runs_nothing(text):
    duck = duckdb.connect()
    duck.execute("CREATE TABLE victim AS SELECT 1 AS a")
    with pytest.raises(InvalidOptionError) as info:
        select_query(text, argument="source", where="ml_validate")
    assert "source" in str(info.value) and info.value.where == "ml_validate"
    if text.lstrip().upper().startswith("SELECT"):  # query text: refused before it reaches DuckDB
        with pytest.raises(InvalidOptionError):
            duck.sql(f"SELECT count(*) FROM {relation_sql(text, argument='source')}")
    elif text.strip() and "\x00" not in text:  # anything else is a quoted table name, never SQL
        with pytest.raises(duckdb.CatalogException):
            duck.sql(f"SELECT count(*) FROM {relation_sql(text, argument='source')}")
    assert duck.sql("SELECT * FROM victim").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "text, rows",
    [
        ("SELECT a FROM victim", 1),
        ("select a from victim;", 1),
        ("FROM victim", 1),
        ("WITH x AS (SELECT 1 AS a) SELECT * FROM x UNION ALL SELECT 2", 2),
        ("VALUES (1), (2), (3)", 3),
        ("SELECT a FROM victim -- a trailing comment", 1),
    ],
)
def test_one_query_runs_as_a_subquery(text, rows):
    duck = duckdb.connect()
    duck.execute("CREATE TABLE victim AS SELECT 1 AS a")
    assert duck.sql(f"SELECT count(*) FROM {relation_sql(text)}").fetchall() == [(rows,)]
