"""Every CREATE MODEL option does what docs/training.md says."""

import io
import json

import pytest
import torch

import sqlml
from sqlml.errors import DataError, InvalidOptionError, TrainingError
from sqlml.training.options import IMPORT_OPTIONS, TRAINING_OPTIONS

QUERY = "SELECT a, b, color, label FROM train"


def weights(con, name):
    blob = con.sql("SELECT weights FROM sqlml.models WHERE name = ? ORDER BY version DESC LIMIT 1", [name]).fetchall()[0][0]
    return torch.load(io.BytesIO(blob), weights_only=True)


def same(w1, w2):
    return all(torch.equal(w1[k], w2[k]) for k in w1)


def metrics(con, name):
    return json.loads(con.sql("SELECT metrics FROM sqlml.models WHERE name = ?", [name]).fetchall()[0][0])


class Recorder:
    """An architecture that records what training feeds it."""

    def __init__(self):
        self.batches, self.threads, self.first_x = [], set(), None
        sqlml.register_architecture("recorder", self.factory)

    def factory(self, input_shape, n_outputs, options):
        module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(torch.tensor(input_shape).prod()), n_outputs))

        def hook(mod, args):
            if mod.training:
                self.batches.append(args[0].shape[0])
                self.threads.add(torch.get_num_threads())
                if self.first_x is None:
                    self.first_x = args[0].clone()

        module.register_forward_pre_hook(hook)
        return module


def test_every_option_is_documented():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    for page in ("training.md", "sql-reference.md"):
        section = (docs / page).read_text()
        if page == "sql-reference.md":
            section = section.split("### `CREATE MODEL`", 1)[1].split("\n### ", 1)[0]
        for name in [*TRAINING_OPTIONS, *IMPORT_OPTIONS, "workers", "launch", "hidden", "channels", "dropout", "activation", "kernel_size", "batch_norm"]:
            assert f"`{name}`" in section, (page, name)


def test_batch_size_and_epochs(flights_like):
    rec = Recorder()
    flights_like.sql(f"CREATE MODEL m WITH (architecture := 'recorder', batch_size := 700, epochs := 3) AS {QUERY}")
    assert len(rec.batches) == 3 * 8 and sum(rec.batches) == 3 * 5000
    assert rec.batches.count(700) == 3 * 7


def test_threads(flights_like):
    rec = Recorder()
    before = torch.get_num_threads()
    flights_like.sql(f"CREATE MODEL m WITH (architecture := 'recorder', threads := 2, epochs := 1) AS {QUERY}")
    assert rec.threads == {2} and torch.get_num_threads() == before


def test_shuffle_false_feeds_query_order(flights_like):
    rec = Recorder()
    flights_like.sql(
        "CREATE MODEL m WITH (architecture := 'recorder', shuffle := false, normalize := false, epochs := 1, batch_size := 4) "
        "AS SELECT id, label FROM train ORDER BY id"
    )
    assert rec.first_x[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_seed_makes_training_repeatable(flights_like):
    con = flights_like
    for name, seed in (("s1", 1), ("s1_again", 1), ("s2", 2)):
        con.sql(f"CREATE MODEL {name} WITH (epochs := 2, seed := {seed}, dropout := 0.1) AS {QUERY}")
    assert same(weights(con, "s1"), weights(con, "s1_again"))
    assert not same(weights(con, "s1"), weights(con, "s2"))


def test_prefetch_block_rows_and_window_change_speed_not_math(flights_like):
    con = flights_like
    con.sql(f"CREATE MODEL base WITH (epochs := 2, block_rows := 1000) AS {QUERY}")
    con.sql(f"CREATE MODEL nopre WITH (epochs := 2, block_rows := 1000, prefetch := 0) AS {QUERY}")
    con.sql(f"CREATE MODEL window1 WITH (epochs := 2, block_rows := 1000, shuffle_window := 1) AS {QUERY}")
    assert same(weights(con, "base"), weights(con, "nopre"))
    assert not same(weights(con, "base"), weights(con, "window1"))  # another shuffle, same data


@pytest.mark.parametrize(
    "options",
    ["optimizer := 'sgd'", "optimizer := 'adamw', weight_decay := 0.5", "lr := 0.05", "weight_decay := 0.1", "optimizer := 'sgd', momentum := 0.0"],
)
def test_optimizer_settings_change_the_result(flights_like, options):
    con = flights_like
    con.sql(f"CREATE MODEL base WITH (epochs := 1) AS {QUERY}")
    con.sql(f"CREATE MODEL other WITH (epochs := 1, {options}) AS {QUERY}")
    assert not same(weights(con, "base"), weights(con, "other"))
    assert json.loads(con.sql("SELECT options FROM sqlml.models WHERE name = 'other'").fetchall()[0][0])["lr"] > 0


def test_weight_decay_shrinks_weights(flights_like):
    con = flights_like
    con.sql(f"CREATE MODEL free WITH (epochs := 3, optimizer := 'adamw', lr := 0.01) AS {QUERY}")
    con.sql(f"CREATE MODEL decayed WITH (epochs := 3, optimizer := 'adamw', lr := 0.01, weight_decay := 5.0) AS {QUERY}")
    norm = lambda w: sum(float(v.norm()) for k, v in w.items() if k.endswith("weight"))  # noqa: E731
    assert norm(weights(con, "decayed")) < 0.8 * norm(weights(con, "free"))


def test_device(flights_like):
    con = flights_like
    con.sql(f"CREATE MODEL m WITH (epochs := 1, device := 'cpu') AS {QUERY}")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidOptionError, match="no such CUDA device"):
            con.sql(f"CREATE MODEL n WITH (epochs := 1, device := 'cuda') AS {QUERY}")
    with pytest.raises(InvalidOptionError, match="expected 'auto', 'cpu'"):
        con.sql(f"CREATE MODEL n WITH (device := 'tpu') AS {QUERY}")


def test_features_label_and_classes(flights_like):
    con = flights_like
    con.sql("CREATE MODEL m WITH (features := ['a', 'b'], classes := ['on_time', 'late'], epochs := 1) AS SELECT * FROM train")
    (names, classes) = con.sql("SELECT features, classes FROM ml_models()").fetchall()[0]
    assert names == ["a", "b"] and classes == ["on_time", "late"]
    (p,) = con.sql("SELECT ml_predict_proba('m', a, b) FROM train LIMIT 1").fetchall()[0]
    assert len(p) == 2
    with pytest.raises(DataError, match="cannot be both"):
        con.sql(f"CREATE MODEL n WITH (features := ['a', 'label']) AS {QUERY}")


def test_normalize_and_max_categories(flights_like):
    con = flights_like
    con.sql(f"CREATE MODEL raw WITH (normalize := false, epochs := 1) AS {QUERY}")
    spec = json.loads(con.sql("SELECT features FROM sqlml.models WHERE name = 'raw'").fetchall()[0][0])
    assert spec["features"][0]["mean"] is None
    con.sql(f"CREATE MODEL std WITH (epochs := 1) AS {QUERY}")
    spec = json.loads(con.sql("SELECT features FROM sqlml.models WHERE name = 'std'").fetchall()[0][0])
    assert spec["features"][0]["mean"] == pytest.approx(con.sql("SELECT avg(a) FROM train").fetchall()[0][0])
    with pytest.raises(DataError, match="more than 2 distinct values"):
        con.sql(f"CREATE MODEL cats WITH (max_categories := 2) AS {QUERY}")


def test_validation_query(flights_like):
    con = flights_like
    con.sql(
        f"CREATE MODEL m WITH (epochs := 2, validation_query := 'SELECT * FROM train WHERE id < 700') AS {QUERY}"
    )
    m = metrics(con, "m")
    assert m["val_rows"] == 700 and 0 < m["val_accuracy"] <= 1
    with pytest.raises(DataError, match="lacks the training column"):
        con.sql(f"CREATE MODEL n WITH (validation_query := 'SELECT a, b, label FROM train') AS {QUERY}")


def test_early_stopping_and_min_delta(flights_like):
    con = flights_like
    con.sql(
        f"CREATE MODEL m WITH (epochs := 20, validation_split := 0.2, early_stopping := 2, min_delta := 100.0) AS {QUERY}"
    )
    m = metrics(con, "m")
    assert m["epochs"] == 3 and m["stopped_early"] is True and m["best_epoch"] == 1
    first = con.sql("SELECT val_loss FROM sqlml.training_runs WHERE epoch = 1").fetchall()[0][0]
    assert m["val_loss"] == pytest.approx(first)  # the best epoch's weights were kept
    best = con.sql("SELECT * FROM ml_evaluate('m', 'SELECT * FROM train')").fetchall()[0]
    assert best[2] == 5000
    con.sql(f"CREATE MODEL patient WITH (epochs := 4, validation_split := 0.2, early_stopping := true) AS {QUERY}")
    assert metrics(con, "patient")["epochs"] == 4


def test_progress_bar(flights_like, capsys):
    flights_like.sql(f"CREATE MODEL m WITH (epochs := 2, progress := true) AS {QUERY}")
    err = capsys.readouterr().err
    assert "m epoch 1/2" in err and "m epoch 2/2" in err and "batch" in err
    flights_like.sql(f"CREATE MODEL n WITH (epochs := 1, progress := false) AS {QUERY}")
    assert "epoch" not in capsys.readouterr().err


def test_validate_gate(flights_like):
    con = flights_like
    source = QUERY.split(" FROM ", 1)[1].split()[0]
    con.sql(f"CREATE DATA SCHEMA train_schema FROM {QUERY}")
    con.sql(f"CREATE MODEL ok WITH (validate := 'train_schema', epochs := 1) AS {QUERY}")
    # the same query over data gone wrong: every distance out of range
    con.sql(f"CREATE TABLE broken AS SELECT * REPLACE (a * 1000 AS a) FROM {source}")
    broken_query = QUERY.replace(f"FROM {source}", "FROM broken")
    with pytest.raises(TrainingError, match="model 'refused' was not trained.*a") as info:
        con.sql(f"CREATE MODEL refused WITH (validate := 'train_schema', epochs := 1) AS {broken_query}")
    assert info.value.__cause__.anomalies and all(a.is_error for a in info.value.__cause__.anomalies)
    with pytest.raises(sqlml.UnknownObjectError, match="train_shema"):
        con.sql(f"CREATE MODEL m WITH (validate := 'train_shema', epochs := 1) AS {QUERY}")
    assert con.sql("SELECT name FROM ml_models()").fetchall() == [("ok",)]


def test_boolean_and_integer_labels_name_their_classes(con):
    con.sql("CREATE TABLE t AS SELECT i % 10 AS x, i % 10 >= 5 AS flag, (i % 3) * 10 AS code FROM range(600) r(i)")
    con.sql("CREATE MODEL b WITH (label := 'flag', classes := [true, false], epochs := 1) AS SELECT x, flag FROM t")
    con.sql("CREATE MODEL c WITH (label := 'code', epochs := 1) AS SELECT x, code FROM t")
    assert con.sql("SELECT ml_model_classes('b'), ml_model_classes('c')").fetchall() == [(["true", "false"], ["0", "10", "20"])]
