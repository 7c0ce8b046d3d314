"""Odd and hostile input: empty tables, NULL-only columns, CSV type drift, NaN/inf, wide tables, odd names."""

import pytest

from sqlml.errors import DataError, ValidationError
from sqlml.validation import checks
from tests.validation.conftest import anomalies


def test_empty_training_table_gives_a_types_only_schema(con):
    con.sql("CREATE TABLE empty (a INTEGER, b VARCHAR)")
    rows = con.sql("CREATE DATA SCHEMA e FROM empty").fetchall()
    assert [r[0] for r in rows] == ["a", "b"] and all("no rows" in r[-1] for r in rows)
    assert anomalies(con, "empty", "e") == [(None, "DATASET_LOW_NUM_EXAMPLES")]
    assert anomalies(con, "SELECT 5 AS a, 'x' AS b", "e") == []


def test_all_null_columns_constrain_nothing(con):
    con.sql("CREATE TABLE t AS SELECT range AS id, NULL::DOUBLE AS nothing, NULL AS untyped FROM range(30)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    notes = dict(con.sql("SELECT column_name, notes FROM ml_schema('s')").fetchall())
    assert "always NULL" in notes["nothing"]
    assert anomalies(con, "SELECT range AS id, random() AS nothing, NULL AS untyped FROM range(30)", "s") == []
    assert anomalies(con, "SELECT range AS id FROM range(30)", "s") == []  # optional columns may go


def test_mixed_types_in_a_csv_batch(con, tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("id,reading\n" + "".join(f"{i},{i % 13}\n" for i in range(200)))
    bad.write_text("id,reading\n" + "".join(f"{i},{'N/A' if i == 17 else i % 13}\n" for i in range(200)))
    con.sql(f"CREATE DATA SCHEMA csv FROM '{good}'")
    rel = con.sql(f"SELECT column_name, anomaly_type, examples FROM ml_validate('{bad}', 'csv')")
    assert rel.fetchall() == [("reading", "UNEXPECTED_DATA_TYPE", ["N/A (1)"])]


def test_nan_and_inf_in_training_data_are_allowed_later(con):
    con.sql("CREATE TABLE t AS SELECT CASE WHEN range = 3 THEN 'nan'::DOUBLE WHEN range = 4 THEN 'inf'::DOUBLE ELSE range / 7 END AS x FROM range(200)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    allow = con.sql("SELECT allow_nan, allow_inf, min_value, max_value FROM ml_schema('s')").fetchall()[0]
    assert allow[:2] == (True, True) and allow[2] == 0 and allow[3] < 100
    stats = con.sql("SELECT mean, nan, inf FROM ml_statistics('t')").fetchall()[0]
    assert stats[1:] == (1, 1) and 14 < stats[0] < 15
    assert anomalies(con, "t", "s") == []


def test_very_wide_tables(con):
    cols = "i AS id, " + ", ".join(f"(i % 30) * {k} AS c{k}" for k in range(159)) + ", " + ", ".join(f"'v' || (i % 3) AS s{k}" for k in range(40))
    con.sql(f"CREATE TABLE wide AS SELECT {cols} FROM range(60) t(i)")
    con.sql("CREATE DATA SCHEMA w FROM wide")
    assert con.sql("SELECT count(*) FROM ml_schema('w')").fetchall() == [(200,)]
    assert anomalies(con, "wide", "w") == []
    found = anomalies(con, "SELECT * REPLACE ('zz' AS s39, c158 * 1000 + 1 AS c158) FROM wide UNION ALL SELECT * FROM wide WHERE id = 0", "w")
    assert sorted(found) == [("c158", "INT_TYPE_BIG_INT"), ("id", "UNIQUENESS_VIOLATED"), ("s39", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")]


NAMES = ['my "odd" table', "select", "spaces in name", "naïve ünïcode", "semi;colon", "it's"]


@pytest.mark.parametrize("name", NAMES)
def test_hostile_table_column_and_schema_names(con, name):
    q = '"' + name.replace('"', '""') + '"'
    con.sql(f"CREATE TABLE {q} AS SELECT range AS {q}, ['a', 'b'][range % 2 + 1] AS \"from\" FROM range(40)")
    con.sql(f"CREATE DATA SCHEMA {q} FROM {q}")
    rows = con.execute("SELECT * FROM ml_validate(?, ?)", [q, name]).fetchall()
    assert rows == []
    bad = f"SELECT {q}, 'c' AS \"from\" FROM {q}"
    rows = con.execute("SELECT column_name, anomaly_type FROM ml_validate(?, ?)", [bad, name]).fetchall()
    assert rows == [("from", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")]
    assert con.execute("SELECT column_name FROM ml_schema(?)", [name]).fetchall() == [(name,), ("from",)]


def test_injection_through_function_arguments_goes_nowhere(con):
    con.sql("CREATE TABLE t AS SELECT range AS x FROM range(10)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    with pytest.raises(DataError):
        con.sql("SELECT * FROM ml_validate('t; DROP TABLE t', 's')").fetchall()
    with pytest.raises(DataError):
        con.sql("SELECT * FROM ml_statistics('t\"; DROP TABLE t; --')").fetchall()
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(10,)]


def test_domain_values_with_quotes_are_parameters_not_sql(con):
    con.sql("CREATE TABLE t AS SELECT ['O''Brien', 'x'', ''y', '--'][range % 3 + 1] AS who FROM range(60)")
    con.sql("CREATE DATA SCHEMA s FROM t")
    assert anomalies(con, "t", "s") == []
    assert anomalies(con, "SELECT 'O''Neil' AS who FROM range(60)", "s") == [("who", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")]


def test_check_expressions_must_be_one_expression():
    with pytest.raises(ValidationError, match="one SQL expression"):
        checks.expression_guard("x > 1; DROP TABLE t")
    with pytest.raises(ValidationError, match="unbalanced"):
        checks.expression_guard("x > 1) FROM t --")
    assert checks.expression_guard("  f(x, (y)) > 1 ") == "f(x, (y)) > 1"


def test_nan_in_parquet_files_is_counted(con, tmp_path):
    """DuckDB folds isnan() to false from Parquet statistics (which ignore NaN); the scan must not."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = np.arange(1000, dtype=float)
    values[::100] = np.nan
    path = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"x": pa.array(values)}), path)
    (nan, count, mean) = con.execute("SELECT nan, count, mean FROM ml_statistics(?, store := false)", [str(path)]).fetchall()[0]
    assert (nan, count) == (10, 1000) and mean == np.nanmean(values)
    con.sql("CREATE DATA SCHEMA s FROM (SELECT range::DOUBLE AS x FROM range(1000))")
    assert anomalies(con, str(path), "s") == [("x", "FLOAT_TYPE_HAS_NAN")]
    assert con.sql("SELECT current_setting('disabled_optimizers')").fetchall() == [("",)]
