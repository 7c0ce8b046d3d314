"""The training job, one typed object from the statement to the loop to the workers.

A strategy (see ``sqlml.training.strategies``) is a function ``train(job) -> TrainResult``.
``TrainJob`` holds everything a run needs: the model, the data as a deterministic feed,
the optimizer, the loss, the stopping rule and the checkpoint to resume from. It is
built once by the CREATE MODEL pipeline (``sqlml.training.runner``) and handed whole to
the epoch loop (``sqlml.training.loop``) and, pickled, to worker processes (data-parallel
ranks, grid workers). What ties a run to the database (the runs table, checkpoints,
progress bars) is the owner's ``JobHooks``; a pickled job arrives without them, so a
worker reports through its protocol's messages and the owner calls the hooks.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
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


def weighted_loss(task: str, output, batch: Batch, scale: float = 1.0):
    """(sum of weight x loss, the loss to backpropagate) of one batch.

    The loss to backpropagate is ``sum(w * l) * scale / weight_total``: on one device
    ``scale`` is 1 and this is the global batch's weighted mean. A data-parallel rank
    passes ``scale = world_size``: DDP averages gradients over ranks, so the ranks' sum
    equals the single-device gradient exactly (up to float summation order).
    """
    weighted = (row_losses(task, output, batch) * batch.weight).sum()
    return weighted, weighted * (scale / max(batch.weight_total, 1e-12))


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


@dataclass(frozen=True)
class StopRule:
    """Early stopping's settings: stop after ``patience`` epochs without the validation
    loss improving by ``min_delta``; ``start()`` makes the stateful ``EarlyStopping``."""

    patience: int
    min_delta: float = 0.0

    def start(self) -> EarlyStopping:
        return EarlyStopping(self.patience, self.min_delta)


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

    @property
    def decided(self) -> bool:
        """True when the epochs so far already said stop (a resumed run trains no more)."""
        return self.best_state is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]


def _no_epoch_report(report: EpochReport) -> None:
    return None


def _no_checkpoint(state: dict) -> None:
    return None


def _no_progress(total: int, description: str):
    from sqlml.training.progress import progress_factory

    return progress_factory(False)(total, description)


@dataclass
class JobHooks:
    """What the owning process does as a run goes (never pickled: a worker's job has the defaults).

      on_epoch_end(report)      after each epoch: writes the runs table row
      save_checkpoint(state)    stores a checkpoint (called only when ``job.checkpoint``)
      progress(total, text)     a context manager with ``.update(n)``; silent off a terminal
    """

    on_epoch_end: Callable[[EpochReport], None] = _no_epoch_report
    save_checkpoint: Callable[[dict], None] = _no_checkpoint
    progress: Callable[..., Any] = _no_progress


@dataclass
class TrainJob:
    """Everything a strategy needs to train one model.

    Fields:
      name: the model's name (for messages and progress bars).
      strategy: the strategy that trains it ('single', 'data_parallel', 'spill', ...).
      module: the freshly built ``nn.Module`` on CPU, initialised from ``seed``.
      spec: the feature spec (input shape, task, classes) the module was built for.
      feed: ``feed(epoch) -> Iterator[Batch]`` of that epoch's training batches, each
        ``(x, y, weight, soft)`` plus ``weight_total`` (see ``Batch``); deterministic
        per (seed, epoch); a picklable ``Feed`` whose ``rank``/``world`` fields a
        data-parallel rank replaces to take its slice of every global batch.
      validation: a ``Feed`` over the held-out rows (or the validation query), or None.
      optimizer: an ``OptimizerSpec``; ``optimizer.build(params)`` makes the optimizer.
      epochs: the number of epochs to reach (a resumed job starts after its checkpoint).
      device: a ``torch.device`` ('auto' already resolved).
      seed: the run's seed; epoch ``e`` seeds torch with ``epoch_seed(seed, e)``.
      early_stopping: a ``StopRule`` (monitoring validation loss) or None.
      checkpoint: whether to checkpoint (each epoch, and every ``checkpoint_every``
        batches when set).
      checkpoint_every: batches between mid-epoch checkpoints, or None.
      threads: torch CPU threads the statement asked for, or None (the strategy's default).
      batch_size: rows per global batch.
      options: every option of the statement, strategy-specific ones included.
      resume: the last checkpoint of an interrupted identical run, or None.
      hooks: the owner's ``JobHooks`` (dropped when the job is pickled).
    """

    name: str
    strategy: str
    module: Any
    spec: FeatureSpec
    feed: Feed
    validation: Feed | None
    optimizer: OptimizerSpec
    epochs: int
    device: Any
    seed: int
    early_stopping: StopRule | None = None
    checkpoint: bool = False
    checkpoint_every: int | None = None
    threads: int | None = None
    batch_size: int = 256
    options: dict[str, Any] = field(default_factory=dict)
    resume: dict | None = None
    hooks: JobHooks = field(default_factory=JobHooks)

    @property
    def task(self) -> str:
        return self.spec.target.task

    def resuming(self, state: dict | None) -> TrainJob:
        """The same job, continuing from ``state`` (a checkpoint or a migrated model's state)."""
        return replace(self, resume=state)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["hooks"] = JobHooks()  # the owner's hooks hold its database connection
        return state


@dataclass
class TrainResult:
    module: Any  # the trained module (best weights when early stopping restored them), on CPU
    history: list[EpochReport]
    epochs_run: int
    stopped_early: bool = False
    best_epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # strategy-specific numbers (timings, ...)


@dataclass
class FinishedRun:
    """A result as a worker sends it: the weights instead of the module."""

    weights: dict[str, Any]
    history: list[EpochReport]
    stopped_early: bool = False
    best_epoch: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, result: TrainResult) -> FinishedRun:
        weights = {k: v.detach().cpu().clone() for k, v in result.module.state_dict().items()}
        return cls(weights, list(result.history), result.stopped_early, result.best_epoch, dict(result.extra))

    def into(self, module, extra: dict[str, Any] | None = None) -> TrainResult:
        """The ``TrainResult`` with these weights loaded into the owner's ``module``."""
        module.load_state_dict(self.weights)
        return TrainResult(module, list(self.history), len(self.history), self.stopped_early, self.best_epoch,
                           {**self.extra, **(extra or {})})


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919) % (2**63 - 1)


def serialize(state: dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def deserialize(blob: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
