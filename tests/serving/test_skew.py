"""Training/serving skew on the endpoint's log, with ml_validate in the serving environment."""

from __future__ import annotations

import json
import urllib.request

import pytest

import sqlml
from sqlml.serving.server import Server, ServerConfig
from tests.trained import TRAIN_ROWS, train_model


@pytest.fixture
def trained(db_path):
    """A database file with table train and model delay (servers log beside a file)."""
    con = sqlml.connect(db_path)
    con.sql(TRAIN_ROWS)
    train_model(con)
    yield con
    con.close()


def post(url, inputs):
    request = urllib.request.Request(url + "/predict", data=json.dumps({"inputs": inputs}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def serve_and_log(con, rows):
    server = Server(None, "delay", config=ServerConfig(port=0), connection=con).start()
    try:
        for start in range(0, len(rows), 50):
            post(server.url, rows[start : start + 50])
    finally:
        server.stop()


def anomalies(con):
    return con.sql(
        "SELECT column_name, anomaly_type, severity FROM "
        "ml_validate(ml_serving_log_query('delay'), 'delay_features', environment := 'serving')"
    ).fetchall()


def test_the_log_reads_back_as_typed_features(trained):
    con = trained
    rows = [{"a": a, "b": b, "color": c} for a, b, c in con.sql("SELECT a, b, color FROM train LIMIT 20").fetchall()]
    serve_and_log(con, rows)
    query = con.sql("SELECT ml_serving_log_query('delay')").fetchall()[0][0]
    logged = con.sql(query).fetchall()
    assert sorted(logged) == sorted((r["a"], r["b"], r["color"]) for r in rows)
    assert [d[0] for d in con.sql(query).description] == ["a", "b", "color"]


def test_skew_is_reported_on_the_skewed_column_only(trained):
    pytest.importorskip("sqlml.validation.api", reason="the data validation area is not in this build")
    con = trained
    con.sql("CREATE DATA SCHEMA delay_features FROM (SELECT a, b, color FROM train)")
    clean = [{"a": a, "b": b, "color": c} for a, b, c in con.sql("SELECT a, b, color FROM train USING SAMPLE 300 ROWS (reservoir, 3)").fetchall()]
    serve_and_log(con, clean)
    assert not [a for a in anomalies(con) if a[2] == "error"]
    # a client starts sending b in percent: the same feature on another scale
    serve_and_log(con, [{**row, "b": row["b"] * 100} for row in clean])
    found = anomalies(con)
    assert "b" in {a[0] for a in found}
    assert not {a[0] for a in found} & {"a", "color"}
