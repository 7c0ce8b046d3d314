"""The epoch loop of one model as a resumable state machine.

``ModelRun.run(n)`` trains up to n batches and returns, so a caller can interleave
models (the grid's shard alternator hands workers one unit at a time) or just call
``run()`` once (the spill and pipeline strategies). What an epoch is — seeding, the
loss, the epoch report, validation, early stopping, the checkpoint — is
``sqlml.training.loop.fit``'s, step for step, so a model trained here equals the same
model trained by ``strategy := 'single'`` (bit for bit on CPU with the resident and
spill engines; tests).

Checkpoints add what a mid-epoch resume needs: the data cursor (epoch, batches done,
the epoch's running loss sums), the RNG state, and the weights and optimizer state of
every shard, each shard separately. ``checkpoint_every := N`` writes one every N
batches as well as at every epoch's end.
"""

from __future__ import annotations

import itertools
import time
from contextlib import ExitStack
from itertools import islice

from sqlml.training.job import EpochReport, TrainResult, epoch_seed

FORMAT = "sqlml.large/1"


def default_source(feed, epoch: int, start: int):
    """The epoch's batches from ``start`` on (earlier ones are read and dropped: the feed is deterministic)."""
    return islice(feed(epoch), start, None)


class ModelRun:
    def __init__(
        self,
        *,
        name: str,
        spec,
        feed,
        validation,
        epochs: int,
        seed: int,
        stopper,
        engine,
        checkpoint_every: int | None = None,
        on_epoch=None,
        on_checkpoint=None,
        progress=None,
        isolate_rng: bool = False,
        source=default_source,
        lr: float | None = None,
    ):
        self.name = name
        self.spec = spec
        self.feed = feed
        self.validation = validation
        self.epochs = int(epochs)
        self.seed = int(seed)
        self.stopper = stopper
        self.engine = engine
        self.checkpoint_every = checkpoint_every
        self.on_epoch = on_epoch
        self.on_checkpoint = on_checkpoint
        self.progress = progress
        self.isolate_rng = isolate_rng
        self.source = source
        self.history: list[EpochReport] = []
        self.epoch = 0  # the epoch in progress (0-based) = epochs finished
        self.batch = 0  # batches done in it
        self.stopped = False
        self.resumed_from: int | None = None
        self._iterator = None
        self._sums = None  # (loss_sum float64 tensor, weight_sum, rows, seconds before this session)
        self._started = 0.0
        self._rng = None
        self._bar = None
        self._batches_per_epoch = None
        self._loss_guard = None
        self.lr = lr

    # -- where we are --------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.stopped or self.epoch >= self.epochs

    @property
    def batches_per_epoch(self) -> int:
        if self._batches_per_epoch is None:
            self._batches_per_epoch = self.feed.n_batches()
        return self._batches_per_epoch

    def remaining_batches(self) -> int:
        if self.done:
            return 0
        return (self.epochs - self.epoch) * self.batches_per_epoch - self.batch

    # -- resuming ------------------------------------------------------------------------
    def resume(self, state: dict) -> None:
        """Continue from a checkpoint written by this class."""
        import torch

        self.engine.load_shard_states(state["shards"])
        self.history = [EpochReport(**r) for r in state["history"]]
        if self.stopper is not None and state.get("early_stopping"):
            self.stopper.load_state_dict(state["early_stopping"])
        self.epoch = int(state["epoch"])
        cursor = state.get("cursor")
        if cursor:
            self.batch = int(cursor["batch"])
            self._sums = (torch.tensor(cursor["loss_sum"], dtype=torch.float64), cursor["weight_sum"], cursor["rows"], cursor["seconds"])
            self._rng = state.get("rng")
        self.resumed_from = self.epoch
        stopper = self.stopper
        if stopper is not None and stopper.best_state is not None and stopper.bad_epochs >= stopper.patience:
            self.stopped = True  # the interrupted run had already decided to stop

    # -- training ------------------------------------------------------------------------
    def run(self, max_batches: int | None = None) -> int:
        """Train up to ``max_batches`` batches (all that remain when None); returns how many ran."""
        import torch

        if self.done:
            return 0
        outer = torch.get_rng_state() if self.isolate_rng else None
        if self._rng is not None:
            torch.set_rng_state(self._rng)
            self._rng = None
        ran = 0
        try:
            while not self.done and (max_batches is None or ran < max_batches):
                if self._iterator is None:
                    self._start_epoch()
                batch = next(self._iterator, None)
                if batch is None:
                    self._end_epoch()
                    continue
                weighted = self.engine.step(batch)
                self._guard().observe(weighted, self.epoch + 1, self.batch + 1)
                loss_sum, weight_sum, rows, before = self._sums
                loss_sum += weighted.to(loss_sum.device)
                self._sums = (loss_sum, weight_sum + float(batch.weight.sum()), rows + len(batch), before)
                self.batch += 1
                ran += 1
                self._bar.update(1)
                if self.batch >= self.batches_per_epoch:
                    # the epoch's last batch: close the epoch now, so a caller that ran exactly
                    # the remaining batches sees the run done (report, validation, checkpoint)
                    extra = next(self._iterator, None)
                    if extra is None:
                        self._end_epoch()
                        continue
                    self._iterator = itertools.chain([extra], self._iterator)
                if self.checkpoint_every and self.batch % self.checkpoint_every == 0 and self.on_checkpoint:
                    self.on_checkpoint(self.checkpoint_state(mid_epoch=True))
        finally:
            if self.isolate_rng:
                self._rng = torch.get_rng_state()
                torch.set_rng_state(outer)
        return ran

    def _start_epoch(self) -> None:
        import torch

        if self._sums is None or self.batch == 0:
            torch.manual_seed(epoch_seed(self.seed, self.epoch))
            self._sums = (torch.zeros((), dtype=torch.float64), 0.0, 0, 0.0)
            self.batch = 0
        seed_stages = getattr(self.engine, "seed", None)
        if seed_stages is not None:
            seed_stages(epoch_seed(self.seed, self.epoch))
        self.engine.train(True)
        self._started = time.perf_counter()
        self._iterator = iter(self.source(self.feed, self.epoch, self.batch))
        self._stack = ExitStack()
        if self.progress is not None:
            bar = self._stack.enter_context(
                self.progress(self.batches_per_epoch, f"{self.name} epoch {self.epoch + 1}/{self.epochs}")
            )
            bar.update(self.batch)
        else:
            bar = _NoBar()
        self._bar = bar

    def _guard(self):
        """The loss guard (``sqlml.training.finite``); not pickled with the run."""
        if self._loss_guard is None:
            from sqlml.training.finite import LossGuard

            self._loss_guard = LossGuard(self.name, batches_per_epoch=self.batches_per_epoch, lr=self.lr,
                                         device=getattr(self.engine, "eval_device", None))
        return self._loss_guard

    def _end_epoch(self) -> None:
        from sqlml.training.loop import evaluate

        self._guard().check()
        self._stack.close()
        self._iterator = None
        loss_sum, weight_sum, rows, before = self._sums
        module = self.engine.eval_module()
        metrics = evaluate(module, self.validation(0), self.spec, self.engine.eval_device, prefix="val_") if self.validation is not None else {}
        report = EpochReport(
            epoch=self.epoch + 1,
            train_loss=float(loss_sum) / max(weight_sum, 1e-12),
            rows=int(rows),
            seconds=before + time.perf_counter() - self._started,
            validation=metrics,
            resumed_from=self.resumed_from if self.resumed_from is not None and self.resumed_from == self.epoch and self.resumed_from > 0 else None,
        )
        self.history.append(report)
        self.stopped = self.stopper.update(self.epoch + 1, metrics, module) if self.stopper is not None else False
        self.epoch += 1
        self.batch = 0
        self._sums = None
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.checkpoint_state(mid_epoch=False))
        if self.on_epoch is not None:
            self.on_epoch(report)

    def checkpoint_state(self, *, mid_epoch: bool) -> dict:
        import torch

        state = {
            "format": FORMAT,
            "engine": self.engine.kind,
            "epoch": self.epoch,
            "shards": _snapshot(self.engine.shard_states()),  # a copy: training goes on after this
            "history": [r.to_json() for r in self.history],
            "early_stopping": self.stopper.state_dict() if self.stopper else None,
            "cursor": None,
        }
        if mid_epoch and self._sums is not None and self.batch > 0:
            loss_sum, weight_sum, rows, before = self._sums
            state["cursor"] = {
                "batch": self.batch,
                "loss_sum": float(loss_sum),
                "weight_sum": weight_sum,
                "rows": rows,
                "seconds": before + time.perf_counter() - self._started,
            }
            # between units of an interleaved run the model's RNG is parked in self._rng
            state["rng"] = self._rng if self._rng is not None else torch.get_rng_state()
        return state

    # -- the result ------------------------------------------------------------------------
    def result(self, extra: dict | None = None) -> TrainResult:
        stopper = self.stopper
        best = stopper is not None and stopper.best_state is not None
        if best:
            self.engine.load_state_dict(stopper.best_state)
        module = self.engine.finish()
        return TrainResult(
            module=module,
            history=self.history,
            epochs_run=len(self.history),
            stopped_early=self.stopped,
            best_epoch=stopper.best_epoch if best else None,
            extra=dict(extra or {}),
        )


def _snapshot(value):
    """A deep copy of nested dicts/lists of tensors (checkpoints must not follow later steps)."""
    import torch

    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return value


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass
