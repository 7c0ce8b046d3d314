"""Before training: how much device memory each shard needs at a batch size, and whether it fits.

Per shard the estimate adds up what a spilled step keeps on the device while that shard
is active: its weights and buffers, its gradients, its optimizer state, the activations
its autograd graph saves (measured, not guessed: the shard runs on two small batches
under a saved-tensor hook that counts bytes, and the count is extrapolated linearly in
the batch size), and the boundary activations of the whole step. Hydra's README lists
inconsistent OOMs from a one-batch pilot run as its main pitfall; counting saved bytes
per sample sidesteps that, though data-dependent shapes (variable-length inputs) still
need a representative ``make_input``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlml.training.large.layers import shard_layout
from sqlml.training.large.optimizers import state_tensors_per_param
from sqlml.training.large.sizes import format_bytes


@dataclass
class ShardEstimate:
    index: int
    layers: str
    weights: int
    gradients: int
    optimizer_state: int
    activations: int  # saved for backward while this shard is active, at the batch size
    boundary: int  # this shard's output, kept from its forward to its backward

    @property
    def footprint(self) -> int:
        """Weights, gradients and optimizer state: what the ledger budgets."""
        return self.weights + self.gradients + self.optimizer_state


@dataclass
class MemoryEstimate:
    batch_size: int
    device_memory: int | None
    prefetch: bool
    checkpoint_activations: bool
    shards: list[ShardEstimate] = field(default_factory=list)
    kept: set[int] = field(default_factory=set)  # shards that keep their graph from forward to backward

    @property
    def boundary_total(self) -> int:
        return sum(s.boundary for s in self.shards[:-1])

    def activation_peak(self, k: int) -> int:
        """Activation bytes while shard ``k`` runs its backward: saved tensors plus boundaries.

        With recompute, shard ``k``'s own saved tensors and those of the shards kept across
        the turn whose backward is still to come (they keep their graph from the forward)."""
        s = self.shards[k]
        if self.checkpoint_activations:
            saved = s.activations + sum(x.activations for j, x in enumerate(self.shards) if j < k and j in self.kept)
        else:
            saved = sum(x.activations for x in self.shards)
        return saved + self.boundary_total + 2 * s.boundary

    def shard_peak(self, k: int) -> int:
        """Device bytes while shard ``k`` runs its backward (prefetched next shard included)."""
        peak = self.shards[k].footprint + self.activation_peak(k)
        if self.prefetch and len(self.shards) > 1:
            peak += max(x.weights + x.optimizer_state for j, x in enumerate(self.shards) if j != k)
        return peak

    @property
    def peak(self) -> int:
        return max(self.shard_peak(k) for k in range(len(self.shards)))

    @property
    def largest(self) -> ShardEstimate:
        return max(self.shards, key=lambda s: s.footprint)

    @property
    def activation_reserve(self) -> int:
        """Device bytes to leave free for activations beside the weight slots."""
        return max(self.activation_peak(k) for k in range(len(self.shards)))

    @property
    def state_peak(self) -> int:
        """Weights, gradients and optimizer state on the device at once: what the ledger budgets."""
        extra = 0
        if self.prefetch and len(self.shards) > 1:
            extra = max(x.weights + x.optimizer_state for x in self.shards)
        return max(s.footprint for s in self.shards) + extra

    @property
    def state_fits(self) -> bool | None:
        return None if self.device_memory is None else self.state_peak <= self.device_memory

    @property
    def fits(self) -> bool | None:
        """Whether activations fit too (the whole peak within ``device_memory``)."""
        return None if self.device_memory is None else self.peak <= self.device_memory

    def verdict(self) -> str:
        at = f"at batch {self.batch_size}"
        if self.device_memory is None:
            return f"peak {format_bytes(self.peak)} {at}"
        budget = format_bytes(self.device_memory)
        if not self.state_fits:
            big = self.largest
            return (
                f"does not fit: shard {big.index} ({big.layers}) needs {format_bytes(big.footprint)} for weights, "
                f"gradients and optimizer state{' plus a prefetched shard' if self.prefetch else ''}; "
                f"device_memory is {budget}"
            )
        if self.fits:
            return f"fits: peak {format_bytes(self.peak)} of {budget} {at}"
        return (
            f"weights, gradients and optimizer state fit ({format_bytes(self.state_peak)} of {budget}); "
            f"activations {at} add {format_bytes(self.activation_reserve)}, a peak of {format_bytes(self.peak)}: "
            + ("use a smaller batch" if self.checkpoint_activations else "use a smaller batch or checkpoint_activations := true")
            + f" to bring the whole step within {budget}"
        )

    def rows(self) -> list[dict]:
        out = []
        for k, s in enumerate(self.shards):
            out.append({
                "shard": s.index, "layers": s.layers, "weights": s.weights, "gradients": s.gradients,
                "optimizer_state": s.optimizer_state, "activations": s.activations,
                "boundary": s.boundary, "peak": self.shard_peak(k),
                "fits": None if self.device_memory is None else self.shard_peak(k) <= self.device_memory,
            })
        return out


def saved_bytes(module, inp) -> tuple[int, int]:
    """(bytes autograd saves for backward, bytes of the output) for one forward of ``module``.

    Parameters and buffers are not activations and are left out; tensors saved twice
    (one op's output is the next op's input) count once.
    """
    import torch

    owned = {t.untyped_storage().data_ptr() for t in list(module.parameters()) + list(module.buffers())}
    seen: set[tuple[int, int]] = set()
    total = 0

    def pack(t):
        nonlocal total
        ptr = t.untyped_storage().data_ptr()
        if ptr not in owned:
            key = (ptr, t.untyped_storage().nbytes())
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(inp)
    return total, out.numel() * out.element_size()


def estimate(
    shards,
    optimizer,
    *,
    batch_size: int,
    make_input,
    device_memory: int | None = None,
    prefetch: bool = False,
    checkpoint_activations: bool = True,
    names: list[str] | None = None,
    kept: set[int] | None = None,
) -> MemoryEstimate:
    """Estimate per-shard peaks; ``shards`` are modules in order, ``make_input(n)`` a batch of n rows;
    ``kept``: the shards a recomputing trainer keeps across the turn (``SpillTrainer.kept``)."""
    import torch

    result = MemoryEstimate(batch_size, device_memory, prefetch, checkpoint_activations, kept=set(kept or ()))
    small, large = 2, 4
    # the probe must leave no trace: same RNG stream, same BatchNorm statistics afterwards
    with torch.random.fork_rng(devices=[]):
        xs = {small: make_input(small), large: make_input(large)}
        buffers = [[b.detach().clone() for b in s.buffers()] for s in shards]
        try:
            _measure(shards, optimizer, xs, small, large, batch_size, names, result)
        finally:
            with torch.no_grad():
                for shard, saved in zip(shards, buffers):
                    for b, v in zip(shard.buffers(), saved):
                        b.copy_(v)
                    shard.zero_grad(set_to_none=True)
    return result


def _measure(shards, optimizer, xs, small, large, batch_size, names, result) -> None:
    import torch

    for k, shard in enumerate(shards):
        layout = shard_layout(shard, state_tensors_per_param(optimizer))
        counts = {}
        for n, x in xs.items():
            inp = x.detach()
            if k > 0 and inp.is_floating_point():
                inp.requires_grad_(True)
            counts[n] = saved_bytes(shard, inp)
        with torch.no_grad():
            for n in xs:
                xs[n] = shard(xs[n])

        def at(n, which):
            lo, hi = counts[small][which], counts[large][which]
            per_row = (hi - lo) / (large - small)
            return max(0, int(round(lo + per_row * (n - small))))

        result.shards.append(
            ShardEstimate(
                index=k,
                layers=names[k] if names else type(shard).__name__,
                weights=layout.weights_bytes,
                gradients=layout.grad_bytes,
                optimizer_state=layout.state_capacity,
                activations=at(batch_size, 0),
                boundary=at(batch_size, 1),
            )
        )
