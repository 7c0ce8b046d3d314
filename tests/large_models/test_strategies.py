"""CREATE MODEL with strategy := 'spill' | 'pipeline': same model as 'single', resumable, clear errors."""

import pytest
import torch
from torch import nn

import sqlml
from sqlml.errors import InvalidOptionError, TrainingError, UnknownObjectError

from .conftest import metrics, same_weights, weights

QUERY = "SELECT a, b, color, label FROM train"
BASE = "architecture := 'mlp', hidden := [64, 64, 64], dropout := 0.1, epochs := 3, batch_size := 100, lr := 0.01"


def create(con, name, options, query=QUERY):
    return con.sql(f"CREATE MODEL {name} WITH ({options}) AS {query}").fetchall()


def test_spill_trains_the_same_model_as_single(table):
    con = table
    options = BASE + ", validation_split := 0.2, early_stopping := 2"
    create(con, "solo", options)
    create(con, "spilled", options + ", strategy := 'spill', device_memory := '100KB'")
    assert same_weights(weights(con, "solo"), weights(con, "spilled")) == 0.0
    solo, spilled = metrics(con, "solo"), metrics(con, "spilled")
    for key in ("train_loss", "val_loss", "val_accuracy", "epochs"):
        assert solo[key] == spilled[key], key
    spill = spilled["spill"]
    assert spill["shards"] >= 2 and spill["device_memory"] == 100_000
    assert 0 < spill["peak_resident_bytes"] <= 100_000 and spill["bytes_moved"] > 0
    assert "verdict" in spill["memory_estimate"]
    runs = con.sql("SELECT strategy, count(*) FROM sqlml.training_runs WHERE model = 'spilled' GROUP BY 1").fetchall()
    assert runs == [("spill", 3)]
    # the spilled model predicts like any other
    assert con.sql("SELECT count(*) FROM train WHERE ml_predict('spilled', a, b, color) = ml_predict('solo', a, b, color)").fetchall() == [(1200,)]


def test_disk_tier_prefetch_and_kept_activations_change_nothing(table, tmp_path):
    con = table
    create(con, "solo", BASE + ", optimizer := 'sgd'")
    create(con, "disk", BASE + f", optimizer := 'sgd', strategy := 'spill', device_memory := '120KB', spill_tier := 'disk', "
                              f"spill_dir := '{tmp_path}', spill_prefetch := true, checkpoint_activations := false, shards := 3")
    assert same_weights(weights(con, "solo"), weights(con, "disk")) == 0.0
    spill = metrics(con, "disk")["spill"]
    assert spill["tier"] == "disk" and spill["prefetch"] is True and spill["shards"] == 3
    assert list(tmp_path.iterdir()) == []  # shard files are gone with the trainer


class Interrupt(KeyboardInterrupt):
    pass


def resumable(input_shape, n_outputs, options):
    torch.manual_seed(options.get("seed", 0))
    width = 1
    for d in input_shape:
        width *= d
    return nn.Sequential(nn.Flatten(), nn.Linear(width, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, n_outputs))


def interrupting(after_calls):
    def factory(input_shape, n_outputs, options):
        module = resumable(input_shape, n_outputs, options)
        calls = [0]

        def hook(layer, args):
            calls[0] += 1
            if calls[0] > after_calls:
                raise Interrupt()

        module[1].register_forward_pre_hook(hook)
        return module

    return factory


RESUMABLE = ("CREATE MODEL m WITH (architecture := 'resumable_spill', epochs := 3, batch_size := 100, seed := 3, "
             "strategy := 'spill', device_memory := '1MB', shards := 2, checkpoint_every := 4) AS " + QUERY)


def test_interrupted_spill_resumes_mid_epoch(table):
    con = table
    sqlml.register_architecture("resumable_spill", resumable)
    con.sql(RESUMABLE)
    reference = weights(con, "m")
    con.sql("DROP MODEL m")
    # 12 batches an epoch; both shards fit the device, so the first keeps its graph across the turn and runs
    # once a step (the memory estimate runs it twice first): dies in epoch 2, batch 6, after the checkpoint at 4
    sqlml.register_architecture("resumable_spill", interrupting(after_calls=2 + 12 + 5))
    with pytest.raises(Interrupt):
        con.sql(RESUMABLE)
    assert con.sql("SELECT count(*) FROM sqlml.models WHERE name = 'm'").fetchall() == [(0,)]
    assert con.sql("SELECT epoch FROM sqlml.checkpoints WHERE model = 'm'").fetchall() == [(1,)]  # mid-epoch 2
    sqlml.register_architecture("resumable_spill", resumable)
    con.sql(RESUMABLE)
    assert same_weights(weights(con, "m"), reference) == 0.0
    epochs = con.sql("SELECT epoch, resumed_from FROM sqlml.training_runs WHERE model = 'm' AND version = 2 ORDER BY epoch").fetchall()
    assert epochs == [(1, None), (2, 1), (3, None)]
    assert con.sql("SELECT count(*) FROM sqlml.checkpoints").fetchall() == [(0,)]


def test_pipeline_trains_close_to_single(table):
    con = table
    plain = "architecture := 'mlp', hidden := [32, 32], epochs := 1, batch_size := 100, optimizer := 'sgd', momentum := 0, lr := 0.05"
    create(con, "solo", plain)
    create(con, "piped", plain + ", strategy := 'pipeline', micro_batches := 4, schedule := '1f1b'")
    assert same_weights(weights(con, "solo"), weights(con, "piped")) < 1e-5  # fp32 summation order only
    assert metrics(con, "piped")["train_loss"] == pytest.approx(metrics(con, "solo")["train_loss"], rel=1e-5)
    pipe = metrics(con, "piped")["pipeline"]
    assert pipe["stages"] == 2 and pipe["micro_batches"] == 4 and pipe["schedule"] == "1f1b"
    assert pipe["bubble_theory"] == pytest.approx(0.2) and 0 <= pipe["bubble_measured"] <= 1


def not_sequential(input_shape, n_outputs, options):
    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(input_shape[0], n_outputs)

        def forward(self, x):
            return self.a(x)

    return Wide()


@pytest.mark.parametrize(
    "options, error, match",
    [
        ("strategy := 'spill'", InvalidOptionError, "needs device_memory"),
        ("strategy := 'spill', device_memory := 'lots'", InvalidOptionError, "expected a size"),
        ("strategy := 'spill', device_memory := '1KB'", TrainingError, "alone needs"),
        ("strategy := 'spill', device_memory := '1MB', shards := 2, boundaries := [2]", InvalidOptionError, "shards or boundaries"),
        ("strategy := 'spill', device_memory := '1MB', boundaries := [99]", TrainingError, "between 1 and"),
        ("strategy := 'spill', device_memory := '1MB', spill_tier := 'tape'", InvalidOptionError, "spill_tier"),
        ("strategy := 'spill', device_memory := '1MB', micro_batches := 4", InvalidOptionError, "belongs to strategy 'pipeline'"),
        ("strategy := 'pipeline', micro_batches := 3", InvalidOptionError, "must divide batch_size"),
        ("strategy := 'pipeline', schedule := '1f1b', micro_batches := 2, stages := 4", InvalidOptionError, "1F1B"),
        ("strategy := 'pipeline', stages := 1", InvalidOptionError, "stages"),
        ("strategy := 'pipeline', stages := 9", TrainingError, "cannot cut"),
        ("strategy := 'teleport'", UnknownObjectError, "strategy 'teleport'"),
        ("strategy := 'spill', device_memory := '1MB', architecture := 'not_sequential'", TrainingError, "nn.Sequential"),
    ],
)
def test_bad_options_leave_nothing_behind(table, options, error, match):
    con = table
    sqlml.register_architecture("not_sequential", not_sequential)
    with pytest.raises(error, match=match):
        create(con, "bad", "architecture := 'mlp', hidden := [64], epochs := 1, batch_size := 100, " + options
               if "architecture" not in options else "epochs := 1, batch_size := 100, " + options)
    assert con.sql("SELECT count(*) FROM sqlml.models").fetchall() == [(0,)]


def test_memory_estimate_before_training(table):
    con = table
    rows = con.sql(
        "SELECT shard, layers, weights, optimizer_state, activations, peak, fits, verdict FROM ml_memory_estimate("
        "'SELECT a, b, color, label FROM train', $$architecture := 'mlp', hidden := [256, 256, 256], device_memory := '2MB', "
        "batch_size := 128$$) ORDER BY shard"
    ).fetchall()
    assert len(rows) >= 2 and all(r[6] is True for r in rows) and rows[0][7].startswith("fits")
    assert any("Linear(256->256)" in r[1] for r in rows)
    big = dict(zip(["shard", "layers", "weights", "state"], rows[[i for i, r in enumerate(rows) if "Linear(256->256)" in r[1]][0]][:4]))
    assert big["weights"] >= 256 * 257 * 4 and big["state"] >= 2 * 256 * 257 * 4  # Adam: two moments
    tight = con.sql(
        "SELECT DISTINCT fits, verdict FROM ml_memory_estimate('SELECT a, b, color, label FROM train', "
        "$$hidden := [256, 256], device_memory := '300KB'$$)"
    ).fetchall()
    assert any(f is False for f, _ in tight) and "does not fit: shard" in tight[0][1] and "Linear(256->256)" in tight[0][1]


@pytest.mark.slow
def test_interrupted_pipeline_resumes_mid_epoch(table, monkeypatch):
    from sqlml.training.large import engines

    con = table
    statement = ("CREATE MODEL pm WITH (architecture := 'mlp', hidden := [32, 32], epochs := 2, batch_size := 100, "
                 "optimizer := 'sgd', momentum := 0.9, strategy := 'pipeline', micro_batches := 4, checkpoint_every := 5) AS " + QUERY)
    con.sql(statement)
    reference = weights(con, "pm")
    con.sql("DROP MODEL pm")
    real_step, calls = engines.PipelineEngine.step, [0]

    def dying_step(self, batch):
        calls[0] += 1
        if calls[0] > 17:  # 12 batches an epoch: dies in epoch 2 after its checkpoint at batch 5
            raise Interrupt()
        return real_step(self, batch)

    monkeypatch.setattr(engines.PipelineEngine, "step", dying_step)
    with pytest.raises(Interrupt):
        con.sql(statement)
    assert con.sql("SELECT epoch FROM sqlml.checkpoints WHERE model = 'pm'").fetchall() == [(1,)]
    monkeypatch.setattr(engines.PipelineEngine, "step", real_step)
    con.sql(statement)
    assert same_weights(weights(con, "pm"), reference) < 1e-6
    assert con.sql("SELECT epoch, resumed_from FROM sqlml.training_runs WHERE model = 'pm' AND version = 2 "
                   "ORDER BY epoch").fetchall() == [(1, None), (2, 1)]
