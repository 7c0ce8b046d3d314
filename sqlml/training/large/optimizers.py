"""Per-shard optimizers whose state moves with the shard.

Each shard gets its own ``torch.optim`` optimizer of the same kind and settings as the
whole model would. SGD, Adam and AdamW update every parameter on its own, so one
optimizer per shard takes exactly the steps one optimizer over the whole model takes
(bit for bit on CPU). Their per-parameter state (momentum, first and second moments)
is "adopted" into the shard's flat buffer after the optimizer creates it, so it is
spilled, prefetched and checkpointed with the weights. Scalar state (Adam's ``step``)
stays in host memory: it is a few bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlml.errors import InvalidOptionError

#: optimizer name -> (torch class, per-parameter state tensors it keeps)
OPTIMIZERS: dict[str, str] = {
    "sgd": "torch.optim:SGD",
    "adam": "torch.optim:Adam",
    "adamw": "torch.optim:AdamW",
}


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer kind plus its settings, buildable once per shard."""

    name: str = "adam"
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise InvalidOptionError(
                "CREATE MODEL", "optimizer",
                f"sharded training supports {', '.join(sorted(OPTIMIZERS))}, not {self.name!r}",
            )

    @property
    def state_tensors_per_param(self) -> int:
        """Parameter-sized state tensors the optimizer keeps for each parameter."""
        if self.name == "sgd":
            return 1 if self.settings.get("momentum", 0) else 0
        return 3 if self.settings.get("amsgrad", False) else 2

    def build(self, params):
        import importlib

        module_name, _, cls_name = OPTIMIZERS[self.name].partition(":")
        cls = getattr(importlib.import_module(module_name), cls_name)
        return cls(list(params), **self.settings)


def per_param_state(optimizer, param) -> list[tuple[str, object]]:
    """The parameter-sized state tensors of ``param`` (sorted by key); scalars are left out."""
    import torch

    state = optimizer.state.get(param, {})
    return [
        (key, value)
        for key, value in sorted(state.items())
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape == param.shape
    ]
