"""Hydra spilling: the same weights as resident training, within a proven device budget."""

import pytest
import torch
from torch import nn

from sqlml.training.job import OptimizerSpec
from sqlml.training.large.arena import SpillDevice
from sqlml.training.large.layers import sequential_layers
from sqlml.training.large.partition import balance_plan, budget_plan
from sqlml.training.large.spill import SpillTrainer

from .conftest import max_diff, mlp

OPTIMIZERS = {
    "sgd": OptimizerSpec("sgd", lr=0.05, momentum=0.0),
    "sgd-momentum": OptimizerSpec("sgd", lr=0.05, momentum=0.9, weight_decay=1e-4),
    "adam": OptimizerSpec("adam", lr=1e-2),
    "adamw": OptimizerSpec("adamw", lr=1e-2, weight_decay=0.05),
}


def batches(n=5, rows=16, width=32, classes=3, seed=7):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(rows, width, generator=g), torch.randint(0, classes, (rows,), generator=g)) for _ in range(n)]


def resident(model, spec, data, seed=11, optimizer_out=None):
    optimizer = spec.build(model.parameters())
    torch.manual_seed(seed)
    for x, y in data:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    if optimizer_out is not None:
        optimizer_out.append(optimizer)
    return model


def spilled(model, spec, data, *, shards=4, slots=1, seed=11, **options):
    plan = balance_plan(sequential_layers(model), shards)
    probe = SpillTrainer(model, plan, spec, device_memory=1 << 40)
    slot, grads = probe.slot_bytes, probe.grad_reserve
    probe.close()
    budget = slots * slot + grads
    trainer = SpillTrainer(model, plan, spec, device_memory=budget, audit=True, **options)
    torch.manual_seed(seed)
    for x, y in data:
        trainer.step(x, lambda out, y=y: nn.functional.cross_entropy(out, y))
    return trainer


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_spilled_weights_are_bit_identical_to_resident(name):
    spec, data = OPTIMIZERS[name], batches()
    optimizers = []
    reference = resident(mlp(dropout=0.2), spec, data, optimizer_out=optimizers)
    model = mlp(dropout=0.2)
    trainer = spilled(model, spec, data, shards=4, slots=1)
    trainer.flush()
    assert max_diff(reference, model) == 0.0
    # the optimizer state moved with the shards and equals the resident optimizer's, tensor for tensor
    whole = optimizers[0].state
    per_shard = {}
    for shard, opt in zip(trainer.shards, trainer.optimizers):
        for p in shard.parameters():
            per_shard[len(per_shard)] = opt.state[p]
    for k, p in enumerate(reference.parameters()):
        assert whole[p].keys() == per_shard[k].keys()
        for key, value in whole[p].items():
            assert torch.equal(value, per_shard[k][key]), key
    if name != "sgd":
        trainer.release_device()
        assert any(trainer.store.buffers[0].data_ptr() <= v.data_ptr() < trainer.store.buffers[0].data_ptr() + trainer.store.sizes[0]
                   for v in per_shard[0].values() if v.dim() > 0)  # state lives in the shard's host buffer
    assert trainer.ledger.peak <= trainer.budget
    trainer.close()


@pytest.mark.parametrize(
    "options",
    [
        {"checkpoint_activations": False},
        {"prefetch": True},
        {"tier": "disk"},
        {"tier": "disk", "prefetch": True, "checkpoint_activations": False},
    ],
    ids=["keep-activations", "prefetch", "disk", "disk-prefetch-keep"],
)
def test_every_mode_matches_resident(options):
    spec, data = OPTIMIZERS["adam"], batches()
    reference = resident(mlp(dropout=0.2, batch_norm=True), spec, data)
    model = mlp(dropout=0.2, batch_norm=True)
    trainer = spilled(model, spec, data, shards=3, slots=2 if options.get("prefetch") else 1, **options)
    trainer.flush()
    assert max_diff(reference, model) == 0.0  # batch-norm running statistics included
    trainer.close()


def test_a_model_four_times_the_budget_trains_to_resident_weights():
    spec, data = OPTIMIZERS["sgd-momentum"], batches(n=4, width=64)
    reference = resident(mlp(width=64, depth=16), spec, data)
    model = mlp(width=64, depth=16)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    budget = param_bytes // 4
    plan = budget_plan(sequential_layers(model), budget, state_tensors_per_param=1)
    trainer = SpillTrainer(model, plan, spec, device_memory=budget, audit=True)
    torch.manual_seed(11)
    for x, y in data:
        trainer.step(x, lambda out, y=y: nn.functional.cross_entropy(out, y))
    assert trainer.ledger.peak <= budget < param_bytes
    trainer.flush()
    assert max_diff(reference, model) == 0.0
    trainer.close()


def test_budget_accounting_holds_at_every_unit():
    spec, data = OPTIMIZERS["adam"], batches(n=3)
    model = mlp(depth=6)
    trainer = spilled(model, spec, data, shards=5, slots=2)  # audit=True checks the tensors at every unit
    assert trainer.n_slots == 2
    assert 0 < trainer.ledger.peak <= trainer.budget
    # at rest: exactly the shards in slots are on the device, nothing else
    assert trainer.device_bytes() == trainer.ledger.current
    on_device = [i for i in range(len(trainer.shards)) if any(trainer.arena.owns(p) for p in trainer.shards[i].parameters())]
    assert sorted(on_device) == sorted(trainer.resident)
    trainer.release_device()
    assert trainer.device_bytes() == 0 and trainer.ledger.current == 0
    trainer.close()


def test_ledger_refuses_to_exceed_the_budget():
    from sqlml.training.large.arena import BudgetExceeded, Ledger

    ledger = Ledger(100)
    ledger.hold("a", 60)
    with pytest.raises(BudgetExceeded, match="over device_memory 100"):
        ledger.hold("b", 41)
    ledger.hold("a", 20)
    ledger.hold("b", 80)
    assert ledger.current == 100 and ledger.peak == 100


def test_inference_through_the_shards_equals_the_model():
    spec = OPTIMIZERS["sgd"]
    model = mlp(depth=4)
    trainer = spilled(model, spec, batches(n=2), shards=3)
    x = torch.randn(8, 32)
    model.eval()
    out = trainer.infer(x)
    trainer.release_device()
    assert torch.equal(out, model(x))
    trainer.close()


def test_trainers_share_one_device():
    spec, data = OPTIMIZERS["adam"], batches(n=3)
    refs = [resident(mlp(seed=s), spec, data) for s in (0, 1)]
    models = [mlp(seed=s) for s in (0, 1)]
    probe = SpillTrainer(models[0], balance_plan(sequential_layers(models[0]), 3), spec, device_memory=1 << 40)
    device = SpillDevice("cpu", 2 * probe.slot_bytes + probe.grad_reserve, probe.slot_bytes, probe.grad_reserve)
    probe.close()
    trainers = [SpillTrainer(m, balance_plan(sequential_layers(m), 3), spec, device_memory=device, audit=True) for m in models]
    torch.manual_seed(11)
    for x, y in data:  # alternate the models step by step through the same two slots
        rng = torch.get_rng_state()
        for t in trainers:
            torch.set_rng_state(rng)
            t.step(x, lambda out, y=y: nn.functional.cross_entropy(out, y))
    for t, ref, m in zip(trainers, refs, models):
        t.flush()
        assert max_diff(ref, m) == 0.0
    assert device.ledger.peak <= device.budget
    for t in trainers:
        t.close()


class WithUnused(nn.Module):
    """A layer with a parameter no forward reaches: it must get no gradient and no optimizer state."""

    def __init__(self, width):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.unused = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return self.linear(x)


def test_parameters_without_gradients_are_skipped_like_resident():
    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(32, 32), nn.ReLU(), WithUnused(32), nn.ReLU(), nn.Linear(32, 3))

    spec, data = OPTIMIZERS["adamw"], batches(n=3)
    reference = resident(build(), spec, data)
    model = build()
    trainer = spilled(model, spec, data, shards=3)
    trainer.flush()
    assert max_diff(reference, model) == 0.0
    unused = model[2].unused
    assert unused.grad is None and torch.equal(unused.detach(), torch.ones(32))  # AdamW's decay never touched it
    assert not any(unused is p for opt in trainer.optimizers if opt for p in opt.state)
    trainer.close()


@pytest.mark.parametrize("name, slots, prefetch", [("sgd", 3, False), ("adam", 3, False), ("adamw", 4, True)])
def test_shards_kept_across_the_turn_skip_recompute_and_still_match_resident(name, slots, prefetch):
    from sqlml.training.large.residency import replay

    spec, data = OPTIMIZERS[name], batches(n=4)
    reference = resident(mlp(depth=6, dropout=0.2, batch_norm=True), spec, data)
    model = mlp(depth=6, dropout=0.2, batch_norm=True)
    trainer = spilled(model, spec, data, shards=6, slots=slots, prefetch=prefetch)
    assert trainer.n_slots == slots and trainer.kept  # some shards never leave between their forward and backward
    assert trainer.recomputed == len(data) * (len(trainer.shards) - 1 - len(trainer.kept))
    trainer.flush()
    assert max_diff(reference, model) == 0.0  # dropout masks and batch-norm statistics included
    # the replay predicts what a steady-state step moves, byte for byte
    before = trainer.bytes_moved
    x, y = batches(n=1)[0]
    trainer.step(x, lambda out: nn.functional.cross_entropy(out, y))
    layouts = trainer.layouts
    predicted = replay([lay.weights_bytes for lay in layouts], [lay.state_capacity for lay in layouts], slots, prefetch=prefetch)
    assert trainer.bytes_moved - before == predicted.moved and trainer.kept == predicted.kept
    trainer.close()


def test_the_spill_planner_cuts_finer_when_that_moves_and_recomputes_less():
    from sqlml.training.large.partition import spill_plan
    from sqlml.training.large.residency import kept_shards

    model = mlp(width=512, depth=8)  # 1 MB a layer: what moves and what is recomputed outweigh a unit's fixed cost
    layers = sequential_layers(model)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    budget = weights // 2
    fewest = budget_plan(layers, budget, state_tensors_per_param=0)
    chosen = spill_plan(layers, budget, state_tensors_per_param=0, batch_size=64)
    assert chosen.n_shards > fewest.n_shards  # smaller shards: room for more slots
    shards = lambda plan: [nn.Sequential(*layers[a:b]) for a, b in plan.ranges()]  # noqa: E731
    assert len(kept_shards(shards(chosen), OPTIMIZERS["sgd"], budget)) > len(kept_shards(shards(fewest), OPTIMIZERS["sgd"], budget))
    # with the whole model in budget nothing needs cutting
    assert spill_plan(layers, 4 * weights, state_tensors_per_param=0).n_shards == 1
