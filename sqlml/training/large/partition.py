"""Where to cut a model into shards.

Four ways, one result (a ``ShardPlan``: the first layer of every shard):

- ``balance_plan(layers, n, by='bytes')``  n shards, the largest as small as possible, weighing
  each layer by its parameter bytes (``by='bytes'``) or by its forward+backward time
  measured on a sample batch (``by='time'``, torchgpipe's balance_by_time idea);
- ``manual_plan(layers, boundaries)``      the user's cuts (``boundaries := [3, 6]``: shards
  start at layers 0, 3 and 6), as Hydra's ``Presharded`` takes them;
- ``budget_plan(layers, capacity, ...)``   the fewest shards whose footprint (weights,
  gradients, optimizer state) fits a device slot, then balanced among themselves;
- ``spill_plan(layers, device_memory, ...)`` the cut a spilled step runs fastest with under a
  device budget: fewer, bigger shards leave room for fewer slots, smaller ones for more,
  and each cut is scored by replaying its steps (``residency``): the bytes a step moves
  plus the forward work it recomputes.

Contiguous partitioning minimising the largest part is solved exactly: bisection on the
part limit with a greedy feasibility check (greedy is optimal for "fewest contiguous
parts under a limit").
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from sqlml.errors import TrainingError
from sqlml.training.large.layers import describe_layer, shard_layout
from sqlml.training.large.residency import replay
from sqlml.training.large.sizes import format_bytes


@dataclass(frozen=True)
class ShardPlan:
    boundaries: tuple[int, ...]  # first layer of each shard; boundaries[0] == 0
    n_layers: int
    layer_names: tuple[str, ...]
    method: str  # 'bytes' | 'time' | 'manual' | 'budget'

    @property
    def n_shards(self) -> int:
        return len(self.boundaries)

    def ranges(self) -> list[tuple[int, int]]:
        ends = list(self.boundaries[1:]) + [self.n_layers]
        return list(zip(self.boundaries, ends))

    def describe(self) -> list[str]:
        return [", ".join(self.layer_names[a:b]) for a, b in self.ranges()]

    def to_dict(self) -> dict:
        return {"boundaries": list(self.boundaries), "n_layers": self.n_layers, "method": self.method}


def _plan(layers, boundaries, method) -> ShardPlan:
    return ShardPlan(tuple(boundaries), len(layers), tuple(describe_layer(m) for m in layers), method)


def layer_param_bytes(layers) -> list[int]:
    return [sum(p.numel() * p.element_size() for p in m.parameters()) for m in layers]


def layer_footprints(layers, state_tensors_per_param: int) -> list[int]:
    """Device bytes each layer needs while active: weights + buffers + optimizer state + gradients."""
    out = []
    for m in layers:
        lay = shard_layout(m, state_tensors_per_param)
        out.append(lay.total_bytes + lay.grad_bytes)
    return out


def measure_layer_times(layers, sample, repeats: int = 3) -> list[float]:
    """Median forward+backward seconds per layer on ``sample`` (the batch flows through in order).

    The probe leaves no trace: the RNG stream (dropout), batch-norm statistics and
    gradients are as they were.
    """
    import torch

    buffers = [[b.detach().clone() for b in layer.buffers()] for layer in layers]
    times = []
    with torch.random.fork_rng(devices=[]):
        x = sample
        for layer in layers:
            runs = []
            for _ in range(repeats):
                inp = x.detach()
                if inp.is_floating_point():
                    inp.requires_grad_(True)
                start = time.perf_counter()
                out = layer(inp)
                if out.requires_grad:
                    out.backward(torch.ones_like(out))
                runs.append(time.perf_counter() - start)
            times.append(statistics.median(runs))
            with torch.no_grad():
                x = layer(x)
    with torch.no_grad():
        for layer, saved in zip(layers, buffers):
            layer.zero_grad(set_to_none=True)
            for b, value in zip(layer.buffers(), saved):
                b.copy_(value)
    return times


def min_parts(weights: list[float], limit: float) -> list[int] | None:
    """Greedy contiguous cut: start indices of the fewest parts with sum <= limit (None if a weight > limit)."""
    starts, total = [0], 0.0
    for k, w in enumerate(weights):
        if w > limit:
            return None
        if total + w > limit:
            starts.append(k)
            total = 0.0
        total += w
    return starts


def balance(weights: list[float], n: int) -> list[int]:
    """Start indices of ``n`` contiguous non-empty parts minimising the largest part sum."""
    if n < 1 or n > len(weights):
        raise ValueError(f"cannot cut {len(weights)} layers into {n} parts")
    lo, hi = max(weights), sum(weights)
    for _ in range(200):
        if hi - lo <= 1e-12 * max(hi, 1.0):
            break
        mid = (lo + hi) / 2
        starts = min_parts(weights, mid)
        if starts is not None and len(starts) <= n:
            hi = mid
        else:
            lo = mid
    return _split_to(min_parts(weights, hi), weights, n)


def _split_to(starts: list[int], weights: list[float], n: int) -> list[int]:
    """Add cuts (never raising the largest part) until there are exactly ``n`` parts."""
    starts = list(starts)
    while len(starts) < n:
        ends = starts[1:] + [len(weights)]
        _, a, b = max((sum(weights[a:b]), a, b) for a, b in zip(starts, ends) if b - a > 1)
        cut = min(range(a + 1, b), key=lambda c: max(sum(weights[a:c]), sum(weights[c:b])))
        starts = sorted(starts + [cut])
    return starts


def balance_plan(layers, n: int, *, by: str = "bytes", sample=None) -> ShardPlan:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise TrainingError(f"shards must be a whole number of at least 1, got {n!r}")
    if n > len(layers):
        raise TrainingError(f"cannot cut a model of {len(layers)} layers into {n} shards")
    if by == "bytes":
        weights = [float(b) for b in layer_param_bytes(layers)]
    elif by == "time":
        if sample is None:
            raise TrainingError("balancing shards by time needs a sample batch")
        weights = measure_layer_times(layers, sample)
    else:
        raise TrainingError(f"balance must be 'bytes' or 'time', got {by!r}")
    if sum(weights) == 0:
        weights = [1.0] * len(layers)
    return _plan(layers, balance(weights, n), by)


def manual_plan(layers, boundaries) -> ShardPlan:
    """``boundaries``: the first layer of each shard after the first (0 may be given too)."""
    if not isinstance(boundaries, (list, tuple)) or not all(
        isinstance(b, int) and not isinstance(b, bool) for b in boundaries
    ):
        raise TrainingError(f"boundaries must be a list of layer numbers, got {boundaries!r}")
    cuts = [b for b in boundaries if b != 0]
    if any(b < 0 or b >= len(layers) for b in cuts):
        raise TrainingError(
            f"boundaries {list(boundaries)} must be layer numbers between 1 and {len(layers) - 1} "
            f"(the model has {len(layers)} layers)"
        )
    if sorted(set(cuts)) != cuts:
        raise TrainingError(f"boundaries {list(boundaries)} must be strictly increasing")
    return _plan(layers, [0] + cuts, "manual")


def budget_plan(layers, capacity: int, *, state_tensors_per_param: int, optimizer: str = "") -> ShardPlan:
    """The fewest shards whose footprint fits ``capacity`` bytes, balanced among themselves."""
    sizes = layer_footprints(layers, state_tensors_per_param)
    biggest = max(range(len(sizes)), key=sizes.__getitem__)
    if sizes[biggest] > capacity:
        what = f"weights, gradients and {optimizer} state" if optimizer else "weights and gradients"
        raise TrainingError(
            f"layer {biggest} ({describe_layer(layers[biggest])}) alone needs {format_bytes(sizes[biggest])} "
            f"on the device for its {what}, more than the {format_bytes(capacity)} a shard may use under this "
            f"device_memory. A layer is the smallest unit a model can be cut into: raise device_memory, turn "
            f"prefetch off, or use an optimizer with less state (SGD)."
        )
    starts = min_parts([float(s) for s in sizes], float(capacity))
    balanced = balance([float(s) for s in sizes], len(starts))
    return _plan(layers, balanced, "budget")


#: compute per copied byte: floating-point operations a device does in the time it copies
#: one byte to or from the host store. A CPU thread does ~50-100 GFLOP/s against 5-10 GB/s
#: of memcpy; a GPU ~10^14 FLOP/s against ~25-50 GB/s over PCIe. Only the order matters:
#: it says whether recomputing a shard's forward costs more than moving it.
FLOPS_PER_COPIED_BYTE = {"cpu": 10.0, "cuda": 2000.0}
#: bytes-worth of fixed cost per shard unit (launches, Python, a ledger entry)
UNIT_COST_BYTES = 256 * 1024
#: cuts tried beyond the fewest shards that fit (a replay is quadratic in the shards)
MAX_CANDIDATES = 24


def spill_plan(layers, device_memory: int, *, state_tensors_per_param: int, optimizer: str = "", prefetch: bool = False,
               recompute: bool = True, batch_size: int = 256, device: str = "cpu") -> ShardPlan:
    """The cut whose steps move and recompute least under ``device_memory``.

    The fewest shards that fit (``budget_plan``) leave room for one slot, or two with
    prefetch; cutting finer makes room for more slots, so that more shards stay on the
    device across the turn of the step (never moved, never recomputed). Each candidate
    from the fewest shards up is replayed and scored by bytes moved per step plus its
    recomputed forward work (``2 x batch_size x parameters`` FLOPs of the shards that
    leave between their forward and backward) over ``FLOPS_PER_COPIED_BYTE``; ties go
    to fewer shards.
    """
    from torch import nn

    slots_wanted = 2 if prefetch else 1
    fewest = budget_plan(layers, device_memory // slots_wanted, state_tensors_per_param=state_tensors_per_param,
                         optimizer=optimizer)
    sizes = [float(x) for x in layer_footprints(layers, state_tensors_per_param)]
    ratio = FLOPS_PER_COPIED_BYTE.get(str(device).split(":")[0], FLOPS_PER_COPIED_BYTE["cpu"])
    best, best_cost = fewest, None
    for n in range(fewest.n_shards, min(len(layers), fewest.n_shards + MAX_CANDIDATES) + 1):
        plan = fewest if n == fewest.n_shards else _plan(layers, balance(sizes, n), "budget")
        shards = [nn.Sequential(*layers[a:b]) for a, b in plan.ranges()]
        layouts = [shard_layout(shard, state_tensors_per_param) for shard in shards]
        slot = max(max(lay.total_bytes for lay in layouts), 64)
        slots = min(n, (device_memory - max(lay.grad_bytes for lay in layouts)) // slot)
        if slots < slots_wanted:
            continue
        result = replay([lay.weights_bytes for lay in layouts], [lay.state_capacity for lay in layouts], slots,
                        prefetch=prefetch)
        recomputed = 0
        if recompute:
            recomputed = sum(sum(p.numel() for p in shard.parameters()) for i, shard in enumerate(shards[:-1])
                             if i not in result.kept)
        cost = result.moved + 2 * batch_size * recomputed / ratio + UNIT_COST_BYTES * (2 * n - 1)
        if best_cost is None or cost < best_cost:
            best, best_cost = plan, cost
    return best
