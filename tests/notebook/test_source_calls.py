"""Functions that read a table or query see what the caller's connection sees."""

# DataFrames below are read by their names from SQL, which pyflakes cannot see.
# ruff: noqa: F841

import pandas as pd
import pytest

from sqlml.udf import FUNCTIONS, load_builtin


@pytest.fixture
def frames():
    data = pd.DataFrame({"x": [float(i % 10) for i in range(300)], "label": ["a" if i % 10 < 5 else "b" for i in range(300)]})
    return data


def test_statistics_of_a_registered_frame_and_a_local_one(con, frames):
    con.register("dfv", frames)
    assert con.sql("SELECT column_name, row_count FROM ml_statistics('dfv', store := false)").fetchall() == [("x", 300), ("label", 300)]
    local = frames.head(7)
    assert con.sql("SELECT max(row_count) FROM ml_statistics('SELECT * FROM local', store := false)").fetchall() == [(7,)]


def test_validate_the_next_frame_against_a_schema_inferred_from_a_frame(con, frames):
    con.sql("CREATE DATA SCHEMA s FROM frames")
    later = frames.rename(columns={"label": "class"})
    found = con.sql("SELECT column_name, anomaly_type FROM ml_validate('later', 's') ORDER BY 1").fetchall()
    assert ("label", "SCHEMA_MISSING_COLUMN") in found and ("class", "SCHEMA_NEW_COLUMN") in found
    assert con.sql("SELECT count(*) FROM ml_validate('frames', 's')").fetchall() == [(0,)]
    runs = con.sql("SELECT source, errors FROM sqlml.validation_runs ORDER BY run_id").fetchall()
    assert runs[0][0] == "later" and runs[0][1] >= 1 and runs[1] == ("frames", 0)
    con.sql("SELECT * FROM ml_validate('frames', 's', record := false)").fetchall()
    assert con.sql("SELECT count(*) FROM sqlml.validation_runs").fetchall() == [(2,)]


def test_evaluate_and_drift_read_frames(con, frames):
    con.sql("CREATE MODEL m WITH (epochs := 1) AS SELECT x, label FROM frames")
    rows = con.sql("SELECT rows FROM ml_evaluate('m', 'SELECT * FROM frames WHERE x < 5')").fetchall()
    assert rows == [(150,)]
    shifted = frames.assign(x=frames.x + 50)
    drift = con.sql("SELECT bool_or(is_anomaly) FROM ml_drift('shifted', 'frames') WHERE column_name = 'x'").fetchall()
    assert drift == [(True,)]


def test_inside_an_open_transaction_and_on_temporary_tables(con):
    con.begin()
    con.sql("CREATE TABLE fresh AS SELECT range AS v FROM range(12)")
    con.sql("CREATE TEMP TABLE scratch AS SELECT range AS v FROM range(5)")
    assert con.sql("SELECT row_count FROM ml_statistics('fresh')").fetchall() == [(12,)]
    assert con.sql("SELECT row_count FROM ml_statistics('scratch', store := false)").fetchall() == [(5,)]
    con.rollback()  # the statistics stored in the transaction go with it
    assert con.sql("SELECT count(*) FROM sqlml.statistics WHERE dataset = 'fresh'").fetchall() == [(0,)]


def test_calls_that_are_not_constant_still_run_inside_duckdb(con):
    con.sql("CREATE TABLE t1 AS SELECT 1 AS v")
    rows = con.sql("SELECT s.row_count FROM (VALUES ('t1')) AS n(name), LATERAL ml_statistics(n.name, store := false) AS s").fetchall()
    assert rows == [(1,)]


def test_every_function_that_reads_a_table_or_query_runs_first():
    load_builtin()
    reading = {name for name, f in FUNCTIONS.items() if f.runs_first}
    assert {"ml_statistics", "ml_validate", "ml_drift", "ml_evaluate", "ml_memory_estimate", "ml_video_inference", "ml_occlusion_map"} <= reading
    for name in reading:
        function = FUNCTIONS[name]
        assert set(function.sources) <= set(function.positional) | set(function.named), name
