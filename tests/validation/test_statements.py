"""Statement syntax of data schemas that the other test modules do not cover."""



def test_source_may_be_a_bare_query_followed_by_options(con):
    con.sql("CREATE TABLE t AS SELECT range AS a, range % 3 AS b FROM range(1000)")
    con.sql(
        "CREATE DATA SCHEMA s FROM WITH x AS (SELECT * FROM t) SELECT a, b FROM x WHERE a < 500 "
        "WITH (key := 'a', max_domain_size := 2)"
    )
    rows = dict(con.sql("SELECT column_name, is_unique FROM ml_schema('s')").fetchall())
    assert rows == {"a": True, "b": False}
    assert con.sql("SELECT source FROM ml_schema_history('s')").fetchall()[0][0].startswith("WITH x AS")
