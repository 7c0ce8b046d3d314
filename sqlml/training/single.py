"""``strategy := 'single'``: one process, one device (CPU, or the GPU when there is one)."""

from __future__ import annotations

from sqlml.training import loop
from sqlml.training.engine import ResidentEngine
from sqlml.training.job import TrainJob, TrainResult


def train(job: TrainJob) -> TrainResult:
    return loop.run(job, ResidentEngine(job.module, job.optimizer, job.task, job.device))
