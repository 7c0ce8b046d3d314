import duckdb
import pytest

import sqlml
from sqlml.relation import Relation


def test_sql_returns_relation_for_queries_and_none_for_statements(con):
    assert con.sql("CREATE TABLE t AS SELECT range AS id FROM range(3)") is None
    assert con.sql("INSERT INTO t VALUES (10)") is None
    relation = con.sql("SELECT count(*) AS n FROM t")
    assert isinstance(relation, Relation)
    assert relation.columns == ["n"]
    assert relation.fetchall() == [(4,)]
    assert con.sql("FROM t ORDER BY id LIMIT 1").fetchall() == [(0,)]
    assert con.sql("INSERT INTO t VALUES (11) RETURNING id").fetchall() == [(11,)]


def test_relations_chain_and_stay_wrapped(con):
    con.sql("CREATE TABLE t AS SELECT range AS id FROM range(10)")
    chained = con.sql("SELECT * FROM t").filter("id > 6").order("id")
    assert isinstance(chained, Relation)
    assert chained.fetchall() == [(7,), (8,), (9,)]
    assert isinstance(chained.relation, duckdb.DuckDBPyRelation)


def test_params_and_execute_fetch(con):
    assert con.sql("SELECT ? + 1", params=[41]).fetchall() == [(42,)]
    assert con.execute("SELECT ?::VARCHAR || 'b'", ["a"]).fetchall() == [("ab",)]
    con.execute("CREATE TABLE t AS SELECT range AS id FROM range(5)")
    con.execute("SELECT id FROM t ORDER BY id")
    assert con.fetchone() == (0,)
    assert con.fetchmany(2) == [(1,), (2,)]


def test_several_statements_in_one_string(con):
    result = con.sql("CREATE TABLE a(x INT); INSERT INTO a VALUES (1), (2); SELECT sum(x) FROM a")
    assert result.fetchall() == [(3,)]
    assert con.sql("CREATE TABLE b(x INT); INSERT INTO b VALUES (5);") is None
    assert con.sql("SELECT * FROM b").fetchall() == [(5,)]


def test_cursor_shares_session_and_macros(con):
    cur = con.cursor()
    assert cur.session is con.session
    assert cur.sql("SELECT ml_catalog_version()").fetchall()[0][0] >= 1
    assert cur.sql("SELECT count(*) FROM ml_catalog()").fetchall() == [(0,)]


def test_context_manager_closes(db_path):
    with sqlml.connect(db_path) as con:
        con.sql("CREATE TABLE t AS SELECT 1 AS x")
    with pytest.raises(duckdb.ConnectionException):
        con.duckdb.execute("SELECT 1")
    with sqlml.connect(db_path) as again:
        assert again.sql("SELECT x FROM t").fetchall() == [(1,)]


def test_register_needs_the_protocol_or_a_view_name(con):
    import pyarrow as pa

    with pytest.raises(sqlml.SqlmlError, match="cannot register int"):
        con.register(3)
    con.register("numbers", pa.table({"n": [1, 2, 3]}))
    assert con.sql("SELECT sum(n) FROM numbers").fetchall() == [(6,)]

    seen = []

    class Plugin:
        def __sqlml_register__(self, connection):
            seen.append(connection)

    con.register(Plugin())
    assert seen == [con]


def test_duckdb_methods_pass_through(con):
    import pyarrow as pa

    relation = con.from_arrow(pa.table({"a": [1, 2]}))
    assert isinstance(relation, Relation)
    assert relation.aggregate("sum(a)").fetchall() == [(3,)]


def test_new_files_open_in_duckdb_1_5_format(db_path):
    with sqlml.connect(db_path) as con:
        con.sql("CREATE TABLE t AS SELECT 1 AS x")
    raw = duckdb.connect(db_path, read_only=True)
    try:
        rows = raw.execute("SELECT tags FROM duckdb_databases() WHERE database_name = 'test'").fetchall()
    finally:
        raw.close()
    assert rows and "v1.5.0" in str(rows[0][0])
