"""Hydra-style model spilling: train a model larger than the device, one shard at a time.

Shards live in a host store (RAM, pinned under CUDA, or memory-mapped files). The
device holds a fixed arena of slots. A training step is a queue of shard units:

    forward  0, 1, ..., S-2          no autograd; only the boundary activations are kept
    backward S-1, S-2, ..., 0        reload the shard (weights + optimizer state), recompute
                                     its forward from the saved input, backpropagate the
                                     upstream gradient, step the shard's optimizer

The last shard's forward is merged with its backward. Which shard leaves a slot is
decided with the unit queue in hand (the one used furthest in the future), and a dirty
shard is written back only when it leaves, so with room for several shards the ones at
the turn of the queue never move. Those shards (``kept``: ``residency.replay`` finds
them) keep their autograd graph from the forward instead of recomputing it, as the last
shard does: recomputing a shard that never left the device saves no memory. With ``prefetch`` the next unit's shard is copied in
while the current one computes (a background thread on CPU, a side stream on CUDA).

``checkpoint_activations=False`` keeps each shard's autograd graph from the forward
instead of recomputing it. The graph's references to the shard's weights are swapped
for (shard, offset) markers, so a shard may leave the device between its forward and
its backward and its weights are re-read wherever it lands: no recompute, spilled
weights, but activation memory as in resident training.

On CPU the result is bit-identical to resident training with one optimizer over the
whole model (tests). The ledger proves the device-resident weights, optimizer state
and gradients never exceeded ``device_memory``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlml.errors import TrainingError
from sqlml.training.large.arena import SpillDevice
from sqlml.training.large.layers import sequential_layers, shard_layout
from sqlml.training.large.optimizers import per_param_state, state_tensors_per_param
from sqlml.training.large.partition import ShardPlan
from sqlml.training.large.residency import replay, unit_queue
from sqlml.training.large.sizes import format_bytes
from sqlml.training.large.store import HostStore
from sqlml.training.large.views import ShardViews


@dataclass
class _Resident:
    slot: int
    with_state: bool
    dirty: bool = False
    handle: object = None


def slots_needed(prefetch: bool) -> int:
    return 2 if prefetch else 1


class SpillTrainer(ShardViews):
    def __init__(
        self,
        model,
        plan: ShardPlan,
        optimizer,
        *,
        device_memory: int,
        device="cpu",
        tier: str = "ram",
        spill_dir: str | None = None,
        prefetch: bool = False,
        checkpoint_activations: bool = True,
        audit: bool = False,
    ):
        import torch
        from torch import nn

        self.device = torch.device(device)
        self.plan = plan
        self.optimizer_spec = optimizer
        self.prefetch = prefetch
        self.recompute = checkpoint_activations
        self.audit_every_unit = audit
        layers = sequential_layers(model)
        if len(layers) != plan.n_layers:
            raise TrainingError(f"the shard plan has {plan.n_layers} layers but the model has {len(layers)}")
        self.model = model
        self.shards = [nn.Sequential(*layers[a:b]) for a, b in plan.ranges()]
        self.optimizers = [
            optimizer.build(s.parameters()) if any(p.requires_grad for p in s.parameters()) else None
            for s in self.shards
        ]
        self.layouts = [shard_layout(s, state_tensors_per_param(optimizer)) for s in self.shards]
        self._tensor_lists: dict[int, list] = {}
        self._view_cache: dict[tuple, tuple] = {}
        self.slot_bytes = max(max(lay.total_bytes for lay in self.layouts), 64)
        self.grad_reserve = max(lay.grad_bytes for lay in self.layouts)
        self.owns_device = not isinstance(device_memory, SpillDevice)
        if not self.owns_device:  # shared with other trainers (a grid worker)
            self.shared = device_memory
            self.budget = self.shared.budget
            if self.slot_bytes > self.shared.slot_bytes or self.grad_reserve > self.shared.grad_reserve:
                raise TrainingError(self._does_not_fit(self.slot_bytes + self.grad_reserve))
        else:
            self.budget = int(device_memory)
            need = slots_needed(prefetch) * self.slot_bytes + self.grad_reserve
            if need > self.budget:
                raise TrainingError(self._does_not_fit(need))
            self.shared = SpillDevice(self.device, self.budget, self.slot_bytes, self.grad_reserve,
                                      prefetch=prefetch, n_slots=len(self.shards))
        self.device = self.shared.device
        self.shared.trainers.append(self)
        self.prefetch = self.shared.prefetch
        self.ledger = self.shared.ledger
        self.arena = self.shared.arena
        self.mover = self.shared.mover
        pin = self.device.type == "cuda" and tier == "ram"
        self.store = HostStore([lay.total_bytes for lay in self.layouts], tier=tier, directory=spill_dir, pin=pin)
        for i in range(len(self.shards)):
            self._adopt_weights(i)
        self.resident: dict[int, _Resident] = {}
        self.units = unit_queue(len(self.shards))
        # shards whose weights stay in their slot from forward to backward keep their graph:
        # recomputing them would buy no memory back (Hydra does this for the last shard)
        self.kept = replay([lay.weights_bytes for lay in self.layouts], [lay.state_capacity for lay in self.layouts],
                           self.n_slots, prefetch=self.prefetch).kept if self.recompute else set()
        self.recomputed = 0
        self.bytes_moved = 0
        self.steps = 0

    # -- sizes and errors ---------------------------------------------------------------
    def _does_not_fit(self, need: int) -> str:
        sizes = [lay.total_bytes + lay.grad_bytes for lay in self.layouts]
        big = max(range(len(sizes)), key=sizes.__getitem__)
        a, b = self.plan.ranges()[big]
        names = ", ".join(self.plan.layer_names[a:b])
        extra = " plus room for the prefetched next shard" if self.prefetch else ""
        return (
            f"device_memory {format_bytes(self.budget)} cannot hold one shard{extra}: the largest, "
            f"shard {big} (layers {a}-{b - 1}: {names}), needs {format_bytes(sizes[big])} for its "
            f"weights, gradients and {self.optimizer_spec.name} state; {format_bytes(need)} in all. "
            f"Cut the model into more shards, raise device_memory"
            + (", or turn prefetch off." if self.prefetch else ".")
        )

    @property
    def n_slots(self) -> int:
        return self.arena.n_slots

    # -- residency ------------------------------------------------------------------------
    def _occupied_bytes(self, i: int, with_state: bool) -> int:
        layout = self.layouts[i]
        n = sum(e.nbytes for e in layout.weights)
        return n + (layout.state_bytes if with_state else 0)

    def _next_use(self, shard: int, pos: int) -> int:
        n = len(self.units)
        for d in range(1, n + 1):
            if self.units[(pos + d) % n][0] == shard:
                return d
        return n + 1

    def _free_slot(self, pos: int, keep: set[int]) -> int | None:
        """A slot for a shard of this trainer (see ``SpillDevice.free_slot``)."""

        def own_victim():
            candidates = [s for s in self.resident if s not in keep]
            if not candidates:
                return None
            victim = max(candidates, key=lambda s: self._next_use(s, pos))
            slot = self.resident[victim].slot
            self.evict(victim)
            return slot

        return self.shared.free_slot(self, own_victim)

    def evict(self, i: int) -> None:
        """Send shard ``i`` back to the host store (written back if it changed)."""
        import torch

        res = self.resident.pop(i)
        slot_flat, host = self.arena.slots[res.slot], self.store[i]
        layout = self.layouts[i]
        if res.dirty:
            end = layout.total_bytes if res.with_state else layout.weights_bytes

            def write_back(src=slot_flat[:end], dst=host[:end]):
                with torch.no_grad():
                    dst.copy_(src, non_blocking=True)

            self.mover.submit(write_back)
            self.bytes_moved += end
        self._point(i, host, with_state=True, key=("host", i))
        self.shared.owners[res.slot] = None
        self.ledger.release(f"slot {res.slot}")

    def _load(self, i: int, slot: int, with_state: bool) -> None:
        import torch

        layout = self.layouts[i]
        start = 0
        if i in self.resident:  # weights already there: add the optimizer state
            start = layout.weights_bytes
        end = layout.total_bytes if with_state else layout.weights_bytes
        src, dst = self.store[i][start:end], self.arena.slots[slot][start:end]

        def read(src=src, dst=dst):
            with torch.no_grad():
                dst.copy_(src, non_blocking=True)

        handle = self.mover.submit(read) if end > start else None
        self.bytes_moved += end - start
        res = self.resident.get(i)
        if res is None:
            res = self.resident[i] = _Resident(slot, with_state)
            self.shared.owners[slot] = (self, i)
        res.with_state = res.with_state or with_state
        res.handle = handle or res.handle
        self.ledger.hold(f"slot {slot}", self._occupied_bytes(i, res.with_state))
        self._point(i, self.arena.slots[slot], with_state=res.with_state, key=("slot", slot))

    def _ensure(self, i: int, with_state: bool, pos: int, keep: set[int]) -> bool:
        """Start bringing shard ``i`` in (weights, and state if asked); False if no slot is free."""
        res = self.resident.get(i)
        if res is not None and (res.with_state or not with_state):
            return True
        if res is None:
            slot = self._free_slot(pos, keep | {i})
            if slot is None:
                return False
        else:
            slot = res.slot
        self._load(i, slot, with_state)
        return True

    def _acquire(self, pos: int) -> int:
        i, backward = self.units[pos]
        self._ensure(i, backward, pos, keep={i})
        res = self.resident[i]
        self.shared.touch(res.slot)
        if res.handle is not None:
            res.handle.wait()
            res.handle = None
        if self.prefetch:
            j, j_backward = self.units[(pos + 1) % len(self.units)]
            if j != i:
                self._ensure(j, j_backward, pos, keep={i, j})
        return i

    # -- one training step ------------------------------------------------------------------
    def step(self, x, loss_fn):
        """One step on batch ``x``; ``loss_fn(output)`` gives the scalar loss. Returns the loss (detached)."""
        import torch

        S = len(self.shards)
        acts = [x]
        rng = {}
        graphs = {}  # shards that keep their graph: (input, output)
        for pos in range(S - 1):
            i = self._acquire(pos)
            if self.recompute and i not in self.kept:
                rng[i] = self._rng_state()
                with torch.no_grad():
                    acts.append(self.shards[i](acts[-1]))
            else:
                inp = self._as_input(acts[-1], i)
                with self._saved_tensor_hooks():
                    out = self.shards[i](inp)
                graphs[i] = (inp, out)
                acts.append(out.detach())
            if self._has_buffers(i):
                self.resident[i].dirty = True
            self._audit(pos)
        grad = None
        loss = None
        for pos in range(S - 1, 2 * S - 1):
            i = self._acquire(pos)
            undo = None
            if i == S - 1:
                inp = self._as_input(acts[i], i)
                out = self.shards[i](inp)  # the last shard's forward happens only here
            elif i in rng:
                inp = self._as_input(acts[i], i)
                out, undo = self._recompute(i, inp, rng[i])
                self.recomputed += 1
            else:
                inp, out = graphs[i]
            if i == S - 1:
                loss = loss_fn(out)
                loss.backward()
            else:
                torch.autograd.backward(out, grad)
            if undo is not None:
                undo()
            grad = inp.grad if inp.requires_grad else None
            self._step_shard(i)
            self._audit(pos)
        self.steps += 1
        return loss.detach()

    def prefetch_first(self) -> None:
        """Start copying the first unit's shard in (the scheduler predicts this model runs next)."""
        if self.prefetch:
            self._ensure(self.units[0][0], self.units[0][1], 0, keep={self.units[0][0]})

    def infer(self, x):
        """Forward only, shard by shard through the device (evaluation, prediction)."""
        import torch

        with torch.no_grad():
            for i in range(len(self.shards)):
                pos = i if i < len(self.shards) - 1 else len(self.shards) - 1
                self._ensure(i, False, pos, keep={i})
                res = self.resident[i]
                self.shared.touch(res.slot)
                if res.handle is not None:
                    res.handle.wait()
                    res.handle = None
                x = self.shards[i](x)
                if self._has_buffers(i):
                    res.dirty = True
        return x

    def _as_input(self, act, i: int):
        inp = act.detach()
        if i > 0 and inp.is_floating_point():
            inp.requires_grad_(True)
        return inp

    def _has_buffers(self, i: int) -> bool:
        return self.shards[i].training and any(True for _ in self.shards[i].buffers())

    def _rng_state(self):
        import torch

        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _recompute(self, i: int, inp, rng):
        """The shard's forward again, with the RNG of the first pass; returns (output, undo).

        Batch norm updated its running statistics in the first pass; the recompute updates
        them again, so ``undo()`` puts the first pass's values back — after the backward,
        since batch norm saves those tensors for it.
        """
        import torch

        now = self._rng_state()
        torch.set_rng_state(rng[0])
        if rng[1] is not None:
            torch.cuda.set_rng_state(rng[1], self.device)
        buffers = [b.clone() for b in self.shards[i].buffers()] if self._has_buffers(i) else None
        out = self.shards[i](inp)
        torch.set_rng_state(now[0])
        if now[1] is not None:
            torch.cuda.set_rng_state(now[1], self.device)

        def undo():
            if buffers is not None:
                with torch.no_grad():
                    for b, saved in zip(self.shards[i].buffers(), buffers):
                        b.copy_(saved)

        return out, undo

    def _step_shard(self, i: int) -> None:
        opt = self.optimizers[i]
        res = self.resident[i]
        if opt is not None:
            grads = sum(p.grad.numel() * p.grad.element_size() for p in self.shards[i].parameters() if p.grad is not None)
            self.ledger.hold("gradients", grads)
            opt.step()
            self._adopt_state(i, self.arena.slots[res.slot])
            self.ledger.hold(f"slot {res.slot}", self._occupied_bytes(i, True))
            self._audit_now()
            opt.zero_grad(set_to_none=True)
            self.ledger.release("gradients")
        res.dirty = True

    def _saved_tensor_hooks(self):
        """Autograd hooks that save arena tensors as (shard, offset) and re-read them on use."""
        import torch

        arena = self.arena
        elem_flat = {}

        def pack(t):
            if t.device != arena.device or not arena.owns(t):
                return t
            byte = t.storage_offset() * t.element_size()
            slot = byte // arena.slot_bytes
            return ("arena", self.shared.owners[slot][1], byte - slot * arena.slot_bytes, t.dtype, t.size(), t.stride())

        def unpack(packed):
            if not isinstance(packed, tuple):
                return packed
            _, shard, rel, dtype, size, stride = packed
            res = self.resident[shard]
            if dtype not in elem_flat:
                elem_flat[dtype] = arena.flat.view(dtype)
            itemsize = _itemsize(dtype)
            offset = (res.slot * arena.slot_bytes + rel) // itemsize
            return elem_flat[dtype].as_strided(size, stride, offset)

        return torch.autograd.graph.saved_tensors_hooks(pack, unpack)

    # -- the budget proof ------------------------------------------------------------------
    def device_bytes(self) -> int:
        """Bytes of weights, optimizer state and gradients of every shard found on the device now.

        Counted from the tensors themselves, independently of the ledger: on CUDA every
        tensor on the device; on CPU (where host and device share memory) weights and state
        that live in the arena, plus every gradient (gradients exist only on the device).
        """
        counted = 0
        for i, shard in enumerate(self.shards):
            kept = self._tensors(i)
            if self.optimizers[i] is not None:
                for p in shard.parameters():
                    kept += [v for _, v in per_param_state(self.optimizers[i], p)]
            grads = [p.grad for p in shard.parameters() if p.grad is not None]
            if self.device.type == "cpu":
                on_device = [t for t in kept if self.arena.owns(t)] + grads
            else:
                on_device = [t for t in kept + grads if t.device == self.device]
            counted += sum(t.numel() * t.element_size() for t in on_device)
        return counted

    def _audit(self, pos: int) -> None:
        if self.audit_every_unit:
            self._audit_now()

    def _audit_now(self) -> None:
        if not self.audit_every_unit:
            return
        found = sum(t.device_bytes() for t in self.shared.trainers)
        if found != self.ledger.current or found > self.budget:
            raise AssertionError(
                f"resident bytes on the device {found} != ledger {self.ledger.current} (budget {self.budget})"
            )

    # -- results ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every dirty resident shard back to the host store (it stays resident, clean)."""
        import torch

        for i, res in list(self.resident.items()):
            if res.handle is not None:
                res.handle.wait()
                res.handle = None
            if res.dirty:
                layout = self.layouts[i]
                end = layout.total_bytes if res.with_state else layout.weights_bytes
                src, dst = self.arena.slots[res.slot][:end], self.store[i][:end]
                self.mover.submit(lambda src=src, dst=dst: dst.copy_(src, non_blocking=True))
                self.bytes_moved += end
                res.dirty = False
        self.mover.drain()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def release_device(self) -> None:
        """Flush and move every shard back to the host store (the arena is empty afterwards)."""
        self.flush()
        for i in list(self.resident):
            self.resident[i].dirty = False
            self.evict(i)
        self.mover.drain()

    def detach_model(self):
        """The trained model on CPU with memory of its own (no longer views of the host store)."""
        import torch

        self.release_device()
        with torch.no_grad():
            for i in range(len(self.shards)):
                for t in self._tensors(i):
                    t.data = t.data.clone()
        return self.model

    def close(self) -> None:
        self.release_device()
        if self in self.shared.trainers:
            self.shared.trainers.remove(self)
        if self.owns_device:
            self.shared.close()
        self.store.close()

    # -- checkpoints -----------------------------------------------------------------------
    def shard_states(self):
        """One ``{"weights", "optimizer"}`` dict per shard, read from the host store (after a flush)."""
        self.flush()
        for i, shard in enumerate(self.shards):
            weights = {k: v.detach().clone() for k, v in shard.state_dict().items()}
            opt = self.optimizers[i].state_dict() if self.optimizers[i] is not None else None
            yield {"weights": weights, "optimizer": _clone_state(opt)}

    def restore_shards(self, states) -> None:
        """Load per-shard ``{"weights", "optimizer"}`` dicts (from ``shard_states``) into the host store."""
        self.release_device()
        for i, state in zip(range(len(self.shards)), states, strict=True):
            self.shards[i].load_state_dict(state["weights"])  # copies into the host views
            if self.optimizers[i] is not None and state["optimizer"] is not None:
                self.optimizers[i].load_state_dict(state["optimizer"])
                self._adopt_state(i, self.store[i])

    def save(self, directory, *, cursor: dict | None = None, extra: dict | None = None):
        from sqlml.training.large import checkpoint

        extra = dict(extra or {}, plan=self.plan.to_dict(), optimizer=self.optimizer_spec.name)
        return checkpoint.save_shards(
            directory, self.shard_states(), step=self.steps, cursor=cursor, extra=extra,
            rng=checkpoint.rng_state(self.device),
        )

    def load(self, directory, *, restore_rng: bool = True) -> dict:
        """Resume from a checkpoint written by ``save``; returns its meta (cursor, extra, step)."""
        from sqlml.training.large import checkpoint

        meta = checkpoint.read_meta(directory)
        if meta["shards"] != len(self.shards):
            raise TrainingError(
                f"the checkpoint in {directory} has {meta['shards']} shards, this run has {len(self.shards)}; "
                f"resume with the same shard options"
            )
        self.restore_shards(checkpoint.load_shard(directory, i) for i in range(len(self.shards)))
        self.steps = meta["step"]
        rng = checkpoint.load_rng(directory)
        if restore_rng and rng is not None:
            checkpoint.set_rng_state(rng, self.device)
        return meta

    def stats(self) -> dict:
        return {
            "shards": len(self.shards),
            "slots": self.n_slots,
            "slot_bytes": self.slot_bytes,
            "device_memory": self.budget,
            "peak_resident_bytes": self.ledger.peak,
            "bytes_moved": self.bytes_moved,
            "copy_seconds": round(self.mover.seconds, 4),
            "steps": self.steps,
            "tier": self.store.tier,
            "prefetch": self.prefetch,
            "checkpoint_activations": self.recompute,
        }


def _clone_state(state):
    import torch

    if isinstance(state, dict):
        return {k: _clone_state(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_clone_state(v) for v in state]
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    return state


_ITEMSIZE: dict = {}


def _itemsize(dtype) -> int:
    size = _ITEMSIZE.get(dtype)
    if size is None:
        import torch

        size = _ITEMSIZE[dtype] = torch.empty((), dtype=dtype).element_size()
    return size
