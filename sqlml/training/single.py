"""``strategy := 'single'``: one process, one device (CPU, or the GPU when there is one)."""

from __future__ import annotations

from sqlml.training.job import EpochReport, TrainJob, TrainResult
from sqlml.training.loop import fit


def train(job: TrainJob) -> TrainResult:
    import torch

    model = job.module.to(job.device)
    optimizer = job.optimizer.build(model.parameters())
    history: list[EpochReport] = []
    start = 0
    state = job.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = [EpochReport(**r) for r in state["history"]]
        if job.early_stopping is not None and state.get("early_stopping"):
            job.early_stopping.load_state_dict(state["early_stopping"])
        start = int(state["epoch"])
        stopper = job.early_stopping
        if stopper is not None and stopper.best_state is not None and stopper.bad_epochs >= stopper.patience:
            start = job.epochs  # the interrupted run had already decided to stop

    def on_epoch(report: EpochReport, make_state) -> None:
        if job.save_checkpoint is not None:
            job.save_checkpoint(make_state())
        job.on_epoch_end(report)

    stopped = fit(
        model,
        optimizer,
        spec=job.spec,
        feed=job.feed,
        validation=job.validation,
        epochs=job.epochs,
        start_epoch=start,
        seed=job.seed,
        device=job.device,
        stopper=job.early_stopping,
        history=history,
        on_epoch=on_epoch,
        progress=job.progress,
        name=job.name,
    )
    stopper = job.early_stopping
    return TrainResult(
        module=model.to(torch.device("cpu")),
        history=history,
        epochs_run=len(history),
        stopped_early=stopped,
        best_epoch=stopper.best_epoch if stopper is not None and stopper.best_state is not None else None,
    )
