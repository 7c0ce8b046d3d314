"""How one batch trains a model, behind one small interface the epoch loop drives.

An engine owns a model's weights and optimizer state wherever they live:

    step(batch) -> tensor      zero grads, forward, the weighted loss, backward, optimizer
                               step; returns sum(weight x loss) of the batch (detached)
    watch(observe)             ``observe(weighted)`` is called with each batch's weighted
                               loss as soon as it exists (before the backward pass where
                               the engine computes it): the loop's loss guard
    eval_module(), eval_device what ``sqlml.training.loop.evaluate`` calls, and where
    train(mode)                training / evaluation mode (dropout, batch norm)
    seed(seed)                 seeds RNGs the engine keeps elsewhere (pipeline stages)
    reduce(totals)             an epoch's (loss, weight, rows) over every process training it
    state_dict() / load_state_dict(sd)            the whole model's weights (host memory)
    shard_states() / load_shard_states(states)    per-shard weights and optimizer state
    finish() -> module         the trained model on CPU, owning its memory
    stats() -> dict, close()

``ResidentEngine`` (this module) keeps the model on one device, optionally wrapped for
data parallelism; ``sqlml.training.large.engines`` adds spilling and pipelining. The
loss is ``job.weighted_loss`` in all of them, so they agree bit for bit where they can.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlml.training.job import weighted_loss


def _ignore(weighted) -> None:
    return None


class Engine:
    """Defaults every engine shares; subclasses implement the training parts."""

    kind = "engine"
    eval_device = None
    observe: Callable = staticmethod(_ignore)

    def watch(self, observe: Callable) -> None:
        self.observe = observe

    def seed(self, seed: int) -> None:
        return None

    def reduce(self, totals: list[float]) -> list[float]:
        return totals

    def prefetch_first(self) -> None:
        return None

    def stats(self) -> dict:
        return {}

    def close(self) -> None:
        return None


class ResidentEngine(Engine):
    """The whole model on one device with one optimizer.

    ``wrapped`` is what the forward pass calls (a ``DistributedDataParallel`` around
    ``module`` on a data-parallel rank, else the module itself) and ``scale`` multiplies
    the loss (the world size there, see ``weighted_loss``).
    """

    kind = "resident"

    def __init__(self, module, optimizer_spec, task: str, device, *, wrap=None, scale: float = 1.0):
        self.module = module.to(device)
        self.wrapped = wrap(self.module) if wrap is not None else self.module
        self.device = device
        self.eval_device = device
        self.task = task
        self.scale = scale
        self.optimizer = optimizer_spec.build(self.wrapped.parameters())

    def step(self, batch):
        batch = batch.to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        weighted, loss = weighted_loss(self.task, self.wrapped(batch.x), batch, self.scale)
        self.observe(weighted)  # a NaN stops here, before the step would apply it
        loss.backward()
        self.optimizer.step()
        return weighted.detach()

    def eval_module(self):
        return self.module

    def train(self, mode: bool = True) -> None:
        self.wrapped.train(mode)

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state) -> None:
        self.module.load_state_dict(state)

    def shard_states(self) -> list[dict]:
        return [{"weights": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}]

    def load_shard_states(self, states: list[dict]) -> None:
        self.module.load_state_dict(states[0]["weights"])
        self.optimizer.load_state_dict(states[0]["optimizer"])

    def finish(self):
        import torch

        return self.module.to(torch.device("cpu"))
