"""The registry's Python contract, which serving and large-model training code against."""

import io

import pyarrow as pa
import pytest
import torch

from sqlml.errors import UnknownObjectError
from sqlml.models import loading, registry


@pytest.fixture
def trained(flights_like):
    flights_like.sql("CREATE MODEL delay WITH (epochs := 2, lr := 0.02) AS SELECT a, b, color, pair, label FROM train")
    return flights_like


def test_latest_version_and_record(trained):
    duck = trained.duckdb
    assert registry.latest_version(duck, "delay") == 1
    assert registry.latest_version(duck, "nope") is None
    record = registry.load_record(duck, "delay")
    assert (record.name, record.version, record.architecture, record.task) == ("delay", 1, "mlp", "classification")
    assert record.label == "label" and record.classes == ["late", "on_time"]
    assert record.feature_names == ["a", "b", "color", "pair"]
    assert record.input_shape == [1 + 1 + 4 + 2] and record.n_outputs == 2
    assert record.features.features[2].categories == ["blue", "green", "red"]
    assert record.metrics["epochs"] == 2 and record.created_at is not None
    assert record.query.startswith("SELECT a, b")
    with pytest.raises(UnknownObjectError, match="Did you mean 'delay'"):
        registry.load_record(duck, "dealy")


def test_weights_load_with_weights_only(trained):
    blob = trained.sql("SELECT weights FROM sqlml.models").fetchall()[0][0]
    state = torch.load(io.BytesIO(blob), weights_only=True)
    assert set(state) == {"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"}
    assert state["1.weight"].shape == (64, 8)


def test_load_model_is_cached_per_session_and_version(trained):
    session = trained.session
    first = loading.load_model(session, "delay")
    assert loading.load_model(session, "delay") is first
    assert not first.module.training
    trained.sql("CREATE OR REPLACE MODEL delay WITH (epochs := 1) AS SELECT a, b, color, pair, label FROM train")
    second = loading.load_model(session, "delay")
    assert second.record.version == 2 and second is not first
    assert loading.load_model(session, "delay", 1).record.version == 1


def test_loaded_model_encodes_and_predicts(trained):
    loaded = loading.load_model(trained.session, "delay")
    table = trained.sql("SELECT * FROM train LIMIT 64").to_arrow_table()  # by name, extra columns ignored
    x = loaded.encode(table)
    assert x.shape == (64, 8) and x.dtype == torch.float32
    probs = loaded.predict_proba(x)
    assert probs.shape == (64, 2)
    names = loaded.predict(table)
    assert set(names) <= {"late", "on_time"}
    by_sql = [r[0] for r in trained.sql("SELECT ml_predict('delay', a, b, color, pair) FROM train LIMIT 64").fetchall()]
    assert list(names) == by_sql


def test_categorical_round_trip_and_unseen_values(trained):
    loaded = loading.load_model(trained.session, "delay")
    columns = [pa.array([0.5, 0.5, 0.5]), pa.array([0.5, 0.5, 0.5]), pa.array(["red", "purple", None]), pa.array([[0.1, 0.2]] * 3, pa.list_(pa.float32(), 2))]
    x, valid = loaded.encode_valid(columns)
    assert valid.tolist() == [True, True, True]  # categorical NULL and unseen values are fine
    one_hot = x[:, 2:6].tolist()
    assert one_hot == [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]]  # blue, green, red, unseen/NULL (after the numeric block and pair)
    # standardised numerics use the training mean and std
    feature = loaded.spec.features[0]
    assert x[0, 0].item() == pytest.approx((0.5 - feature.mean) / feature.std, abs=1e-6)
    # the ENUM and dictionary forms of the same values encode the same way
    enum_like = pa.array(["red", "purple", None]).dictionary_encode()
    x2, _ = loaded.encode_valid([columns[0], columns[1], enum_like, columns[3]])
    assert torch.equal(x, x2)


def test_save_and_drop_through_python(trained):
    duck = trained.duckdb
    record = registry.load_record(duck, "delay")
    state = registry.load_weights(duck, "delay", 1)
    record.name = "copy"
    assert registry.save_model(duck, record, state) == 1
    assert registry.load_record(duck, "copy").features.names == ["a", "b", "color", "pair"]
    assert registry.drop_model(duck, "copy") == 1
    assert registry.latest_version(duck, "copy") is None


def test_pure_sql_macros(trained):
    rows = trained.sql("SELECT name, version, latest, weight_bytes > 0 FROM ml_model_versions()").fetchall()
    assert rows == [("delay", 1, True, True)]
    epochs = trained.sql("SELECT epoch, version FROM ml_training_runs('delay')").fetchall()
    assert epochs == [(1, 1), (2, 1)]


def test_cpu_forward_chunks_keep_a_wide_networks_activations_cache_sized():
    """A 512-wide MLP runs in 2,048-row chunks on CPU (the multi-query benchmark's wide model
    scored 62k rows 1.4x faster so); convolutions and narrow networks keep their chunks."""
    import torch
    from torch import nn

    from sqlml.models.loading import CPU_ACTIVATION_BYTES, cpu_chunk_rows

    wide = nn.Sequential(nn.Linear(5, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 2))
    assert cpu_chunk_rows(wide) == CPU_ACTIVATION_BYTES // (4 * 512) == 2048
    assert cpu_chunk_rows(nn.Sequential(nn.Linear(5, 64), nn.Linear(64, 2))) == 16384
    assert cpu_chunk_rows(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 2))) is None
    assert cpu_chunk_rows(nn.Sequential(nn.ReLU())) is None

    from sqlml.models.loading import LoadedModel

    class Record:
        n_outputs = 2

    torch.manual_seed(0)
    loaded = LoadedModel(Record(), wide.eval(), torch.device("cpu"))
    assert loaded.chunk_rows == 2048
    x = torch.randn(5000, 5)
    calls = []
    handle = wide.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    out = loaded.forward(x)
    handle.remove()
    assert calls == [2048, 2048, 904]
    torch.testing.assert_close(out, wide(x).detach(), rtol=1e-5, atol=1e-6)
