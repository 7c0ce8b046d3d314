"""The memory estimator: per-shard bytes for a batch size, a verdict, and no side effects."""

import torch
from torch import nn

from sqlml.training.job import OptimizerSpec
from sqlml.training.large.memory import estimate

from .conftest import mlp


def shards_of(model, cuts):
    layers = list(model)
    ends = cuts[1:] + [len(layers)]
    return [nn.Sequential(*layers[a:b]) for a, b in zip(cuts, ends)]


def test_counts_weights_state_and_measured_activations():
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    shards = shards_of(model, [0, 4])
    result = estimate(shards, OptimizerSpec("adam"), batch_size=128, make_input=lambda n: torch.randn(n, 256))
    first, last = result.shards
    params = (256 * 256 + 256) * 4
    assert first.weights >= 2 * params and first.gradients == 2 * params
    assert first.optimizer_state >= 2 * first.gradients  # Adam: two moments per parameter
    # saved for backward at batch 128: the input of each Linear and each ReLU's output, 128 x 256 floats each,
    # counted once where one op's output is the next one's input
    assert first.activations == 3 * 128 * 256 * 4
    assert first.boundary == 128 * 256 * 4 and last.boundary == 128 * 2 * 4
    assert result.peak == max(result.shard_peak(k) for k in range(2))


def test_verdicts():
    model = mlp(width=64, depth=4)
    shards = shards_of(model, [0, 4, 8])
    make = lambda n: torch.randn(n, 64)  # noqa: E731
    big = estimate(shards, OptimizerSpec("sgd", momentum=0), batch_size=32, make_input=make, device_memory=10**9)
    assert big.fits and big.verdict().startswith("fits")
    tiny = estimate(shards, OptimizerSpec("sgd", momentum=0), batch_size=32, make_input=make, device_memory=1000)
    assert tiny.fits is False and tiny.state_fits is False
    assert "does not fit: shard 0" in tiny.verdict()
    between = estimate(shards, OptimizerSpec("sgd", momentum=0), batch_size=4096, make_input=make,
                       device_memory=big.state_peak + 1000)
    assert between.state_fits and not between.fits
    assert "activations at batch 4096" in between.verdict()
    rows = between.rows()
    assert [r["shard"] for r in rows] == [0, 1, 2] and all(set(r) >= {"weights", "activations", "peak", "fits"} for r in rows)


def test_probe_leaves_no_trace():
    model = mlp(width=32, depth=3, dropout=0.5, batch_norm=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(8, 32)
    rng = torch.get_rng_state()
    estimate(shards_of(model, [0, 5]), OptimizerSpec("adam"), batch_size=64, make_input=lambda n: x[:n].repeat(2, 1)[:n])
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
