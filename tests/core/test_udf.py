import pytest

import sqlml
from sqlml import udf
from sqlml.errors import UnknownObjectError


@pytest.fixture
def extra_functions(monkeypatch):
    """Declare two test functions (as a udfs/ module would) for connections opened in the test."""
    registry = dict(udf.load_builtin())
    monkeypatch.setattr(udf, "FUNCTIONS", registry)
    monkeypatch.setattr(udf, "load_builtin", lambda: registry)

    @udf.table_function(
        "ml_test_rows",
        columns=[("i", "BIGINT"), ("label", "VARCHAR"), ("v", "FLOAT[]")],
        params=[("n", "BIGINT")],
        named=[("prefix", "VARCHAR", "row")],
    )
    def rows(session, n, prefix):
        if n < 0:
            raise UnknownObjectError("row source", "postive", ["positive", "zero"])
        return [(i, f"{prefix}{i}", [float(i), 0.5]) for i in range(n)]

    @udf.scalar_function("ml_test_double", returns="DOUBLE", params=["DOUBLE"], vectorized=True)
    def double(session, x):
        import pyarrow.compute as pc

        if pc.any(pc.less(x, 0)).as_py():
            raise ValueError("negative input")
        return pc.multiply(x, 2.0)

    yield


def test_python_table_function_with_named_parameters(extra_functions):
    with sqlml.connect() as con:
        rows = con.sql("SELECT * FROM ml_test_rows(3)").fetchall()
        assert rows == [(0, "row0", [0.0, 0.5]), (1, "row1", [1.0, 0.5]), (2, "row2", [2.0, 0.5])]
        assert con.sql("SELECT label FROM ml_test_rows(1, prefix := 'x')").fetchall() == [("x0",)]
        assert con.sql("SELECT count(*) FROM ml_test_rows(0)").fetchall() == [(0,)]
        con.sql("CREATE TABLE saved AS SELECT * FROM ml_test_rows(2)")
        assert con.sql("SELECT sum(i) FROM saved").fetchall() == [(1,)]


def test_errors_inside_udfs_come_back_typed(extra_functions):
    with sqlml.connect() as con:
        relation = con.sql("SELECT * FROM ml_test_rows(-1)")
        with pytest.raises(UnknownObjectError) as info:
            relation.fetchall()
        assert info.value.suggestions == ["positive"]
        with pytest.raises(sqlml.UdfError, match="ml_test_double: ValueError: negative input") as info:
            con.sql("SELECT ml_test_double(x) FROM (VALUES (1.0), (-1.0)) t(x)").fetchall()
        assert isinstance(info.value.__cause__, ValueError)
        assert con.sql("SELECT ml_test_double(21.0)").fetchall() == [(42.0,)]
        with pytest.raises(sqlml.UdfError):
            con.execute("SELECT ml_test_double(-3.0)")


def test_builtin_registry_is_printable():
    registry = udf.load_builtin()
    assert "ml_catalog" in registry
    assert "ml_catalog" in repr(registry)
    assert registry["ml_catalog"].is_table


def test_ml_catalog_lists_objects(con):
    from sqlml import catalog

    catalog.put_object(con.duckdb, "model", "m1", {"a": 1})
    catalog.put_object(con.duckdb, "data schema", "s1")
    rows = con.sql("SELECT kind, name, properties FROM ml_catalog() ORDER BY kind").fetchall()
    assert rows == [("data schema", "s1", "{}"), ("model", "m1", '{"a": 1}')]
    assert con.sql("SELECT name FROM ml_catalog(kind := 'model')").fetchall() == [("m1",)]
