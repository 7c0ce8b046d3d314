"""Environments (a label absent in serving is fine), training/serving skew, and the Python API."""

import duckdb
import pytest

from sqlml.errors import DataAnomalyError, InvalidOptionError
from sqlml.validation import api
from tests.validation.conftest import anomalies, details


@pytest.fixture
def model_data(con):
    con.sql(
        """CREATE TABLE training AS SELECT i AS id, (i % 23) * 1.0 AS feature, ['a', 'b', 'c'][i % 3 + 1] AS kind,
                  (i % 23) * 2.0 + (i % 3) AS label FROM range(3000) t(i)"""
    )
    con.sql("CREATE DATA SCHEMA model_input FROM training WITH (label := 'label')")
    return con


def test_label_may_be_absent_in_serving_but_not_in_training(model_data):
    serving = "SELECT * EXCLUDE (label) FROM training WHERE id < 500"
    assert anomalies(model_data, serving, "model_input", environment="serving") == []
    assert anomalies(model_data, serving, "model_input") == [("label", "SCHEMA_MISSING_COLUMN")]
    assert anomalies(model_data, serving, "model_input", environment="training") == [("label", "SCHEMA_MISSING_COLUMN")]
    envs = model_data.sql("SELECT environments FROM ml_schema('model_input') WHERE column_name = 'label'").fetchall()
    assert envs == [(["training"],)]


def test_serving_is_compared_with_the_training_statistics(model_data):
    shifted = "SELECT id, feature + 9 AS feature, 'a' AS kind FROM training WHERE id < 1500"
    rows = details(model_data, shifted, "model_input", environment="serving")
    skew = {(r["column_name"], r["anomaly_type"]) for r in rows if r["family"] == "skew"}
    assert ("feature", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") in skew
    assert ("kind", "COMPARATOR_L_INFTY_HIGH") in skew
    assert all("skew" in r["description"] for r in rows if r["family"] == "skew")
    clean = "SELECT * EXCLUDE (label) FROM training USING SAMPLE 40% (bernoulli, 3)"
    assert anomalies(model_data, clean, "model_input", environment="serving") == []


def test_serving_only_columns(model_data):
    model_data.sql("ALTER DATA SCHEMA model_input ACCEPT (SELECT *, 'r' || id AS request_id FROM training)")
    model_data.sql("ALTER DATA SCHEMA model_input SET COLUMN request_id (environments := ['serving'])")
    assert anomalies(model_data, "training", "model_input") == []
    log = "SELECT * EXCLUDE (label), 'r' || id AS request_id FROM training WHERE id < 300"
    assert anomalies(model_data, log, "model_input", environment="serving") == []


def test_checks_on_training_only_columns_are_skipped_in_serving(model_data):
    model_data.sql("ALTER DATA SCHEMA model_input ADD CHECK label_positive AS label >= 0")
    serving = "SELECT * EXCLUDE (label) FROM training WHERE id < 500"
    assert anomalies(model_data, serving, "model_input", environment="serving") == []
    with pytest.raises(InvalidOptionError):
        model_data.sql("SELECT * FROM ml_validate('training', 'model_input', environment := '')").fetchall()


def test_python_api_returns_the_same_anomalies_as_sql(model_data):
    source = "SELECT * REPLACE ('zz' AS kind) FROM training"
    found = api.validate(model_data, source, "model_input")
    assert [(a.column_name, a.anomaly_type, a.severity) for a in found] == [("kind", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "error")]
    assert found[0].is_error and found[0].schema_version == 1 and found[0].examples == ("zz (3,000)",)
    sql_rows = details(model_data, source, "model_input")
    assert [a.as_row() for a in found] == sql_rows


def test_assert_valid_raises_on_errors_only(model_data):
    with pytest.raises(DataAnomalyError) as caught:
        api.assert_valid(model_data, "SELECT * REPLACE ('zz' AS kind) FROM training", "model_input", action="CREATE MODEL m")
    error = caught.value
    assert error.schema == "model_input" and len(error.anomalies) == 1 and error.anomalies[0].column_name == "kind"
    assert str(error).startswith("CREATE MODEL m: ") and "ALTER DATA SCHEMA model_input ACCEPT" in str(error)
    warnings = api.assert_valid(model_data, "SELECT *, 1 AS extra FROM training", "model_input")
    assert [a.anomaly_type for a in warnings] == ["SCHEMA_NEW_COLUMN"]
    with pytest.raises(DataAnomalyError):
        api.assert_valid(model_data, "SELECT *, 1 AS extra FROM training", "model_input", severity="warning")


def test_api_on_a_raw_duckdb_connection_sees_its_own_transaction(model_data):
    duck = model_data.duckdb
    duck.execute("BEGIN")
    duck.execute("CREATE TABLE pending AS SELECT * REPLACE ('zz' AS kind) FROM training")
    found = api.validate(duck, "pending", "model_input")
    duck.execute("ROLLBACK")
    assert [a.anomaly_type for a in found] == ["ENUM_TYPE_UNEXPECTED_STRING_VALUES"]
    assert isinstance(duck, duckdb.DuckDBPyConnection)


def test_api_through_a_session_and_drift_measurements(model_data):
    found = api.validate(model_data.session, "training", "model_input")
    assert found == []
    measured = api.drift(model_data, "SELECT * FROM training WHERE id < 1000", "training")
    metrics = {(m.column_name, m.metric) for m in measured}
    assert ("feature", "jensen_shannon") in metrics and ("kind", "l_infinity") in metrics
    assert not any(m.is_anomaly for m in measured)
    rows = model_data.sql("SELECT column_name, metric, is_anomaly FROM ml_drift('SELECT * FROM training WHERE id < 1000', 'training')").fetchall()
    assert len(rows) == len(measured)


def test_create_and_load_schema_from_python(con):
    con.sql("CREATE TABLE t AS SELECT range % 10 AS x FROM range(40)")
    schema = api.create_schema(con, "py", "t", max_domain_size=5)
    assert schema.version == 1 and api.load_schema(con, "py").columns["x"].min_value == 0
    assert api.stored_statistics(con, "t").row_count == 40
