"""A model as an ordered list of layers, cut into shards, and the byte layout of a shard.

Spilling and pipelining both need a model whose forward is "each layer in turn": an
``nn.Sequential`` (nested ones are flattened, so a block of layers can still be cut
inside). A shard is a contiguous run of layers. Its parameters and buffers are packed
into one flat byte buffer (the unit that moves between host, disk and device), each
tensor at an aligned offset and viewed back with its own dtype and shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlml.errors import TrainingError

ALIGN = 64  # bytes; every tensor in a flat buffer starts on a cache line


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def sequential_layers(model, *, what: str = "this model") -> list:
    """The model's layers in execution order; nested ``nn.Sequential`` blocks are opened."""
    from torch import nn

    if not isinstance(model, nn.Sequential):
        raise TrainingError(
            f"{what} is a {type(model).__name__}, but sharded training (spill, pipeline) needs an "
            f"nn.Sequential whose layers run one after another. Build the architecture as "
            f"nn.Sequential, or use strategy := 'single'."
        )
    out = []
    for child in model.children():
        if isinstance(child, nn.Sequential):
            out.extend(sequential_layers(child, what=what))
        else:
            out.append(child)
    if not out:
        raise TrainingError(f"{what} has no layers to shard")
    return out


def describe_layer(layer) -> str:
    """'Linear(1024->1024)'-style short name used in plans and errors."""
    name = type(layer).__name__
    if hasattr(layer, "in_features") and hasattr(layer, "out_features"):
        return f"{name}({layer.in_features}->{layer.out_features})"
    if hasattr(layer, "in_channels") and hasattr(layer, "out_channels"):
        return f"{name}({layer.in_channels}->{layer.out_channels})"
    return name


def trainable(tensor) -> bool:
    return tensor.requires_grad and tensor.is_floating_point()


def param_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def grad_bytes(module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters() if trainable(p))


def buffer_bytes(module) -> int:
    return sum(b.numel() * b.element_size() for b in module.buffers())


@dataclass(frozen=True)
class Entry:
    """One tensor inside a flat byte buffer."""

    offset: int
    nbytes: int
    dtype: object  # torch.dtype
    shape: tuple

    def view(self, flat):
        """This tensor inside ``flat`` (a 1-D uint8 tensor), aliasing its memory.

        Made with ``set_`` rather than slicing, so it has a version counter of its own:
        slices of one buffer share their base's counter, and then copying another shard
        into another slot of the arena (or a batch-norm update) would look to autograd
        like an in-place change of every weight saved for backward.
        """
        import torch

        itemsize = torch.empty((), dtype=self.dtype).element_size()
        start = flat.storage_offset() + self.offset
        out = torch.empty((0,), dtype=self.dtype, device=flat.device)
        numel = self.nbytes // itemsize
        out.set_(flat.untyped_storage(), start // itemsize, self.shape, _contiguous_strides(self.shape) if numel else None)
        return out


def _contiguous_strides(shape) -> tuple:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def pack_entries(tensors, start: int = 0) -> tuple[list[Entry], int]:
    """Aligned entries for ``tensors`` laid out from ``start``; returns (entries, end)."""
    entries, offset = [], align(start)
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        entries.append(Entry(offset, nbytes, t.dtype, tuple(t.shape)))
        offset = align(offset + nbytes)
    return entries, offset


@dataclass
class ShardLayout:
    """Where a shard's weights (parameters, then buffers) and optimizer state sit in its flat buffer.

    ``state_capacity`` is reserved up front from the optimizer's known state size; the
    actual state entries are fixed the first time the optimizer creates its state.
    """

    weights: list[Entry]
    weights_bytes: int
    state_capacity: int
    grad_bytes: int
    state: list[tuple[int, str, Entry]] = field(default_factory=list)  # (param index, key, entry)

    @property
    def total_bytes(self) -> int:
        """Bytes the shard needs in a slot: weights plus the optimizer-state reservation."""
        return self.weights_bytes + self.state_capacity

    @property
    def state_bytes(self) -> int:
        return sum(e.nbytes for _, _, e in self.state)


def shard_layout(module, state_tensors_per_param: int) -> ShardLayout:
    """The layout of one shard; state room = that many param-sized tensors per trainable parameter."""
    tensors = list(module.parameters()) + list(module.buffers())
    entries, end = pack_entries(tensors)
    capacity = 0
    if state_tensors_per_param:
        capacity = sum(align(p.numel() * p.element_size()) * state_tensors_per_param
                       for p in module.parameters() if trainable(p))
    return ShardLayout(entries, end, capacity, grad_bytes(module))
