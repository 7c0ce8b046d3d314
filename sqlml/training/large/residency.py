"""Which shards a spilled step moves and which it keeps: the unit queue replayed.

A spilled step is a queue of shard units (forward 0..S-2, then backward S-1..0); the
device holds ``slots`` shards. ``replay`` runs ``SpillTrainer``'s residency policy on
that queue without touching a tensor: a free slot first, else the shard used furthest
in the future leaves (Belady's rule: the queue is known), a shard that changed is
written back when it leaves, and with prefetch the next unit's shard comes in beside
the current one. Two steps are replayed; the second, which starts from what the first
left resident, is the steady state every later step repeats.

What it tells: the bytes one step moves, and which shards stay in their slot from
their forward to their backward. Recomputing such a shard in backward (Hydra's
activation checkpointing) would buy no memory back that keeping its activations does
not, so the trainer keeps their graphs, as Hydra does for the last shard; and the
planner (``plan_for_budget``) uses both numbers to pick the cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def unit_queue(n_shards: int) -> list[tuple[int, bool]]:
    """(shard, backward) in the order a step runs them; the last shard's forward is merged with its backward."""
    return [(i, False) for i in range(n_shards - 1)] + [(i, True) for i in reversed(range(n_shards))]


@dataclass
class Replay:
    moved: int = 0  # bytes one steady-state step copies in and out
    kept: set[int] = field(default_factory=set)  # shards that stay in a slot from forward to backward
    loads: int = 0
    write_backs: int = 0


def replay(weights: list[int], states: list[int], slots: int, *, prefetch: bool = False) -> Replay:
    """Replay two steps of ``len(weights)`` shards (weight and optimizer-state bytes each) on ``slots`` slots."""
    n_shards = len(weights)
    units = unit_queue(n_shards)
    n = len(units)
    resident: dict[int, dict] = {}  # shard -> {"state": bool, "dirty": bool}
    result = Replay()
    evicted: list[tuple[int, int]] = []  # (position, shard) in the second step
    counting = False

    def next_use(shard: int, pos: int) -> int:
        return next((d for d in range(1, n + 1) if units[(pos + d) % n][0] == shard), n + 1)

    def evict(shard: int, pos: int) -> None:
        res = resident.pop(shard)
        if counting:
            evicted.append((pos, shard))
            if res["dirty"]:
                result.moved += weights[shard] + (states[shard] if res["state"] else 0)
                result.write_backs += 1

    def ensure(shard: int, with_state: bool, pos: int, keep: set[int]) -> None:
        res = resident.get(shard)
        if res is not None:
            if with_state and not res["state"]:
                res["state"] = True
                if counting:
                    result.moved += states[shard]
            return
        if len(resident) >= slots:
            candidates = [s for s in resident if s not in keep]
            if not candidates:
                return  # no room for a prefetch: it waits for its turn
            evict(max(candidates, key=lambda s: next_use(s, pos)), pos)
        resident[shard] = {"state": with_state, "dirty": False}
        if counting:
            result.moved += weights[shard] + (states[shard] if with_state else 0)
            result.loads += 1

    for step in range(2):
        counting = step == 1
        for pos, (shard, backward) in enumerate(units):
            ensure(shard, backward, pos, {shard})
            following, following_backward = units[(pos + 1) % n]
            if prefetch and following != shard:
                ensure(following, following_backward, pos, {shard, following})
            if backward:
                resident[shard]["dirty"] = True  # the shard's optimizer stepped
    last = n // 2  # the position of the last shard's merged forward and backward
    for forward, (shard, _) in enumerate(units[:last]):
        backward = n - 1 - forward
        if not any(forward <= pos < backward and victim == shard for pos, victim in evicted):
            result.kept.add(shard)
    return result


def kept_shards(shards, optimizer, device_memory: int, *, prefetch: bool = False) -> set[int]:
    """The shards a trainer of these shard modules keeps across the turn within ``device_memory``
    (the slots are counted as ``SpillTrainer`` counts them; none if even one does not fit)."""
    from sqlml.training.large.layers import shard_layout
    from sqlml.training.large.optimizers import state_tensors_per_param

    layouts = [shard_layout(shard, state_tensors_per_param(optimizer)) for shard in shards]
    slot = max(max(lay.total_bytes for lay in layouts), 64)
    slots = min(len(shards), (device_memory - max(lay.grad_bytes for lay in layouts)) // slot)
    if slots < (2 if prefetch else 1):
        return set()
    return replay([lay.weights_bytes for lay in layouts], [lay.state_capacity for lay in layouts], slots, prefetch=prefetch).kept
