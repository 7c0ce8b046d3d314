"""What a training strategy receives (``TrainJob``) and returns (``TrainResult``).

A strategy (see ``sqlml.training.strategies``) is a function ``train(job) -> TrainResult``.
The job holds everything: the model, the data as a deterministic feed, the optimizer,
the loss, and hooks back into the database (per-epoch reports, checkpoints). It is built
by the CREATE MODEL pipeline (``sqlml.training.runner``); strategies never touch the
database themselves, which is what lets them run work in other processes.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlml.errors import InvalidOptionError
from sqlml.models.features import FeatureSpec
from sqlml.training.feed import Batch, Feed

OPTIMIZERS = {"adam": 1e-3, "adamw": 1e-3, "sgd": 1e-2}  # name -> default learning rate


@dataclass
class OptimizerSpec:
    """An optimizer by name and settings; ``build(params)`` makes it (picklable)."""

    name: str = "adam"
    lr: float | None = None
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise InvalidOptionError("CREATE MODEL", "optimizer", f"unknown optimizer {self.name!r}; use one of {', '.join(OPTIMIZERS)}")
        if self.lr is None:
            self.lr = OPTIMIZERS[self.name]

    def build(self, params):
        import torch

        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        cls = torch.optim.AdamW if self.name == "adamw" else torch.optim.Adam
        return cls(params, lr=self.lr, weight_decay=self.weight_decay)


def row_losses(task: str, output, batch: Batch):
    """Unweighted loss per row: cross-entropy (against soft labels when present) or squared error."""
    import torch.nn.functional as F

    if task == "classification":
        log_probs = F.log_softmax(output, dim=1)
        if batch.soft is not None:
            return -(batch.soft * log_probs).sum(dim=1)
        return F.nll_loss(log_probs, batch.y, reduction="none")
    return ((output.reshape(len(batch.y), -1) - batch.y.reshape(-1, 1)) ** 2).mean(dim=1)


def batch_loss(task: str, output, batch: Batch, scale: float = 1.0):
    """Weighted mean loss of the global batch: ``sum(w * l) / weight_total * scale``.

    On one device ``scale`` is 1 and this is the weighted mean. A data-parallel rank
    passes ``scale = world_size``: DDP averages gradients over ranks, so the ranks' sum
    equals the single-device gradient exactly (up to float summation order).
    """
    return (row_losses(task, output, batch) * batch.weight).sum() * (scale / max(batch.weight_total, 1e-12))


@dataclass
class EpochReport:
    epoch: int  # 1-based
    train_loss: float
    rows: int
    seconds: float
    validation: dict[str, float] = field(default_factory=dict)  # val_loss, val_accuracy, ...
    resumed_from: int | None = None  # first epoch after a resume: the checkpoint's epoch

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class EarlyStopping:
    """Stop after ``patience`` epochs without the monitored metric improving by ``min_delta``; keep the best weights."""

    def __init__(self, patience: int, min_delta: float = 0.0, monitor: str = "val_loss"):
        self.patience, self.min_delta, self.monitor = patience, min_delta, monitor
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_state: dict | None = None

    def update(self, epoch: int, metrics: dict[str, float], module) -> bool:
        """Record an epoch; True when training should stop."""
        value = metrics[self.monitor]
        if self.best is None or value < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = copy.deepcopy(module.state_dict())
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]


@dataclass
class TrainJob:
    """Everything a strategy needs to train one model.

    Fields:
      name: the model's name (for messages and progress bars).
      module: the freshly built ``nn.Module`` on CPU, initialised from ``seed``; a
        strategy resumes by loading ``load_checkpoint()`` into it.
      spec: the feature spec (input shape, task, classes) the module was built for.
      feed: ``feed(epoch) -> Iterator[Batch]`` of that epoch's training batches, each
        ``(x, y, weight, soft)`` plus ``weight_total`` (see ``Batch``); deterministic
        per (seed, epoch); a picklable ``Feed`` whose ``rank``/``world`` fields a
        multi-process strategy replaces (``dataclasses.replace``) to give each worker
        its slice of every global batch.
      validation: a ``Feed`` over the held-out rows (or the validation query), or None.
      optimizer: an ``OptimizerSpec``; ``optimizer.build(params)`` makes the optimizer.
      epochs: the number of epochs to reach (a resumed job starts after its checkpoint).
      device: a ``torch.device`` ('auto' already resolved).
      seed: the run's seed; epoch ``e`` seeds torch with ``epoch_seed(seed, e)``.
      early_stopping: an ``EarlyStopping`` (monitoring validation loss) or None.
      options: every option of the statement, strategy-specific ones included.
      on_epoch_end: ``on_epoch_end(report: EpochReport)``, called in the owning process
        after each epoch (writes the runs table, advances the progress bar).
      save_checkpoint: ``save_checkpoint(state: dict)`` with ``checkpoint_state(...)``'s
        dict; the owning process stores it (call it in the owning process only).
      load_checkpoint: ``load_checkpoint() -> dict | None``: the last checkpoint of an
        interrupted identical run, to resume from.
      progress: ``progress(total_batches, description) -> context manager`` with
        ``.update(n)``; a no-op when not attached to a terminal.
    """

    name: str
    module: Any
    spec: FeatureSpec
    feed: Feed
    validation: Feed | None
    optimizer: OptimizerSpec
    epochs: int
    device: Any
    seed: int
    early_stopping: EarlyStopping | None
    options: dict[str, Any]
    on_epoch_end: Callable[[EpochReport], None]
    save_checkpoint: Callable[[dict], None]
    load_checkpoint: Callable[[], dict | None]
    progress: Callable[..., Any]

    @property
    def task(self) -> str:
        return self.spec.target.task

    def batches(self, epoch: int) -> Iterator[Batch]:
        return self.feed(epoch)


@dataclass
class TrainResult:
    module: Any  # the trained module (best weights when early stopping restored them), on CPU
    history: list[EpochReport]
    epochs_run: int
    stopped_early: bool = False
    best_epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # strategy-specific numbers (timings, ...)


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919) % (2**63 - 1)


def checkpoint_state(epoch: int, module, optimizer, history: list[EpochReport], stopper: EarlyStopping | None) -> dict:
    """What a checkpoint holds after ``epoch`` epochs (1-based count of finished epochs)."""
    return {
        "epoch": epoch,
        "model": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "history": [r.to_json() for r in history],
        "early_stopping": stopper.state_dict() if stopper else None,
    }


def serialize(state: dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def deserialize(blob: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
