"""The one epoch loop: step, guard the loss, validate, report, checkpoint, stop early.

Every strategy trains through ``EpochLoop``: single-device and each data-parallel rank
with the resident engine, spill and pipeline with theirs, grid workers with either.
Strategies differ in the engine (where the model lives, how a batch trains) and in the
hooks (who records an epoch), never in what an epoch is.

``EpochLoop.run(n)`` trains up to n batches and returns, so a caller can interleave
models (the grid's shard alternator hands workers one unit at a time) or call ``run()``
once. Checkpoints hold what a mid-epoch resume needs: the data cursor (epoch, batches
done, the epoch's running loss sums), the RNG state, and the weights and optimizer
state of every shard, each shard separately; they are written at every epoch's end and,
with ``checkpoint_every := N``, every N batches.
"""

from __future__ import annotations

import itertools
import time
from contextlib import ExitStack
from itertools import islice

from sqlml.training.job import EpochReport, JobHooks, TrainJob, TrainResult, epoch_seed
from sqlml.training.metrics import Metrics

FORMAT = "sqlml.large/1"


def default_source(feed, epoch: int, start: int):
    """The epoch's batches from ``start`` on (earlier ones are read and dropped: the feed is deterministic)."""
    return islice(feed(epoch), start, None)


def run(job: TrainJob, engine, extra=None) -> TrainResult:
    """Train ``job`` with ``engine`` in this process, from its checkpoint if it has one;
    ``extra`` (a dict, or a function called after training) lands in the result's ``extra``."""
    loop = EpochLoop(job, engine)
    loop.run()
    return loop.result(extra() if callable(extra) else extra)


def remaining_batches(job: TrainJob) -> int:
    """Batches ``job`` has left to train (after its checkpoint, if any)."""
    state = checkpoint_of(job)
    epoch, batch = 0, 0
    if state is not None:
        epoch, batch = int(state["epoch"]), int((state.get("cursor") or {}).get("batch", 0))
        stop = state.get("early_stopping")
        if stop and job.early_stopping is not None and stop.get("best_state") is not None \
                and stop["bad_epochs"] >= job.early_stopping.patience:
            return 0
    return max(0, (job.epochs - epoch) * job.feed.n_batches() - batch)


def checkpoint_of(job: TrainJob) -> dict | None:
    """The job's checkpoint in this loop's format (a whole-model one of earlier versions converted)."""
    state = job.resume
    if state is None:
        return None
    if state.get("format") == FORMAT:
        return state
    if "model" in state and "optimizer" in state:  # one module, one optimizer: the resident engine's one shard
        return {"format": FORMAT, "engine": "resident", "epoch": state["epoch"], "cursor": None,
                "shards": [{"weights": state["model"], "optimizer": state["optimizer"]}],
                "history": state["history"], "early_stopping": state.get("early_stopping")}
    return None


class EpochLoop:
    """One model's training as a resumable state machine over its job's epochs."""

    def __init__(self, job: TrainJob, engine, hooks: JobHooks | None = None, *, isolate_rng: bool = False,
                 source=default_source):
        """``hooks`` (default: the job's) record epochs and checkpoints; ``isolate_rng`` gives the
        model an RNG stream of its own (a grid worker interleaves models); ``source(feed, epoch,
        start)`` yields an epoch's batches from ``start`` on."""
        from sqlml.training.finite import LossGuard

        self.job = job
        self.engine = engine
        self.hooks = hooks if hooks is not None else job.hooks
        self.isolate_rng = isolate_rng
        self.source = source
        self.stopper = job.early_stopping.start() if job.early_stopping is not None else None
        self.history: list[EpochReport] = []
        self.epoch = 0  # the epoch in progress (0-based) = epochs finished
        self.batch = 0  # batches done in it
        self.stopped = False
        self.resumed_from: int | None = None
        self.batches_per_epoch = job.feed.n_batches()
        self._iterator = None
        self._sums = None  # (loss_sum float64 tensor, weight_sum, rows, seconds before this session)
        self._started = 0.0
        self._rng = None
        self._bar = None
        self._stack = ExitStack()
        self.guard = LossGuard(job.name, batches_per_epoch=self.batches_per_epoch, lr=job.optimizer.lr,
                               device=engine.eval_device)
        engine.watch(lambda weighted: self.guard.observe(weighted, self.epoch + 1, self.batch + 1))
        state = checkpoint_of(job)
        if state is not None:
            self._resume(state)

    # -- where we are --------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.stopped or self.epoch >= self.job.epochs

    def remaining_batches(self) -> int:
        if self.done:
            return 0
        return (self.job.epochs - self.epoch) * self.batches_per_epoch - self.batch

    def _resume(self, state: dict) -> None:
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
        if self.stopper is not None and self.stopper.decided:
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
                weight = float(batch.weight.sum())
                weighted = self.engine.step(batch)
                loss_sum, weight_sum, rows, before = self._sums
                loss_sum += weighted.to(loss_sum.device)
                self._sums = (loss_sum, weight_sum + weight, rows + len(batch), before)
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
                every = self.job.checkpoint_every
                if self.job.checkpoint and every and self.batch % every == 0:
                    self.hooks.save_checkpoint(self.checkpoint_state(mid_epoch=True))
        finally:
            if self.isolate_rng:
                self._rng = torch.get_rng_state()
                torch.set_rng_state(outer)
        return ran

    def _start_epoch(self) -> None:
        import torch

        if self._sums is None or self.batch == 0:
            torch.manual_seed(epoch_seed(self.job.seed, self.epoch))
            # the epoch's loss sum stays on the engine's device: no sync per batch
            self._sums = (torch.zeros((), dtype=torch.float64, device=self.engine.eval_device), 0.0, 0, 0.0)
            self.batch = 0
        self.engine.seed(epoch_seed(self.job.seed, self.epoch))
        self.engine.train(True)
        self._started = time.perf_counter()
        self._iterator = iter(self.source(self.job.feed, self.epoch, self.batch))
        self._stack = ExitStack()
        bar = self._stack.enter_context(
            self.hooks.progress(self.batches_per_epoch, f"{self.job.name} epoch {self.epoch + 1}/{self.job.epochs}")
        )
        bar.update(self.batch)
        self._bar = bar

    def _end_epoch(self) -> None:
        self.guard.check()
        self._stack.close()
        self._iterator = None
        loss_sum, weight_sum, rows, before = self._sums
        totals = self.engine.reduce([float(loss_sum), weight_sum, float(rows)])
        module = self.engine.eval_module()
        job = self.job
        metrics = evaluate(module, job.validation(0), job.spec, self.engine.eval_device, prefix="val_") if job.validation is not None else {}
        resumed = self.resumed_from
        report = EpochReport(
            epoch=self.epoch + 1,
            train_loss=totals[0] / max(totals[1], 1e-12),
            rows=int(totals[2]),
            seconds=before + time.perf_counter() - self._started,
            validation=metrics,
            resumed_from=resumed if resumed is not None and resumed == self.epoch and resumed > 0 else None,
        )
        self.history.append(report)
        self.stopped = self.stopper.update(self.epoch + 1, metrics, module) if self.stopper is not None else False
        self.epoch += 1
        self.batch = 0
        self._sums = None
        if job.checkpoint:
            self.hooks.save_checkpoint(self.checkpoint_state(mid_epoch=False))
        self.hooks.on_epoch_end(report)

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


def evaluate(module, batches, spec, device, prefix: str = "") -> dict[str, float]:
    """Loss and metrics of ``module`` over ``batches`` (regression metrics in label units)."""
    import torch

    from sqlml.training.job import row_losses

    target = spec.target
    metrics = Metrics(target.task, target.n_outputs)
    was_training = module.training
    module.eval()
    with torch.no_grad():
        for batch in batches:
            batch = batch.to(device)
            output = module(batch.x)
            per_row = row_losses(target.task, output, batch)
            metrics.add_loss(float((per_row * batch.weight).sum()), float(batch.weight.sum()))
            if target.task == "classification":
                probs = torch.softmax(output.float(), dim=1).cpu().numpy()
                metrics.update_classification(probs, batch.y.cpu().numpy())
            else:
                scale = lambda t: t.float().cpu().numpy().reshape(-1) * target.std + target.mean  # noqa: E731
                metrics.update_regression(scale(output), scale(batch.y))
    module.train(was_training)
    return metrics.result(prefix)


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
