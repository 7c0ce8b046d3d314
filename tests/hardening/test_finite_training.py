"""Issue 15, row 3: no NaN model is ever called trained, and predictions are never NaN.

Non-finite training data is refused with the column, the count and a filter that works;
a loss that turns NaN stops training naming the epoch and batch, in both epoch loops
(``loop.fit``: single, data_parallel; ``ModelRun``: spill, pipeline, grids) and nothing
is registered; absurd learning rates are refused; predictions come back NULL, counted.
"""

from __future__ import annotations

import os

import pytest
import torch

import sqlml
from sqlml.errors import DataError, InvalidOptionError, TrainingError

from .blowup import blowup_at_row_20


def nothing_registered(con, name):
    assert con.sql(f"SELECT count(*) FROM sqlml.models WHERE name = '{name}'").fetchall() == [(0,)]
    assert con.sql(f"SELECT count(*) FROM sqlml.objects WHERE name = '{name}'").fetchall() == [(0,)]


@pytest.fixture
def data(con):
    con.sql(
        "CREATE TABLE d AS SELECT range AS t, (range % 7)::DOUBLE AS x, (range % 3)::DOUBLE AS y, "
        "CASE WHEN range % 2 = 0 THEN 'a' ELSE 'b' END AS label, (range % 5)::DOUBLE AS r FROM range(200)"
    )
    return con


@pytest.mark.parametrize(
    "select, column, what",
    [
        ("CASE WHEN t IN (3, 4) THEN 'inf'::DOUBLE ELSE x END AS x, y, label", "x", "2 NaN or infinite"),  # inf feature
        ("CASE WHEN t = 3 THEN '-inf'::DOUBLE ELSE x END AS x, y, label", "x", "1 NaN or infinite"),
        ("CASE WHEN t = 3 THEN 'nan'::DOUBLE ELSE x END AS x, y, label", "x", "1 NaN or infinite"),
        ("x, y, CASE WHEN t = 3 THEN 'inf'::DOUBLE ELSE r END AS label", "label", "1 NaN or infinite"),  # inf regression target
        ("[x, CASE WHEN t = 5 THEN 'nan'::FLOAT ELSE y END]::FLOAT[2] AS xy, label", "xy", "1 NaN or infinite"),
    ],
)
def test_non_finite_training_values_are_refused_with_a_filter_that_works(data, select, column, what):
    query = f"SELECT {select} FROM d"
    with pytest.raises(DataError, match=rf"column '{column}' has {what} value\(s\).*WHERE isfinite\({column}\)") as info:
        data.sql(f"CREATE MODEL m WITH (epochs := 1) AS {query}")
    assert info.value.column == column
    nothing_registered(data, "m")
    if column != "xy":  # the hint, applied, trains
        data.sql(f"CREATE MODEL m WITH (epochs := 1) AS SELECT * FROM ({query}) WHERE isfinite({column})")
        assert data.sql("SELECT status FROM sqlml.models WHERE name = 'm'").fetchall() == [("trained",)]


def test_huge_regression_label_is_a_data_error_not_an_overflow(data):
    with pytest.raises(DataError, match=r"label column 'label' has 1 value\(s\) beyond ±3.4e\+38"):
        data.sql("CREATE MODEL m WITH (epochs := 1) AS SELECT x, y, CASE WHEN t = 3 THEN 1e308 ELSE r END AS label FROM d")
    with pytest.raises(DataError, match=r"staged as FLOAT"):  # a feature beyond float32
        data.sql("CREATE MODEL m WITH (epochs := 1) AS SELECT CASE WHEN t = 3 THEN 1e308 ELSE x END AS x, label FROM d")
    nothing_registered(data, "m")


@pytest.mark.parametrize("lr", ["1e999", "1e30", "0", "-1", "11"])
def test_absurd_learning_rates_are_refused_at_parse_time(data, lr):
    with pytest.raises(InvalidOptionError, match=r"option 'lr': expected a finite number in \(0, 10\]"):
        data.sql(f"CREATE MODEL m WITH (lr := {lr}) AS SELECT x, y, label FROM d")
    nothing_registered(data, "m")


def test_a_learning_rate_that_diverges_is_caught_by_the_loss_guard(data):
    with pytest.raises(TrainingError, match=r"training loss became (nan|inf).*epoch \d+, batch \d+ of \d+.*lower the learning rate"):
        data.sql("CREATE MODEL m WITH (lr := 10, optimizer := 'sgd', momentum := 1, epochs := 50, task := 'regression', "
                 "normalize := false) AS SELECT x * 1e18 AS x, y, r AS label FROM d")
    nothing_registered(data, "m")


DIVERGING = "architecture := 'blowup', normalize := false, shuffle := false, batch_size := 10, epochs := 2, hidden := [8]"


@pytest.fixture
def blowup():
    sqlml.register_architecture("blowup", blowup_at_row_20, options=None)
    yield
    from sqlml.models.architectures import ARCHITECTURES

    ARCHITECTURES.pop("blowup", None)


@pytest.mark.parametrize(
    "strategy",
    [
        "",  # single: loop.fit
        ", strategy := 'spill', device_memory := '2KB'",  # ModelRun with the spill engine
        pytest.param(", strategy := 'pipeline', stages := 2, micro_batches := 2", marks=pytest.mark.slow),  # ModelRun, stages in processes
        pytest.param(", strategy := 'data_parallel', workers := 2", marks=pytest.mark.slow),  # loop.fit in each rank
    ],
)
def test_a_loss_that_turns_nan_stops_training_naming_epoch_and_batch(data, blowup, strategy):
    query = "SELECT t, x, label FROM d ORDER BY t"
    with pytest.raises(TrainingError, match=r"model 'm': the training loss became nan at epoch 1, batch 3 of 20; training stopped"):
        data.sql(f"CREATE MODEL m WITH ({DIVERGING}{strategy}) AS {query}")
    nothing_registered(data, "m")
    assert data.sql("SELECT count(*) FROM sqlml.training_runs WHERE model = 'm'").fetchall() == [(0,)]


def test_a_grid_member_that_diverges_stops_the_grid_and_registers_nothing(data, blowup):
    with pytest.raises(TrainingError, match=r"model 'g_\d': the training loss became nan at epoch 1, batch 3"):
        data.sql(f"CREATE MODELS g FOR (lr IN (0.01, 0.001)) WITH ({DIVERGING}, workers := 1) AS SELECT t, x, label FROM d ORDER BY t")
    assert data.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]


def test_weights_that_are_not_finite_are_never_registered(data, tmp_path):
    from sqlml.models.registry import require_finite_weights

    with pytest.raises(TrainingError, match=r"hold NaN or infinite values \(in 'w'\)"):
        require_finite_weights("m", {"w": torch.tensor([1.0, float("nan")])})
    path = os.path.join(tmp_path, "nan.pt")
    torch.save({"1.weight": torch.full((2, 2), float("nan")), "1.bias": torch.zeros(2)}, path)
    with pytest.raises(DataError, match="weights file holds NaN"):
        data.sql(f"CREATE MODEL imp WITH (architecture := 'logistic', weights := '{path}', input_shape := [2], classes := ['a', 'b'])")
    nothing_registered(data, "imp")


def test_predictions_are_never_nan_and_null_reasons_are_counted(data, tmp_path):
    data.sql("CREATE MODEL m1 WITH (epochs := 1, hidden := [4]) AS SELECT x, y, label FROM d")
    rows = data.sql(
        "SELECT ml_predict_proba('m1', 1e308, 1.0), ml_predict('m1', 'inf'::DOUBLE, 1.0), ml_predict_proba('m1', 'nan'::DOUBLE, 1.0), "
        "ml_predict_proba('m1', 1.0, 1.0)"
    ).fetchall()
    assert rows[0][:3] == (None, None, None) and len(rows[0][3]) == 2
    # finite inputs, an output that overflows: NULL too
    path = os.path.join(tmp_path, "huge.pt")
    torch.save({"1.weight": torch.full((2, 2), 1e30), "1.bias": torch.zeros(2)}, path)
    data.sql(f"CREATE MODEL big WITH (architecture := 'logistic', weights := '{path}', input_shape := [2], classes := ['a', 'b'], features := ['x', 'y'])")
    data.sql(f"CREATE MODEL big_r WITH (architecture := 'logistic', weights := '{path}', input_shape := [2], task := 'regression', n_outputs := 2, features := ['x', 'y'])")
    assert data.sql("SELECT ml_predict_proba('big', 1e10, -1e10), ml_predict('big', 1e10, -1e10), ml_predict_value('big_r', 1e10, 1e10)").fetchall() == [(None, None, None)]
    counts = data.sql("SELECT model, reason, rows FROM ml_prediction_nulls() ORDER BY ALL").fetchall()
    assert counts == [("big", "non_finite_output", 2), ("big_r", "non_finite_output", 1), ("m1", "invalid_input", 3)]
    nan_rows = data.sql(
        "SELECT count(*) FROM (SELECT ml_predict_proba('big', x * 1e10, -y * 1e10) AS p FROM d) WHERE list_has_any(p, ['nan'::FLOAT])"
    ).fetchall()
    assert nan_rows == [(0,)]


def test_on_an_accelerator_losses_are_checked_in_groups_naming_the_first_bad_batch():
    """The GPU path of the loss guard (no device sync per batch), run with CPU tensors."""
    from sqlml.training.finite import CHECK_EVERY_ON_DEVICE, LossGuard

    guard = LossGuard("m", batches_per_epoch=40, lr=0.5, device="cuda")
    losses = [torch.tensor(1.0)] * 4 + [torch.tensor(float("inf"))] + [torch.tensor(float("nan"))] * 20
    with pytest.raises(TrainingError, match=r"became inf at epoch 2, batch 5 of 40.*lr := 0.5; try 0.05") as info:
        for batch, loss in enumerate(losses, 1):
            guard.observe(loss, 2, batch)
    assert batch == CHECK_EVERY_ON_DEVICE  # found at the first group check, not per batch
    tail = LossGuard("m", device="cuda")
    tail.observe(torch.tensor(2.0), 1, 1)
    tail.observe(torch.tensor(float("nan")), 1, 2)
    with pytest.raises(TrainingError, match="epoch 1, batch 2"):
        tail.check()  # what the loops call at each epoch's end
    assert "no model was saved" in str(info.value)
