"""GPipe / 1F1B over worker processes: gradients within 1e-6 of one process, bad options refused."""

import pytest
import torch

from sqlml.errors import TrainingError
from sqlml.training.feed import Batch
from sqlml.training.job import OptimizerSpec, row_losses
from sqlml.training.large.layers import sequential_layers
from sqlml.training.large.partition import balance_plan, manual_plan
from sqlml.training.large.pipeline import PipelineRunner, bubble_fraction
from sqlml.training.large.pipeline_worker import PipelineLoss, micro_batches_for, pack_target

from .conftest import mlp


def batch(rows=32, width=32, classes=3, seed=5, weighted=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, width, generator=g)
    y = torch.randint(0, classes, (rows,), generator=g)
    w = torch.rand(rows, generator=g) + 0.5 if weighted else torch.ones(rows)
    return Batch(x, y, w, None, float(w.sum()))


def reference_grads(model, b):
    model.zero_grad()
    loss = (row_losses("classification", model(b.x), b) * b.weight).sum() * (1.0 / b.weight_total)
    loss.backward()
    return [p.grad.clone() for p in model.parameters()], float(loss.detach())


def relative_errors(got, want):
    return [((g - w).norm() / w.norm()).item() for g, w in zip(got, want)]


def test_two_stage_gpipe_gradients_match_one_process():
    model = mlp(width=32, depth=4)
    b = batch()
    want, loss = reference_grads(mlp(width=32, depth=4), b)
    plan = balance_plan(sequential_layers(model), 2)
    with PipelineRunner(model, plan, OptimizerSpec("sgd", lr=0.1), PipelineLoss("classification", False), micro_batches=4) as runner:
        reply = runner.step(b.x, pack_target(b), weight_total=b.weight_total, update=False)
        got = runner.gradients()
        assert max(relative_errors(got, want)) < 1e-6
        assert reply["loss"] == pytest.approx(loss, rel=1e-6)
        # a short batch gets fewer (equal) micro-batches and still matches
        short = batch(rows=10, seed=9)
        want_short, _ = reference_grads(mlp(width=32, depth=4), short)
        runner.step(short.x, pack_target(short), weight_total=short.weight_total, update=False)
        assert max(relative_errors(runner.gradients(), want_short)) < 1e-6
        stats = runner.stats()
        assert stats["stages"] == 2 and stats["bubble_theory"] == pytest.approx(1 / 5)
        assert 0 <= stats["bubble_measured"] <= 1 and len(stats["idle_fraction"]) == 2
        assert len(stats["stage_cpu_seconds"]) == 2 and all(c > 0 for c in stats["stage_cpu_seconds"])


@pytest.mark.slow
def test_1f1b_with_activation_checkpointing_trains_like_one_process(tmp_path):
    model = mlp(width=32, depth=4)
    reference = mlp(width=32, depth=4)
    opt = OptimizerSpec("adam", lr=1e-2).build(reference.parameters())
    plan = manual_plan(sequential_layers(model), [3, 6])
    steps = [batch(seed=s) for s in range(3)]
    with PipelineRunner(model, plan, OptimizerSpec("adam", lr=1e-2), PipelineLoss("classification", False),
                        micro_batches=4, schedule="1f1b", checkpoint_activations=True) as runner:
        for b in steps:
            runner.step(b.x, pack_target(b), weight_total=b.weight_total)
            opt.zero_grad()
            (row_losses("classification", reference(b.x), b) * b.weight).sum().mul(1.0 / b.weight_total).backward()
            opt.step()
        runner.save(tmp_path / "ckpt", cursor={"batch": 3})
        runner.sync_model()
        for a, r in zip(model.parameters(), reference.parameters()):
            assert torch.allclose(a, r, atol=1e-5)
        # resume into fresh stages: weights and Adam state come back
        trained = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = mlp(width=32, depth=4, seed=99)
    with PipelineRunner(fresh, plan, OptimizerSpec("adam", lr=1e-2), PipelineLoss("classification", False),
                        micro_batches=4, schedule="1f1b") as runner:
        meta = runner.load(tmp_path / "ckpt")
        assert meta["cursor"] == {"batch": 3} and runner.steps == 3
        runner.sync_model()
        assert all(torch.equal(trained[k], v) for k, v in fresh.state_dict().items())


def test_bad_pipeline_settings():
    model = mlp(width=8, depth=2)
    layers = sequential_layers(model)
    loss = PipelineLoss("classification", False)
    with pytest.raises(TrainingError, match="at least two stages"):
        PipelineRunner(model, balance_plan(layers, 1), OptimizerSpec("sgd"), loss)
    with pytest.raises(TrainingError, match="1F1B schedule needs at least as many micro-batches"):
        PipelineRunner(model, balance_plan(layers, 3), OptimizerSpec("sgd"), loss, micro_batches=2, schedule="1f1b")
    with pytest.raises(TrainingError, match="schedule must be one of"):
        PipelineRunner(model, balance_plan(layers, 2), OptimizerSpec("sgd"), loss, schedule="zigzag")


def test_bubble_and_micro_batch_arithmetic():
    assert bubble_fraction(2, 4) == pytest.approx(0.2)
    assert bubble_fraction(8, 32) == pytest.approx(7 / 39)
    assert micro_batches_for(32, 4) == 4 and micro_batches_for(10, 4) == 2 and micro_batches_for(7, 4) == 1
