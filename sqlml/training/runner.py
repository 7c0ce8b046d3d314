"""The CREATE MODEL pipeline: settle options, stage the data, build the job, train, register.

    prepare(duck, name, options, query)      -> Prepared (staged data, spec, settled options)
    make_job(prepared, side, version, run_id) -> TrainJob (checkpoints and run rows via ``side``)
    run(duck, prepared)                      -> TrainResult (the strategy's)
    register(duck, prepared, result, ...)    -> ModelRecord (a new version; checkpoint dropped)
    train_and_register(duck, name, options, query) does all four.

Split this way so that callers training several models over one query (``CREATE
MODELS``) stage once, then vary ``Prepared.options`` (``settle``d) per configuration;
only data options (label, weight, features, normalize, ...) must stay those it was
staged with. The caller removes the staged files with ``prepared.training.cleanup()``.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlml import catalog
from sqlml.errors import DataError, TrainingError
from sqlml.models import registry
from sqlml.models.architectures import build
from sqlml.models.features import Feature, FeatureSpec, Target, array_type
from sqlml.models.loading import build_module, resolve_device
from sqlml.models.text import layout
from sqlml.training.checkpoints import CheckpointStore, RunLog, fingerprint
from sqlml.training.feed import Feed
from sqlml.training.job import EarlyStopping, EpochReport, OptimizerSpec, TrainJob, TrainResult
from sqlml.training.options import settle
from sqlml.training.progress import progress_factory
from sqlml.training.staging import TrainingSet, class_name, scratch_directory, stage
from sqlml.training.strategies import resolve


@dataclass
class Prepared:
    name: str
    query: str
    options: dict[str, Any]  # settled
    training: TrainingSet
    lineage: dict[str, Any] | None = None  # what it is trained on (ml_lineage)

    @property
    def spec(self) -> FeatureSpec:
        return self.training.spec


def prepare(duck, name: str, given: dict[str, Any], query: str, *, replace: bool = False) -> Prepared:
    """Check options and name, run the validation gate, stage the query. Caller cleans up."""
    options = settle(given)
    catalog.require_new(duck, registry.KIND, name, replace=replace, exists=registry.latest_version(duck, name) is not None)
    validation = None
    if options["validate"]:
        from sqlml.training.gate import check_training_data

        validation = check_training_data(duck, options["validate"], query, model=name)
    from sqlml.training.lineage import lineage

    recorded = lineage(duck, query, options, validation)
    directory = scratch_directory(options)
    try:
        training = stage(duck, query, options, directory=directory, model=name)
    except BaseException:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        raise
    text_layout = layout(training.spec)
    if text_layout is not None:  # where the architectures find the text bags (stored with the model)
        options["text_layout"] = text_layout
    return Prepared(name, query, options, training, recorded)


def make_job(prepared: Prepared, side, *, version: int, run_id: str) -> TrainJob:
    """The job for ``prepared``; checkpoints and run rows go through ``side``."""
    import torch

    options, spec = prepared.options, prepared.spec
    seed = int(options["seed"])
    torch.manual_seed(seed)
    module = build(options["architecture"], tuple(spec.input_shape), spec.target.n_outputs, options)
    training = prepared.training
    feed = Feed(
        training,
        batch_size=options["batch_size"],
        shuffle=options["shuffle"],
        window=options["shuffle_window"],
        prefetch=options["prefetch"],
    )
    validation = None
    if training.validation_fraction or training.validation_path:
        validation = Feed(training, batch_size=max(options["batch_size"], 1024), part="validation", shuffle=False, prefetch=options["prefetch"])
        if validation.rows() == 0:
            raise DataError("the validation split is empty; use a larger validation_split or more rows")
        if feed.rows() == 0:
            raise DataError("every row went to validation; use a smaller validation_split")
    store = CheckpointStore(side, prepared.name, fingerprint(prepared.name, prepared.query, options, spec.to_json()))
    log = RunLog(side, run_id, prepared.name, version, options["strategy"])
    stopper = EarlyStopping(int(options["early_stopping"]), float(options["min_delta"])) if options["early_stopping"] else None
    return TrainJob(
        name=prepared.name,
        module=module,
        spec=spec,
        feed=feed,
        validation=validation,
        optimizer=OptimizerSpec(options["optimizer"], options["lr"], options["weight_decay"], options["momentum"]),
        epochs=int(options["epochs"]),
        device=resolve_device(options["device"]),
        seed=seed,
        early_stopping=stopper,
        options=options,
        on_epoch_end=log.epoch,
        save_checkpoint=store.save if options["checkpoint"] else None,
        load_checkpoint=store.load if options["checkpoint"] else (lambda: None),
        progress=progress_factory(options["progress"]),
    )


def train_and_register(duck, name: str, given: dict[str, Any], query: str, *, replace: bool = False):
    """Train ``name`` on ``query`` and store it as a new version; returns (record, result)."""
    started = time.perf_counter()
    prepared = prepare(duck, name, given, query, replace=replace)
    try:
        result = run(duck, prepared)
        record = register(duck, prepared, result, seconds=time.perf_counter() - started, replace=replace)
        return record, result
    finally:
        prepared.training.cleanup()


def run(duck, prepared: Prepared, *, run_id: str | None = None) -> TrainResult:
    """Build the job and run its strategy; checkpoints and run rows go through a side connection."""
    side = duck.cursor()
    try:
        version = registry.next_version(duck, prepared.name)
        job = make_job(prepared, side, version=version, run_id=run_id or uuid.uuid4().hex[:12])
        with _threads(prepared.options["threads"]):
            result = resolve(prepared.options["strategy"])(job)
    finally:
        side.close()
    if not result.history:
        raise TrainingError(f"model {prepared.name!r}: the strategy finished without training an epoch")
    return result


def register(duck, prepared: Prepared, result: TrainResult, *, seconds: float, replace: bool = False) -> registry.ModelRecord:
    """Save the trained module as a new version, then drop the run's checkpoint."""
    record = model_record(prepared, result, seconds)
    registry.save_model(duck, record, result.module.state_dict(), replace=replace)
    if prepared.options["checkpoint"]:
        side = duck.cursor()
        try:
            CheckpointStore(side, prepared.name, "").clear()
        finally:
            side.close()
    return record


def model_record(prepared: Prepared, result: TrainResult, seconds: float) -> registry.ModelRecord:
    """The registry row for a finished run: settled options, feature spec, final metrics."""
    spec, options = prepared.spec, prepared.options
    history = result.history
    final: EpochReport = history[-1]
    chosen = next((r for r in history if r.epoch == result.best_epoch), final) if result.best_epoch else final
    metrics: dict[str, Any] = {
        "train_loss": final.train_loss,
        **chosen.validation,
        "epochs": result.epochs_run,
        "rows": prepared.training.n_rows,
        "seconds": round(seconds, 3),
        "stopped_early": result.stopped_early,
    }
    if result.best_epoch:
        metrics["best_epoch"] = result.best_epoch
    metrics.update(prepared.training.stats)
    metrics.update(result.extra)
    return registry.ModelRecord(
        name=prepared.name,
        version=0,
        architecture=options["architecture"],
        task=spec.target.task,
        options=options,
        features=spec,
        label=spec.target.label,
        classes=spec.target.classes,
        input_shape=spec.input_shape,
        n_outputs=spec.target.n_outputs,
        metrics=metrics,
        query=prepared.query,
        status="trained",
        lineage=dict(prepared.lineage or {}),
    )


@contextmanager
def _threads(count: int | None):
    if not count:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- importing weights -------------------------------------------------------------------------


def import_weights(duck, name: str, given: dict[str, Any], *, replace: bool = False) -> registry.ModelRecord:
    """``CREATE MODEL name WITH (architecture := ..., weights := 'file.pt', input_shape := [...])``."""
    import math
    import os

    import torch

    options = settle(given, importing=True)
    catalog.require_new(duck, registry.KIND, name, replace=replace, exists=registry.latest_version(duck, name) is not None)
    path = options["weights"]
    if not os.path.isfile(path):
        raise DataError(f"weights file {path!r} does not exist")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - any unreadable file
        raise DataError(f"weights file {path!r} is not a state dict torch.load(weights_only=True) can read: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"weights file {path!r} does not hold a state dict (a mapping of names to tensors)")
    shape = list(options["input_shape"])
    classes = [class_name(c) for c in options["classes"]] if options["classes"] else None
    task = options["task"]
    n_outputs = len(classes) if classes else options["n_outputs"] or (1 if task == "regression" else None)
    if n_outputs is None:
        raise DataError("importing a classifier needs classes := [...] or n_outputs := N")
    if classes and options["n_outputs"] and options["n_outputs"] != len(classes):
        raise DataError(f"n_outputs := {options['n_outputs']} disagrees with {len(classes)} classes")
    names = options["features"] or ["input"]
    if len(names) == 1:
        features = [Feature(names[0], "array", array_type(shape), math.prod(shape), shape)]
    elif len(names) == math.prod(shape):
        features = [Feature(n, "numeric", "FLOAT", 1) for n in names]
    else:
        raise DataError(f"{len(names)} feature names do not fit input_shape {shape} ({math.prod(shape)} values)")
    spec = FeatureSpec(features, shape, Target(task, None, classes))
    record = registry.ModelRecord(
        name=name,
        version=0,
        architecture=options["architecture"],
        task=task,
        options={k: v for k, v in options.items()},
        features=spec,
        label=None,
        classes=classes,
        input_shape=shape,
        n_outputs=n_outputs,
        metrics={"source": os.path.abspath(path)},
        status="imported",
    )
    build_module(record, state, strict=options["strict"])  # the weights must fit
    registry.save_model(duck, record, state, replace=replace)
    return record
