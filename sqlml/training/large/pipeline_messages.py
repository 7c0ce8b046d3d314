"""What the pipeline's owner and its stage processes say to each other (pickled over queues).

    owner -> stage    StageSpec (at start) | Step | Seed | SendGradients | SendState | LoadState | Stop
    stage -> owner    Ready | Stepped | Seeded | Gradients | StageState | Loaded | Stopped | Failed

Every command is answered by one reply naming the stage (``rank``); ``Failed`` answers
any command that raised. Activations and gradients between stages never pass through
the owner: they travel by point-to-point sends inside the process group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# -- owner -> stage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageSpec:
    """What a stage process is started with: its layers and how to train them."""

    layers: list
    optimizer: Any  # an OptimizerSpec
    loss_fn: Any  # a PipelineLoss (only the last stage computes it; every schedule needs one)
    schedule: str  # 'gpipe' | '1f1b'
    micro_batches: int
    checkpoint_activations: bool
    device: str
    threads: int = 1
    scale_grads: bool = False


@dataclass(frozen=True)
class Step:
    """One batch: ``x`` for the first stage, ``target`` for the last (None elsewhere)."""

    rows: int
    x: Any
    target: Any
    weight_total: float
    update: bool = True  # step the optimizer after the batch (False: gradients only)


@dataclass(frozen=True)
class Seed:
    seed: int  # stage r seeds its RNG with seed + r (dropout in the stages)


@dataclass(frozen=True)
class SendGradients:
    pass


@dataclass(frozen=True)
class SendState:
    pass


@dataclass(frozen=True)
class LoadState:
    layers: list  # one state dict per layer of the stage
    optimizer: dict | None  # None keeps the stage's optimizer state


@dataclass(frozen=True)
class Stop:
    pass


# -- stage -> owner ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    rank: int


@dataclass(frozen=True)
class Stepped:
    rank: int
    wall: float  # seconds the schedule's step took
    busy: float  # seconds inside forward/backward chunks (the rest is waiting: the bubble)
    cpu: float  # CPU seconds the stage process used
    loss: float | None = None  # last stage: the sum of the micro-batch losses
    weighted: float | None = None  # last stage: sum of weight x loss over the batch


@dataclass(frozen=True)
class Seeded:
    rank: int


@dataclass(frozen=True)
class Gradients:
    rank: int
    grads: list  # per parameter of the stage, in order (None where there is none)


@dataclass(frozen=True)
class StageState:
    rank: int
    layers: list
    optimizer: dict | None


@dataclass(frozen=True)
class Loaded:
    rank: int


@dataclass(frozen=True)
class Stopped:
    rank: int


@dataclass(frozen=True)
class Failed:
    rank: int
    message: str


Command = StageSpec | Step | Seed | SendGradients | SendState | LoadState | Stop
Reply = Ready | Stepped | Seeded | Gradients | StageState | Loaded | Stopped | Failed
