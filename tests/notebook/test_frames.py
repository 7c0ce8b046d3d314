"""DataFrames and Arrow objects in the caller's scope, through sqlml.connect as through duckdb.connect."""

# DataFrames below are read by their names from SQL, which pyflakes cannot see.
# ruff: noqa: F841

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import sqlml

module_frame = pd.DataFrame({"a": [1, 2, 3]})


def test_local_pandas_polars_and_arrow_objects(con):
    pandas_df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    polars_df = pl.DataFrame({"a": [1.5, 2.5]})
    arrow_table = pa.table({"n": [5, 6, 7, 8]})
    assert con.sql("SELECT count(*), max(b) FROM pandas_df").fetchall() == [(3, "z")]
    assert con.sql("SELECT sum(a) FROM polars_df").fetchall() == [(4.0,)]
    assert con.execute("SELECT count(*) FROM arrow_table").fetchall() == [(4,)]
    assert con.sql("SELECT count(*) FROM module_frame").fetchall() == [(3,)]  # globals too
    out = con.sql("SELECT a * 2 AS doubled FROM pandas_df ORDER BY a").df()  # DataFrame in, DataFrame out
    assert list(out["doubled"]) == [2, 4, 6]


def test_cursors_and_the_connection_passthrough(con):
    frame = pd.DataFrame({"a": [1, 2]})
    cursor = con.cursor()
    assert cursor.sql("SELECT count(*) FROM frame").fetchall() == [(2,)]
    assert con.query("SELECT max(a) FROM frame").fetchall() == [(2,)]


def _helper(con, sql):
    return con.sql(sql).fetchall()


def test_the_frame_that_called_sqlml_as_duckdb_sees_it():
    """Only the caller's frame: a DataFrame two levels up is not found, with duckdb or sqlml alike."""
    outer_only = pd.DataFrame({"a": [1]})
    raw, con = duckdb.connect(), sqlml.connect()
    for connection in (raw, con):
        with pytest.raises(Exception, match="outer_only"):
            _helper(connection, "SELECT * FROM outer_only")


def test_a_relation_outlives_the_frame_that_made_it(con):
    def make():
        local = pd.DataFrame({"x": [1, 2, 5]})
        return con.sql("SELECT sum(x) AS s FROM local")

    assert make().fetchall() == [(8,)]


def test_sqlml_names_never_shadow_the_callers(con):
    """python_scan_all_frames would read sqlml's own locals (``text``, ``statement``) first; sqlml does not."""
    text = pd.DataFrame({"v": [1, 2, 3, 4]})
    statement = pa.table({"v": [9]})
    assert con.sql("SELECT count(*) FROM text").fetchall() == [(4,)]
    assert con.sql("SELECT count(*) FROM text; SELECT max(v) FROM statement").fetchall() == [(9,)]


def test_a_table_wins_over_a_frame_of_the_same_name(con):
    con.sql("CREATE TABLE shadow AS SELECT 42 AS v")
    shadow = pd.DataFrame({"v": [1]})
    assert con.sql("SELECT v FROM shadow").fetchall() == [(42,)]
    assert con.sql("SELECT * FROM ml_statistics('shadow', store := false)").fetchall()[0][3] == 1


def test_sqlml_statements_read_local_frames_and_leave_no_view_behind(con):
    train = pd.DataFrame({"x": [float(i % 10) for i in range(200)], "label": ["a" if i % 10 < 5 else "b" for i in range(200)]})
    con.sql("CREATE MODEL m WITH (epochs := 1) AS SELECT x, label FROM train")
    con.sql("CREATE DATA SCHEMA s FROM train")
    assert con.sql("SELECT name FROM ml_models()").fetchall() == [("m",)]
    assert con.sql("SELECT count(*) FROM ml_schema('s')").fetchall() == [(2,)]
    views = con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views == []


def test_connecting_imports_no_plotting_or_dataframe_library(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys, json, sqlml; con = sqlml.connect(); con.sql('SELECT 1').fetchall(); "
        "print(json.dumps([m for m in ('matplotlib', 'pandas', 'polars', 'tqdm', 'IPython') if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(root), "PATH": ""})
    assert json.loads(done.stdout) == [], done.stderr
