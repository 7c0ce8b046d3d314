"""One training job: a typed object from the statement to the loop to the workers, and the
typed messages workers answer with."""

import pickle
import uuid

import numpy as np
import pytest
import torch

from sqlml.training import ddp_messages, loop
from sqlml.training.job import EpochReport, FinishedRun, JobHooks, TrainJob, weighted_loss
from sqlml.training.runner import make_job, prepare

QUERY = "SELECT a, b, color, label FROM train"


@pytest.fixture
def job(flights_like):
    duck = flights_like.duckdb
    options = {"epochs": 2, "batch_size": 500, "validation_split": 0.2, "early_stopping": 1, "hidden": [8]}
    prepared = prepare(duck, "m", options, QUERY)
    side = duck.cursor()
    try:
        yield make_job(prepared, side, version=1, run_id=uuid.uuid4().hex)
    finally:
        side.close()
        prepared.training.cleanup()


def test_the_job_travels_whole_and_leaves_its_hooks_with_the_owner(job):
    assert job.hooks.on_epoch_end.__self__.__class__.__name__ == "RunLog"  # bound to the owner's connection
    copy = pickle.loads(pickle.dumps(job))  # what a grid worker or a data-parallel rank receives
    assert isinstance(copy, TrainJob) and copy.hooks == JobHooks()
    for name in ("name", "strategy", "epochs", "seed", "early_stopping", "checkpoint", "batch_size", "threads", "options"):
        assert getattr(copy, name) == getattr(job, name), name
    assert copy.feed.n_batches() == job.feed.n_batches() and copy.validation.rows() == job.validation.rows()
    first, again = next(iter(job.feed(0))), next(iter(copy.feed(0)))
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y)
    assert all(torch.equal(a, b) for a, b in zip(job.module.state_dict().values(), copy.module.state_dict().values()))
    assert job.resuming({"epoch": 1}).resume == {"epoch": 1} and job.resume is None


def test_a_whole_model_checkpoint_of_earlier_versions_resumes_in_the_one_loop(job):
    legacy = {"epoch": 1, "model": job.module.state_dict(), "optimizer": {"state": {}, "param_groups": []},
              "history": [EpochReport(1, 0.5, 800, 1.0).to_json()], "early_stopping": None}
    state = loop.checkpoint_of(job.resuming(legacy))
    assert state["format"] == loop.FORMAT and state["epoch"] == 1 and state["cursor"] is None
    assert state["shards"] == [{"weights": legacy["model"], "optimizer": legacy["optimizer"]}]
    assert loop.remaining_batches(job.resuming(legacy)) == job.feed.n_batches()  # one of two epochs left
    assert loop.checkpoint_of(job.resuming({"something": "else"})) is None


def test_data_parallel_messages_are_plain_data_read_weights_only(tmp_path):
    run = FinishedRun({"w": torch.arange(4.0)}, [EpochReport(1, np.float64(0.25), 10, 0.5, {"val_loss": np.float32(0.5)})],
                      stopped_early=True, best_epoch=np.int64(1), extra={"world": 2})
    state = {"shards": [{"optimizer": {"param_groups": [{"betas": (0.9, 0.999)}]}}], "rng": torch.zeros(3, dtype=torch.uint8)}
    ddp_messages.send(tmp_path, 0, ddp_messages.Checkpoint(state))
    ddp_messages.send(tmp_path, 0, ddp_messages.Finished(2, run))
    reader = ddp_messages.Reader(ddp_messages.stream_path(tmp_path, 0))
    checkpoint, finished = reader.new()
    assert checkpoint.state["shards"][0]["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)  # tuples stay tuples
    assert torch.equal(checkpoint.state["rng"], state["rng"])
    assert isinstance(finished, ddp_messages.Finished) and finished.world == 2
    got = finished.run
    assert isinstance(got.history[0], EpochReport) and got.history[0].validation == {"val_loss": 0.5}
    assert type(got.best_epoch) is int and torch.equal(got.weights["w"], torch.arange(4.0))
    assert reader.new() == []
    # a frame still being written is not read; once complete it is
    path = ddp_messages.stream_path(tmp_path, 0)
    ddp_messages.send(tmp_path, 1, ddp_messages.Failed(1, "boom"))
    whole = ddp_messages.stream_path(tmp_path, 1).read_bytes()
    path.write_bytes(path.read_bytes() + whole[:-3])
    assert reader.new() == []
    with open(path, "ab") as f:
        f.write(whole[-3:])
    assert reader.new() == [ddp_messages.Failed(1, "boom")]


class Sneaky:
    def __reduce__(self):
        return (print, ("this must never run in the owner",))


def test_a_frame_that_would_run_code_is_refused(tmp_path):
    import io

    buffer = io.BytesIO()
    torch.save({"__kind__": "Failed", "rank": 0, "message": Sneaky()}, buffer)
    body = buffer.getvalue()
    ddp_messages.stream_path(tmp_path, 0).write_bytes(ddp_messages.HEADER.pack(len(body)) + body)
    with pytest.raises(pickle.UnpicklingError):
        ddp_messages.Reader(ddp_messages.stream_path(tmp_path, 0)).new()


def test_the_data_parallel_loss_scale():
    from sqlml.training.feed import Batch

    batch = Batch(None, torch.tensor([0, 1]), torch.tensor([1.0, 3.0]), None, 8.0)
    output = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    weighted, loss = weighted_loss("classification", output, batch)
    _, scaled = weighted_loss("classification", output, batch, scale=2.0)
    assert float(loss) == pytest.approx(float(weighted) / 8) and float(scaled) == pytest.approx(2 * float(loss))
