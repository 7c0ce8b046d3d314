"""``strategy := 'spill'`` and ``strategy := 'pipeline'``: the training core's plug-ins.

Both receive a ``TrainJob`` (``sqlml.training.job``) and return a ``TrainResult``; the
core stages the data, builds the model, stores the result and writes the runs table.
What they add lands in the model's metrics: the shard plan, the memory estimate, the
ledger's peak and bytes moved (spill), the measured bubble against GPipe's (pipeline).
"""

from __future__ import annotations

from sqlml.errors import InvalidOptionError, TrainingError
from sqlml.training.large.layers import sequential_layers
from sqlml.training.large.options import PIPELINE_OPTIONS, SPILL_OPTIONS, defaults, pipeline_options, spill_options
from sqlml.training.large.partition import balance_plan, budget_plan, manual_plan
from sqlml.training.large.run import FORMAT, ModelRun


def sample_batch(feed, rows: int = 64):
    """The first training batch of epoch 0 (for measuring time and activation sizes)."""
    iterator = iter(feed(0))
    try:
        batch = next(iterator, None)
    finally:
        close = getattr(iterator, "close", None)
        if close:
            close()
    if batch is None:
        raise TrainingError("the training feed has no rows")
    return batch.x[:rows]


def rows_of(sample):
    """``make_input(n)``: n rows cut (and repeated if needed) from a sample batch."""
    import torch

    return lambda n: sample[torch.arange(n) % sample.shape[0]]


def shard_plan(layers, opts: dict, *, count_key: str, optimizer=None, sample=None, capacity: int | None = None):
    """Manual boundaries, n balanced shards, or (spill) the fewest shards that fit ``capacity``."""
    from sqlml.training.large.optimizers import state_tensors_per_param

    if opts.get("boundaries") is not None:
        return manual_plan(layers, opts["boundaries"])
    count = opts.get(count_key)
    if count is not None:
        return balance_plan(layers, count, by=opts["balance"], sample=sample)
    return budget_plan(layers, capacity, state_tensors_per_param=state_tensors_per_param(optimizer), optimizer=optimizer.name)


def _resume(job, run: ModelRun) -> None:
    state = job.load_checkpoint()
    if state is not None and state.get("format") == FORMAT:
        run.resume(state)


def _model_run(job, engine, checkpoint_every) -> ModelRun:
    return ModelRun(
        name=job.name,
        spec=job.spec,
        feed=job.feed,
        validation=job.validation,
        epochs=job.epochs,
        seed=job.seed,
        stopper=job.early_stopping,
        engine=engine,
        checkpoint_every=checkpoint_every,
        on_epoch=job.on_epoch_end,
        on_checkpoint=job.save_checkpoint,
        progress=job.progress,
        lr=job.optimizer.lr,
    )


# -- spill -------------------------------------------------------------------------------


def spill_engine(module, optimizer, task: str, device, opts: dict, *, feed=None, batch_size: int = 256, shared=None):
    """Plan, estimate and build a ``SpillEngine`` for ``module``; returns (engine, plan, estimate)."""
    import torch
    from torch import nn

    from sqlml.training.large.engines import SpillEngine
    from sqlml.training.large.memory import estimate
    from sqlml.training.large.spill import SpillTrainer, slots_needed

    layers = sequential_layers(module, what=f"the model ({type(module).__name__})")
    sample = sample_batch(feed) if feed is not None else None
    budget = shared.budget if shared is not None else opts["device_memory"]
    capacity = budget // slots_needed(opts["spill_prefetch"])
    plan = shard_plan(layers, opts, count_key="shards", optimizer=optimizer, sample=sample, capacity=capacity)
    report = None
    if sample is not None:
        shards = [nn.Sequential(*layers[a:b]) for a, b in plan.ranges()]
        report = estimate(
            shards, optimizer, batch_size=batch_size, make_input=rows_of(sample), device_memory=budget,
            prefetch=opts["spill_prefetch"], checkpoint_activations=opts["checkpoint_activations"], names=plan.describe(),
        )
    trainer = SpillTrainer(
        module, plan, optimizer,
        device_memory=shared if shared is not None else budget,
        device=torch.device(device),
        tier=opts["spill_tier"],
        spill_dir=opts["spill_dir"],
        prefetch=opts["spill_prefetch"],
        checkpoint_activations=opts["checkpoint_activations"],
    )
    return SpillEngine(trainer, task), plan, report


def train_spill(job):
    opts = spill_options(job.options)
    engine, plan, report = spill_engine(
        job.module, job.optimizer, job.task, job.device, opts, feed=job.feed, batch_size=int(job.options["batch_size"])
    )
    try:
        run = _model_run(job, engine, opts["checkpoint_every"])
        _resume(job, run)
        run.run()
        extra = {"shard_plan": plan.to_dict()}
        if report is not None:
            extra["memory_estimate"] = {
                "state_peak_bytes": report.state_peak, "activation_bytes": report.activation_reserve,
                "peak_bytes": report.peak, "fits": report.fits, "verdict": report.verdict(),
            }
        return run.result({"spill": {**engine.stats(), **extra}})
    finally:
        engine.close()


train_spill.options = defaults(SPILL_OPTIONS)


# -- pipeline ----------------------------------------------------------------------------


def train_pipeline(job):
    import torch

    from sqlml.training.large.engines import PipelineEngine
    from sqlml.training.large.pipeline import PipelineRunner, bubble_fraction
    from sqlml.training.large.pipeline_worker import PipelineLoss

    opts = pipeline_options(job.options)
    if int(job.options["batch_size"]) % opts["micro_batches"]:
        raise InvalidOptionError(
            "CREATE MODEL", "micro_batches",
            f"must divide batch_size {job.options['batch_size']} evenly (micro-batches are equal), got {opts['micro_batches']}",
        )
    layers = sequential_layers(job.module, what=f"the model ({type(job.module).__name__})")
    if opts["stages"] > len(layers):
        raise TrainingError(f"cannot cut a model of {len(layers)} layers into {opts['stages']} pipeline stages")
    sample = sample_batch(job.feed) if opts["balance"] == "time" else None
    plan = shard_plan(layers, opts, count_key="stages", sample=sample)
    device = torch.device(job.device)
    runner = PipelineRunner(
        job.module, plan, job.optimizer, PipelineLoss(job.task, has_soft=job.spec.target.soft_label is not None),
        micro_batches=opts["micro_batches"], schedule=opts["schedule"],
        checkpoint_activations=opts["checkpoint_activations"], device=device,
        threads=job.options.get("threads") or 1,
    )
    engine = PipelineEngine(runner, job.task)
    try:
        run = _model_run(job, engine, opts["checkpoint_every"])
        _resume(job, run)
        run.run()
        stats = runner.stats()
        stats["bubble_theory"] = round(bubble_fraction(plan.n_shards, opts["micro_batches"]), 4)
        return run.result({"pipeline": {**stats, "shard_plan": plan.to_dict()}})
    finally:
        engine.close()


train_pipeline.options = defaults(PIPELINE_OPTIONS)
