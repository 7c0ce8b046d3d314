"""The epoch loop every in-process strategy shares: step, validate, report, checkpoint, stop early.

``fit`` is written once and used by the single-device strategy and by each
data-parallel worker (with a DDP-wrapped module, its slice of the feed, and ``scale``
set to the world size); strategies differ in how the module is placed and fed, not in
what an epoch is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlml.training.feed import Feed
from sqlml.training.job import EarlyStopping, EpochReport, checkpoint_state, epoch_seed, row_losses
from sqlml.training.metrics import Metrics


def fit(
    model,
    optimizer,
    *,
    spec,
    feed: Feed,
    validation: Feed | None,
    epochs: int,
    start_epoch: int,
    seed: int,
    device,
    stopper: EarlyStopping | None,
    history: list[EpochReport],
    on_epoch: Callable[[EpochReport, Callable[[], dict]], None],
    progress: Callable[..., Any],
    name: str = "",
    scale: float = 1.0,
    inner=None,
    reduce: Callable[[list[float]], list[float]] | None = None,
) -> bool:
    """Train from ``start_epoch`` to ``epochs``; True when early stopping ended it.

    ``inner`` is the unwrapped module (for state dicts) when ``model`` is a DDP wrapper;
    ``reduce`` sums per-rank totals (loss, weight, rows) so every rank reports the same
    epoch loss. ``on_epoch(report, state)`` gets the report and a function that builds
    the checkpoint state on demand.
    """
    import torch

    from sqlml.training.finite import LossGuard

    inner = inner if inner is not None else model
    task = spec.target.task
    stopped = False
    guard = LossGuard(name, batches_per_epoch=feed.n_batches(), lr=optimizer.param_groups[0].get("lr"), device=device)
    for epoch in range(start_epoch, epochs):
        torch.manual_seed(epoch_seed(seed, epoch))
        model.train()
        started = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        weight_sum, rows = 0.0, 0
        with progress(feed.n_batches(), f"{name} epoch {epoch + 1}/{epochs}") as bar:
            for number, batch in enumerate(feed(epoch), 1):
                weight_sum += float(batch.weight.sum())
                rows += len(batch)
                batch = batch.to(device)
                optimizer.zero_grad(set_to_none=True)
                weighted = (row_losses(task, model(batch.x), batch) * batch.weight).sum()
                guard.observe(weighted, epoch + 1, number)  # NaN/inf: TrainingError before the step
                (weighted * (scale / max(batch.weight_total, 1e-12))).backward()
                optimizer.step()
                loss_sum += weighted.detach()
                bar.update(1)
        guard.check()
        totals = [float(loss_sum), weight_sum, float(rows)]
        if reduce is not None:
            totals = reduce(totals)
        metrics = evaluate(inner, validation(0), spec, device, prefix="val_") if validation is not None else {}
        report = EpochReport(
            epoch=epoch + 1,
            train_loss=totals[0] / max(totals[1], 1e-12),
            rows=int(totals[2]),
            seconds=time.perf_counter() - started,
            validation=metrics,
            resumed_from=start_epoch if (epoch == start_epoch and start_epoch > 0) else None,
        )
        history.append(report)
        stopped = stopper.update(epoch + 1, metrics, inner) if stopper is not None else False
        on_epoch(report, lambda e=epoch + 1: checkpoint_state(e, inner, optimizer, history, stopper))
        if stopped:
            break
    if stopper is not None and stopper.best_state is not None:
        inner.load_state_dict(stopper.best_state)
    return stopped


def evaluate(module, batches, spec, device, prefix: str = "") -> dict[str, float]:
    """Loss and metrics of ``module`` over ``batches`` (regression metrics in label units)."""
    import torch

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
