"""Cutting models into shards: by bytes, by time, at given boundaries, to a budget; clear errors."""

import pytest
import torch
from torch import nn

from sqlml.errors import InvalidOptionError, TrainingError
from sqlml.training.job import OptimizerSpec
from sqlml.training.large.layers import sequential_layers
from sqlml.training.large.partition import balance, balance_plan, budget_plan, layer_footprints, manual_plan
from sqlml.training.large.sizes import format_bytes, parse_bytes
from sqlml.training.large.spill import SpillTrainer

from .conftest import mlp


def test_balance_minimises_the_largest_part():
    assert balance([1] * 8, 4) == [0, 2, 4, 6]
    assert balance([5, 1, 1, 1, 1, 1], 2) == [0, 1]
    starts = balance([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)
    parts = [sum(range(a + 1, b + 1)) for a, b in zip(starts, starts[1:] + [9])]
    assert max(parts) == 17  # the optimum for this sequence
    assert balance([0, 0, 0], 3) == [0, 1, 2]  # every part non-empty even when weightless


def test_balance_by_bytes_evens_out_parameter_bytes():
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 256), nn.Linear(256, 2))
    plan = balance_plan(sequential_layers(model), 2, by="bytes")
    assert plan.n_shards == 2 and plan.method == "bytes"
    assert plan.boundaries == (0, 4)  # the 64x256 layer is as big as the two 64x64 layers together
    assert plan.describe()[0].startswith("Linear(64->64)")


def test_nested_sequentials_are_opened():
    model = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Sequential(nn.Linear(4, 4)), nn.Linear(4, 1))
    assert [type(m).__name__ for m in sequential_layers(model)] == ["Linear", "ReLU", "Linear", "Linear"]


def test_balance_by_time_measures_without_side_effects():
    model = mlp(width=32, depth=3, dropout=0.5, batch_norm=True)
    layers = sequential_layers(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sample = torch.randn(16, 32)
    rng = torch.get_rng_state()
    plan = balance_plan(layers, 3, by="time", sample=sample)
    assert plan.n_shards == 3 and plan.method == "time" and plan.boundaries[0] == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # batch-norm statistics untouched
    assert torch.equal(rng, torch.get_rng_state())  # dropout drew nothing from the run's RNG
    assert all(p.grad is None for p in model.parameters())


def test_manual_boundaries_and_their_errors():
    layers = sequential_layers(mlp(depth=3))  # 7 layers
    plan = manual_plan(layers, [2, 5])
    assert plan.ranges() == [(0, 2), (2, 5), (5, 7)]
    assert manual_plan(layers, [0, 2]).ranges() == [(0, 2), (2, 7)]
    with pytest.raises(TrainingError, match="between 1 and 6"):
        manual_plan(layers, [7])
    with pytest.raises(TrainingError, match="strictly increasing"):
        manual_plan(layers, [4, 2])
    with pytest.raises(TrainingError, match="list of layer numbers"):
        manual_plan(layers, "2,5")


def test_too_many_shards_is_refused():
    with pytest.raises(TrainingError, match="cannot cut a model of 3 layers into 4 shards"):
        balance_plan(sequential_layers(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))), 4)


def test_budget_plan_takes_the_fewest_shards_that_fit():
    layers = sequential_layers(mlp(width=64, depth=6))
    sizes = layer_footprints(layers, 2)  # Adam keeps two parameter-sized tensors
    capacity = 2 * max(sizes) + 1
    plan = budget_plan(layers, capacity, state_tensors_per_param=2, optimizer="adam")
    shard_sizes = [sum(sizes[a:b]) for a, b in plan.ranges()]
    assert max(shard_sizes) <= capacity
    assert plan.n_shards == 4  # six big layers and a small head, two big layers per shard at most
    whole = budget_plan(layers, sum(sizes), state_tensors_per_param=2)
    assert whole.n_shards == 1  # nothing needs to spill


def test_impossible_budget_names_the_largest_layer():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 512), nn.Linear(512, 2))
    with pytest.raises(TrainingError) as info:
        budget_plan(sequential_layers(model), 10_000, state_tensors_per_param=2, optimizer="adam")
    message = str(info.value)
    assert "layer 2 (Linear(8->512))" in message and "adam state" in message and "raise device_memory" in message


def test_trainer_refuses_a_budget_below_its_largest_shard():
    model = mlp(width=64, depth=2)
    plan = manual_plan(sequential_layers(model), [2])
    with pytest.raises(TrainingError) as info:
        SpillTrainer(model, plan, OptimizerSpec("adam"), device_memory=20_000)
    message = str(info.value)
    assert "the largest, shard 1" in message and "Linear(64->64)" in message and "adam state" in message


def test_sizes_parse_and_print():
    assert parse_bytes("64MB") == 64_000_000
    assert parse_bytes("64MiB") == parse_bytes("64M") == 64 * 2**20
    assert parse_bytes("1.5 GiB") == int(1.5 * 2**30)
    assert parse_bytes(4096) == 4096
    for bad in ("lots", "-1MB", 0, True, "12 parsecs"):
        with pytest.raises(InvalidOptionError, match="device_memory"):
            parse_bytes(bad)
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(12) == "12 B"
