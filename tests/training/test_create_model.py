"""CREATE MODEL end to end: train, predict, evaluate, versions, drop, import weights."""

import json

import pytest
import torch

import sqlml
from sqlml.errors import ObjectExistsError, ServingError, UnknownObjectError

TRAIN = "SELECT a, b, color, pair, label FROM train"


def create(con, name="delay", options="epochs := 4, lr := 0.02", query=TRAIN, replace=False):
    verb = "CREATE OR REPLACE MODEL" if replace else "CREATE MODEL"
    return con.sql(f"{verb} {name} WITH ({options}) AS {query}").fetchall()


def test_train_predict_evaluate(flights_like):
    con = flights_like
    (summary,) = create(con)
    assert summary[:5] == ("delay", 1, "mlp", "classification", "trained")
    assert summary[5] == 4 and summary[6] == 5000
    predicted = con.sql("SELECT ml_predict('delay', a, b, color, pair) AS p, label FROM train").fetchall()
    accuracy = sum(p == y for p, y in predicted) / len(predicted)
    assert accuracy > 0.9  # the rule is learnable: a + b + 0.5 * (color = 'red') > 1.2
    assert {p for p, _ in predicted} == {"late", "on_time"}
    probs = con.sql("SELECT ml_predict_proba('delay', a, b, color, pair) FROM train LIMIT 50").fetchall()
    assert all(len(p) == 2 and abs(sum(p) - 1) < 1e-5 for (p,) in probs)
    (row,) = con.sql("SELECT * FROM ml_evaluate('delay', 'SELECT * FROM train')").fetchall()
    model, version, rows, skipped, acc, f1, log_loss, rmse, mae, r2 = row
    assert (model, version, rows, skipped) == ("delay", 1, 5000, 0)
    assert acc == pytest.approx(accuracy) and 0 < f1 <= 1 and log_loss > 0
    assert rmse is None and mae is None and r2 is None


def test_prediction_agrees_with_proba_and_classes(flights_like):
    con = flights_like
    create(con)
    assert con.sql("SELECT ml_model_classes('delay')").fetchall() == [(["late", "on_time"],)]
    rows = con.sql(
        "SELECT ml_predict('delay', a, b, color, pair), ml_predict_proba('delay', a, b, color, pair) FROM train LIMIT 200"
    ).fetchall()
    for name, probs in rows:
        assert name == ["late", "on_time"][max(range(2), key=lambda k: probs[k])]


def test_null_and_nan_features_predict_null(flights_like):
    con = flights_like
    create(con)
    rows = con.sql(
        "SELECT ml_predict('delay', x, b, color, pair) FROM (SELECT CASE WHEN id % 3 = 0 THEN NULL "
        "WHEN id % 3 = 1 THEN 'nan'::DOUBLE ELSE a END AS x, * FROM train LIMIT 9) ORDER BY id"
    ).fetchall()
    assert [r[0] is None for r in rows] == [True, True, False] * 3


def test_runs_table_has_every_epoch(flights_like):
    con = flights_like
    create(con, options="epochs := 3, validation_split := 0.2")
    rows = con.sql(
        "SELECT epoch, version, strategy, train_loss, val_loss, json_extract(metrics, '$.val_accuracy')::DOUBLE, rows "
        "FROM sqlml.training_runs WHERE model = 'delay' ORDER BY epoch"
    ).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]
    assert all(r[1] == 1 and r[2] == "single" and r[3] > 0 and r[4] > 0 and 0 < r[5] <= 1 for r in rows)
    assert 3600 < rows[0][6] < 4400  # about 80% of 5,000 rows train


def test_versions_increment_and_pin(flights_like):
    con = flights_like
    create(con, options="epochs := 1")
    with pytest.raises(ObjectExistsError, match="already exists"):
        create(con, options="epochs := 1")
    create(con, options="epochs := 2, seed := 1", replace=True)
    rows = con.sql("SELECT name, version, latest FROM ml_models() ORDER BY version").fetchall()
    assert rows == [("delay", 1, False), ("delay", 2, True)]
    v1 = con.sql("SELECT ml_predict_proba('delay@1', a, b, color, pair) FROM train LIMIT 20").fetchall()
    v2 = con.sql("SELECT ml_predict_proba('delay', a, b, color, pair) FROM train LIMIT 20").fetchall()
    assert v1 != v2
    assert con.sql("CREATE MODEL IF NOT EXISTS delay WITH (epochs := 1) AS " + TRAIN) is None
    assert len(con.sql("SELECT * FROM ml_models()").fetchall()) == 2


def test_drop_model_and_versions(flights_like):
    con = flights_like
    create(con, options="epochs := 1")
    create(con, options="epochs := 1", replace=True)
    con.sql("DROP MODEL delay VERSION 2")
    assert con.sql("SELECT version FROM ml_models()").fetchall() == [(1,)]
    assert con.sql("SELECT ml_predict('delay', a, b, color, pair) FROM train LIMIT 1").fetchall()[0][0] in ("late", "on_time")
    with pytest.raises(UnknownObjectError, match="Did you mean 'delay'"):
        con.sql("SELECT ml_predict('delai', a, b, color, pair) FROM train").fetchall()
    con.sql("DROP MODEL delay")
    assert con.sql("SELECT * FROM ml_models()").fetchall() == []
    assert con.sql("SELECT count(*) FROM ml_catalog(kind := 'model')").fetchall() == [(0,)]
    with pytest.raises(UnknownObjectError):
        con.sql("DROP MODEL delay")
    con.sql("DROP MODEL IF EXISTS delay")
    create(con, options="epochs := 1")  # numbers are never reused, even after a drop
    assert con.sql("SELECT version FROM ml_models()").fetchall() == [(3,)]


def test_model_in_catalog(flights_like):
    con = flights_like
    create(con, options="epochs := 1")
    (props,) = con.sql("SELECT properties FROM ml_catalog(kind := 'model')").fetchall()[0]
    assert json.loads(props)["latest_version"] == 1


def test_regression_predict_value(con):
    con.sql("CREATE TABLE r AS SELECT x, 3 * x + 100 AS y FROM (SELECT (i % 200) / 20.0 AS x FROM range(4000) t(i))")
    (summary,) = con.sql(
        "CREATE MODEL lin WITH (architecture := 'logistic', label := 'y', epochs := 30, lr := 0.05) AS SELECT x, y FROM r"
    ).fetchall()
    assert summary[3] == "regression"
    values = con.sql("SELECT ml_predict_value('lin', x), y FROM r LIMIT 100").fetchall()
    assert max(abs(p - y) for p, y in values) < 0.5  # a straight line, learnt in the label's units
    text = con.sql("SELECT ml_predict('lin', 2.0)").fetchall()[0][0]
    assert abs(float(text) - 106) < 0.5
    (row,) = con.sql("SELECT rmse, mae, r2, accuracy FROM ml_evaluate('lin', 'r', label := 'y')").fetchall()
    assert row[0] < 0.5 and row[1] < 0.5 and row[2] > 0.99 and row[3] is None
    with pytest.raises(ServingError, match="regression model"):
        con.sql("SELECT ml_predict_proba('lin', x) FROM r").fetchall()


def test_import_pretrained_weights(con, tmp_path):
    torch.manual_seed(0)

    def tiny_cnn(input_shape, n_outputs, options):
        return torch.nn.Sequential(
            torch.nn.Conv2d(input_shape[0], 4, 3),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, n_outputs),
        )

    sqlml.register_architecture("tiny_cnn_import", tiny_cnn)
    reference = tiny_cnn((3, 6, 6), 2, {})
    path = tmp_path / "tiny.pt"
    torch.save(reference.state_dict(), path)
    con.sql(
        f"CREATE MODEL faces WITH (architecture := 'tiny_cnn_import', weights := '{path}', "
        "input_shape := [3, 6, 6], classes := ['no', 'yes'], features := ['img'])"
    )
    (row,) = con.sql("SELECT status, input_shape, classes, features FROM ml_models()").fetchall()
    assert row == ("imported", [3, 6, 6], ["no", "yes"], ["img"])
    image = torch.rand(3 * 6 * 6)
    con.sql("CREATE TABLE imgs AS SELECT ?::FLOAT[108] AS img", [image.tolist()])
    (probs,) = con.sql("SELECT ml_predict_proba('faces', img) FROM imgs").fetchall()[0]
    expected = torch.softmax(reference(image.reshape(1, 3, 6, 6)), dim=1)[0]
    assert torch.allclose(torch.tensor(probs), expected, atol=1e-6)
    blob = con.sql("SELECT weights FROM sqlml.models WHERE name = 'faces'").fetchall()[0][0]
    import io

    stored = torch.load(io.BytesIO(blob), weights_only=True)
    assert all(torch.equal(stored[k], v) for k, v in reference.state_dict().items())
    # weights that do not fit the architecture are refused, nothing is stored
    torch.save({"bogus": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(ServingError, match="do not fit"):
        con.sql(
            f"CREATE MODEL bad WITH (architecture := 'tiny_cnn_import', weights := '{tmp_path / 'bad.pt'}', "
            "input_shape := [3, 6, 6], n_outputs := 2)"
        )
    assert con.sql("SELECT count(*) FROM sqlml.models WHERE name = 'bad'").fetchall()[0] == (0,)


def test_hostile_model_and_column_names(con):
    con.sql(
        'CREATE TABLE "odd table" AS SELECT i % 7 AS "select", (i % 2 = 0) AS "it\'s ""label""" FROM range(400) t(i)'
    )
    con.sql(
        'CREATE MODEL "my ""model""; drop" WITH (label := \'it\'\'s "label"\', epochs := 2) '
        'AS SELECT "select", "it\'s ""label""" FROM "odd table"'
    )
    (name, classes) = con.sql("SELECT name, classes FROM ml_models()").fetchall()[0]
    assert name == 'my "model"; drop' and classes == ["false", "true"]
    value = con.sql('SELECT ml_predict(?, "select") FROM "odd table" LIMIT 1', [name]).fetchall()[0][0]
    assert value in ("false", "true")


def test_model_name_per_row(flights_like):
    con = flights_like
    create(con, name="m1", options="epochs := 1, seed := 1")
    create(con, name="m2", options="epochs := 1, seed := 2")
    rows = con.sql(
        "SELECT id, CASE id % 3 WHEN 0 THEN 'm1' WHEN 1 THEN 'm2' END AS model, "
        "ml_predict_proba(model, a, b, color, pair) AS p FROM train WHERE id < 60 ORDER BY id"
    ).fetchall()
    one = dict(con.sql("SELECT id, ml_predict_proba('m1', a, b, color, pair) FROM train WHERE id < 60").fetchall())
    two = dict(con.sql("SELECT id, ml_predict_proba('m2', a, b, color, pair) FROM train WHERE id < 60").fetchall())
    for row_id, model, p in rows:
        expected = {"m1": one, "m2": two}.get(model)
        assert (p is None) if expected is None else p == pytest.approx(expected[row_id])
