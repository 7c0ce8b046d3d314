"""What a grid's owner and its workers say to each other (pickled over queues, or handed
over in-process when the grid trains on one worker).

    owner -> worker    Configure | Add | Run | Export | Stop
    worker -> owner    Ready | Ran | EpochEnded | Checkpoint | Done | Exported | Stopped | Failed

A model reaches a worker as its whole ``TrainJob`` (``Add``); a model that moves to
another worker is exported there and added again with the exported state as its
checkpoint to resume from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlml.training.job import EpochReport, FinishedRun, TrainJob

# -- owner -> worker -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpillSlots:
    """One device configuration for a worker's spilled models: slots that fit every one of them."""

    slot_bytes: int
    grad_reserve: int


@dataclass(frozen=True)
class Configure:
    """Settings known once the jobs exist (workers start earlier, while the query is staged)."""

    slots: SpillSlots | None


@dataclass(frozen=True)
class Add:
    model: int
    job: TrainJob


@dataclass(frozen=True)
class Run:
    model: int
    batches: int
    prefetch: int | None = None  # the model predicted to run next here: start copying it in


@dataclass(frozen=True)
class Export:
    model: int


@dataclass(frozen=True)
class Stop:
    pass


# -- worker -> owner -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    worker: int


@dataclass(frozen=True)
class Ran:
    worker: int
    model: int
    batches: int
    seconds: float
    cpu_seconds: float
    remaining: int


@dataclass(frozen=True)
class EpochEnded:
    worker: int
    model: int
    report: EpochReport


@dataclass(frozen=True)
class Checkpoint:
    worker: int
    model: int
    state: dict[str, Any]


@dataclass(frozen=True)
class Done:
    worker: int
    model: int
    run: FinishedRun


@dataclass(frozen=True)
class Exported:
    worker: int
    model: int
    state: dict[str, Any]


@dataclass(frozen=True)
class Stopped:
    worker: int


@dataclass(frozen=True)
class Failed:
    worker: int
    model: int | None
    message: str


Command = Configure | Add | Run | Export | Stop
Message = Ready | Ran | EpochEnded | Checkpoint | Done | Exported | Stopped | Failed
