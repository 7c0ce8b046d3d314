"""Per-shard optimizers whose state moves with the shard.

Each shard gets its own optimizer of the same kind and settings as the whole model
would (``sqlml.training.job.OptimizerSpec``: SGD, Adam, AdamW). They update every
parameter on its own, so one optimizer per shard takes exactly the steps one optimizer
over the whole model takes (bit for bit on CPU). Their per-parameter state (momentum,
first and second moments) is adopted into the shard's flat buffer after the optimizer
creates it, so it is spilled, prefetched and checkpointed with the weights. Scalar
state (Adam's ``step``) stays in host memory: it is a few bytes.
"""

from __future__ import annotations

from sqlml.errors import InvalidOptionError

#: optimizer name -> parameter-sized state tensors it keeps per parameter (given its settings)
STATE_TENSORS = {
    "sgd": lambda spec: 1 if getattr(spec, "momentum", 0) else 0,
    "adam": lambda spec: 2,
    "adamw": lambda spec: 2,
}


def state_tensors_per_param(spec) -> int:
    rule = STATE_TENSORS.get(spec.name)
    if rule is None:
        raise InvalidOptionError(
            "CREATE MODEL", "optimizer", f"sharded training supports {', '.join(STATE_TENSORS)}, not {spec.name!r}"
        )
    return rule(spec)


def per_param_state(optimizer, param) -> list[tuple[str, object]]:
    """The parameter-sized state tensors of ``param`` (sorted by key); scalars are left out."""
    import torch

    state = optimizer.state.get(param, {})
    return [
        (key, value)
        for key, value in sorted(state.items())
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape == param.shape
    ]
