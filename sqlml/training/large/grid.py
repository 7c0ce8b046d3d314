"""``CREATE MODELS``: a hyper-parameter grid, trained at once, every configuration registered.

    CREATE [OR REPLACE] MODELS name
        FOR (lr IN (1e-3, 1e-2), hidden IN ([64], [256, 64]))
        [WITH (option := value, ..., workers := 2, metric := 'val_loss')]
        AS SELECT ...

Every combination of the ``FOR`` values (in order, the last varying fastest) is one
model, ``name_1``, ``name_2``, ..., trained with the ``WITH`` options plus its own
values, exactly as ``CREATE MODEL name_k WITH (...)`` would train it (same weights: a
test holds that). The query is staged once per group of configurations that read the
data the same way; the models run on ``workers`` processes (one per GPU under CUDA)
and a worker's models share one decoded pass over the batches. The shard alternator
(``scheduler``) hands out one unit of ``unit_batches`` batches at a time: longest
remaining time first, the model already on a worker preferred, the next one prefetched.
Members may spill (``strategy := 'spill'``), sharing their worker's device budget.

Each model lands in the registry with its metrics plus ``grid``, ``grid_params`` and
``grid_best``: the best by ``metric`` (default: validation loss when there is
validation data, else training loss) is marked. The statement is one transaction;
each model checkpoints on its own, so re-running an interrupted statement resumes every
model where it stopped.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import uuid
from dataclasses import replace as dc_replace
from typing import Any

from sqlml import bounds, catalog
from sqlml.errors import InvalidOptionError

WHERE = "CREATE MODELS"

#: options of the grid itself (not passed to the models)
GRID_OPTIONS = {"workers": "auto", "metric": None, "unit_batches": 8}

#: options that decide how the query is staged; configurations differing in them stage separately
STAGING_KEYS = (
    "label", "weight", "soft_label", "features", "task", "classes", "input_shape", "normalize", "max_categories",
    "block_rows", "seed", "validation_split", "validation_query", "validate", "scratch_dir",
)

LOWER_IS_BETTER = ("loss", "rmse", "mae")
DEPTH = 2  # units queued per worker process
MEMBER_STRATEGIES = ("single", "spill")


# -- the FOR (...) clause, read for sqlml.training.statements.create_models ---------------------


def parse_grid(p) -> dict[str, list]:
    """``(param IN (v1, v2, ...), ...)`` -> {param: [values]} in the order written."""
    p.expect("(")
    grid: dict[str, list] = {}
    while True:
        tok = p.current
        param = p.identifier("a model option to vary").lower()
        if param in grid:
            p.error(f"option {param!r} is varied twice", tok)
        p.expect("IN")
        p.expect("(")
        values = []
        if p.at(")"):
            p.error(f"give at least one value for {param}")
        while True:
            values.append(p.literal())
            if p.accept(")"):
                break
            p.expect(",")
        grid[param] = values
        if p.accept(")"):
            return grid
        p.expect(",")


def expand(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination, the last parameter varying fastest."""
    keys = list(grid)
    size = math.prod(len(v) for v in grid.values())
    if size > bounds.MAX_GRID_MODELS:
        raise InvalidOptionError(WHERE, keys[0], f"the grid has {size:,} combinations; at most {bounds.MAX_GRID_MODELS:,} models train at once")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def grid_settings(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the grid's own options, the options every model gets)."""
    own = {k: options.get(k, default) for k, default in GRID_OPTIONS.items()}
    models = {k: v for k, v in options.items() if k not in GRID_OPTIONS}
    workers = own["workers"]
    if workers != "auto" and bounds.whole(1, bounds.MAX_PROCESSES)(workers):
        raise InvalidOptionError(
            WHERE, "workers", f"expected 'auto' or a number of worker processes from 1 to {bounds.MAX_PROCESSES}, got {workers!r}"
        )
    bounds.require(WHERE, "unit_batches", own["unit_batches"], bounds.whole(1, bounds.MAX_BATCH_ROWS))
    if own["metric"] is not None and not (isinstance(own["metric"], str) and own["metric"]):
        raise InvalidOptionError(WHERE, "metric", f"expected a metric name such as 'val_loss', got {own['metric']!r}")
    return own, models


# -- training the grid -----------------------------------------------------------------------------


def train_grid(ctx, name: str, grid: dict[str, list], options: dict[str, Any], query: str, *, replace: bool = False):
    from sqlml.models import registry
    from sqlml.training.options import settle

    own, common = grid_settings(options)
    overlap = sorted(set(grid) & set(common))
    if overlap:
        raise InvalidOptionError(WHERE, overlap[0], "is both varied in FOR (...) and fixed in WITH (...); keep one")
    if set(grid) & set(GRID_OPTIONS):
        raise InvalidOptionError(WHERE, sorted(set(grid) & set(GRID_OPTIONS))[0], "is an option of the grid and cannot vary")
    configs = expand(grid)
    names = [f"{name}_{k}" for k in range(1, len(configs) + 1)]
    settled = []
    for config in configs:
        opts = settle({**common, **config})
        if opts["strategy"] not in MEMBER_STRATEGIES:
            raise InvalidOptionError(
                WHERE, "strategy", f"grid members train with {' or '.join(map(repr, MEMBER_STRATEGIES))}, not {opts['strategy']!r}"
            )
        settled.append(opts)
    duck = ctx.duck
    for member in names:
        catalog.require_new(duck, registry.KIND, member, replace=replace, exists=registry.latest_version(duck, member) is not None)
    # worker processes start (from the forkserver) while the query is staged and the jobs are made
    transport = _start_workers(own, settled)
    executor = None
    try:
        members, groups = _prepare(duck, names, configs, settled, query, replace)
        side = duck.cursor()
        try:
            for member in members:
                member.make_job(side)
            executor = GridExecutor(members, own, transport)
            outcome = executor.run()
            return _register(ctx, name, members, outcome, own, replace)  # while the workers shut down
        finally:
            side.close()
            for prepared in groups.values():
                prepared.training.cleanup()
    finally:
        if executor is not None:
            executor.close()
        elif transport is not None:
            transport.close()


def _start_workers(own: dict, settled: list[dict]):
    """Worker processes for a grid on more than one worker (None: it trains in this process)."""
    from sqlml.training.large.grid_transport import Processes

    devices = worker_devices(own["workers"], len(settled), settled[0]["device"])
    if len(devices) == 1:
        return None
    return Processes(devices, settled[0].get("threads") or 1)


class Member:
    """One configuration: its name, values, settled options, staged data and job."""

    def __init__(self, index: int, name: str, params: dict, options: dict, prepared):
        self.index = index
        self.name = name
        self.params = params
        self.options = options
        self.prepared = prepared
        self.job = None
        self.result = None

    def make_job(self, side) -> None:
        from sqlml.models import registry
        from sqlml.training.runner import make_job

        self.job = make_job(self.prepared, side, version=registry.next_version(side, self.name), run_id=uuid.uuid4().hex[:12])


def _staging_key(options: dict) -> str:
    return json.dumps({k: options.get(k) for k in STAGING_KEYS}, sort_keys=True, default=str)


def _prepare(duck, names, configs, settled, query, replace):
    """Stage the query once per staging group; every member gets a ``Prepared`` of its own options."""
    from sqlml.training.runner import prepare

    groups: dict[str, object] = {}
    members = []
    try:
        for k, (member, config, opts) in enumerate(zip(names, configs, settled)):
            key = _staging_key(opts)
            if key not in groups:
                groups[key] = prepare(duck, member, dict(opts), query, replace=True)  # names were checked above
            members.append(Member(k, member, config, opts, dc_replace(groups[key], name=member, options=opts)))
    except BaseException:
        for prepared in groups.values():
            prepared.training.cleanup()
        raise
    return members, groups


# -- registering -----------------------------------------------------------------------------------


def _metric_name(members, own) -> str:
    if own["metric"]:
        return own["metric"]
    return "val_loss" if any(m.job.validation is not None for m in members) else "train_loss"


def lower_is_better(metric: str) -> bool:
    return any(word in metric for word in LOWER_IS_BETTER)


def _register(ctx, name, members, outcome, own, replace):
    import pyarrow as pa

    from sqlml.models import registry
    from sqlml.training.checkpoints import CheckpointStore
    from sqlml.training.runner import model_record

    metric = _metric_name(members, own)
    records = []
    for member in members:
        record = model_record(member.prepared, member.result, sum(r.seconds for r in member.result.history))
        if metric not in record.metrics:
            raise InvalidOptionError(
                WHERE, "metric", f"model {member.name!r} has no metric {metric!r}; it has: " + ", ".join(sorted(record.metrics))
            )
        records.append(record)
    values = [float(r.metrics[metric]) for r in records]
    pick = min if lower_is_better(metric) else max
    best = values.index(pick(values))
    for k, (member, record) in enumerate(zip(members, records)):
        record.metrics.update(
            grid=name, grid_params=member.params, grid_metric=metric, grid_best=(k == best),
            grid_worker=outcome["homes"].get(member.index),
        )
        registry.save_model(ctx.duck, record, member.result.module.state_dict(), replace=replace)
    side = ctx.duck.cursor()
    try:
        for member in members:
            if member.options["checkpoint"]:
                CheckpointStore(side, member.name, "").clear()
    finally:
        side.close()
    table = pa.table({
        "model": [r.name for r in records],
        "version": pa.array([r.version for r in records], pa.int32()),
        "params": [json.dumps(m.params, default=str) for m in members],
        "metric": [metric] * len(records),
        "value": pa.array(values, pa.float64()),
        "best": [k == best for k in range(len(records))],
        "train_loss": pa.array([r.metrics.get("train_loss") for r in records], pa.float64()),
        "epochs": pa.array([m.result.epochs_run for m in members], pa.int32()),
        "worker": pa.array([outcome["homes"].get(m.index) for m in members], pa.int32()),
    })
    return ctx.connection.wrap(ctx.duck.from_arrow(table))


# -- running the members ---------------------------------------------------------------------------


def worker_devices(setting, n_models: int, device_option) -> list[str]:
    """One device name per worker: GPUs in turn under CUDA, else 'cpu'."""
    import torch

    from sqlml.models.loading import resolve_device

    device = torch.device(resolve_device(device_option))
    workers = resolve_workers(setting, n_models, device)
    return [f"cuda:{w % torch.cuda.device_count()}" if device.type == "cuda" else "cpu" for w in range(workers)]


def resolve_workers(setting, n_models: int, device) -> int:
    import torch

    if setting != "auto":
        return min(int(setting), n_models)
    if device.type == "cuda":
        return max(1, min(torch.cuda.device_count(), n_models))
    return max(1, min(os.cpu_count() or 1, n_models))


class GridExecutor:
    """Owner side: starts workers, runs the alternator, relays reports and checkpoints."""

    def __init__(self, members: list[Member], own: dict, transport=None):
        self.members = members
        self.unit = int(own["unit_batches"])
        self.device_names = worker_devices(own["workers"], len(members), members[0].options["device"])
        self.workers = len(self.device_names)
        self.spill = _spill_settings(members)
        self.threads = members[0].options.get("threads") or 1
        self.transport = transport  # worker processes started early, or None

    def close(self) -> None:
        """Wait for the workers to end (``run`` only tells them to)."""
        if self.transport is not None:
            self.transport.close()

    def run(self) -> dict:
        from sqlml.training.job import EpochReport, TrainResult
        from sqlml.training.large.grid_transport import Inline, Processes, Threads
        from sqlml.training.large.scheduler import ShardAlternator, Task

        runs = {m.index: self._payload(m) for m in self.members}
        # a model that finished before an interruption still goes to a worker once (0 batches
        # to run) to rebuild its result from its last checkpoint
        tasks = [Task(m.index, m.name, max(1, self._remaining(m, runs[m.index]))) for m in self.members]
        alternator = ShardAlternator(tasks, unit=self.unit)
        if self.transport is None:
            self.transport = Inline(self) if self.workers == 1 else Processes(self.device_names, self.threads)
        transport = self.transport
        if self.spill is not None and self.workers > 1:
            for worker in range(self.workers):
                transport.send(worker, "configure", {"spill": self.spill})
        threads = Threads(self.threads) if self.workers == 1 else None
        # each worker keeps DEPTH units queued, so it never waits for the owner between units
        depth = 1 if self.workers == 1 else DEPTH
        queued: dict[int, list] = {w: [] for w in range(self.workers)}
        homes: dict[int, int] = {}
        placed: dict[int, int] = {}
        results: dict[int, dict] = {}
        unit_time: dict[int, list] = {}  # model -> [wall, cpu] seconds inside its units
        total = sum(t.remaining for t in tasks)
        job0 = self.members[0].job
        try:
            with job0.progress(total, f"grid of {len(self.members)} models") as bar:
                while len(results) < len(self.members):
                    for worker in range(self.workers):
                        while len(queued[worker]) < depth:
                            task = alternator.pick(worker)
                            if task is None:
                                break
                            if task.id not in placed:
                                transport.send(worker, "add", (task.id, runs[task.id]))
                            elif placed[task.id] != worker:  # migration: state moves to this worker
                                state = transport.export(placed[task.id], task.id)
                                transport.send(worker, "add", (task.id, {**runs[task.id], "resume": state}))
                            placed[task.id] = worker
                            following = alternator.next_after(worker, task, self.unit)
                            hint = following.id if following is not None and following.id != task.id else None
                            requested = task.claimed
                            transport.send(worker, "run", (task.id, requested, hint))
                            queued[worker].append((task.id, requested))
                    kind, worker, model_id, payload = transport.receive()
                    member = self.members[model_id]
                    if kind == "ran":
                        _, requested = queued[worker].pop(0)
                        busy = unit_time.setdefault(model_id, [0.0, 0.0])
                        busy[0] += payload["seconds"]
                        busy[1] += payload.get("cpu_seconds", 0.0)
                        alternator.finished_unit(tasks[model_id], worker, payload["batches"], payload["seconds"],
                                                 payload["remaining"], requested=requested)
                        homes[model_id] = worker
                        bar.update(payload["batches"])
                    elif kind == "epoch":
                        member.job.on_epoch_end(EpochReport(**payload))
                    elif kind == "checkpoint":
                        if member.job.save_checkpoint is not None:
                            member.job.save_checkpoint(payload)
                    elif kind == "done":
                        results[model_id] = payload
                        tasks[model_id].done = True
                        placed.pop(model_id, None)
        finally:
            transport.stop()
            if threads is not None:
                threads.restore()
        for member in self.members:
            payload = results[member.index]
            module = member.job.module
            module.load_state_dict(payload["state_dict"])
            member.result = TrainResult(
                module=module,
                history=[EpochReport(**r) for r in payload["history"]],
                epochs_run=len(payload["history"]),
                stopped_early=payload["stopped_early"],
                best_epoch=payload["best_epoch"],
                extra={**payload["extra"], "grid_unit_seconds": round(unit_time.get(member.index, [0, 0])[0], 3),
                       "grid_unit_cpu_seconds": round(unit_time.get(member.index, [0, 0])[1], 3)},
            )
        return {"homes": homes, "workers": self.workers}

    def _payload(self, member: Member) -> dict:
        job = member.job
        state = job.load_checkpoint()
        from sqlml.training.large.run import FORMAT

        return {
            "name": member.name,
            "module": job.module,
            "spec": job.spec,
            "feed": job.feed,
            "validation": job.validation,
            "optimizer": job.optimizer,
            "epochs": job.epochs,
            "seed": job.seed,
            "task": job.task,
            "early_stopping": (job.early_stopping.patience, job.early_stopping.min_delta) if job.early_stopping else None,
            "strategy": member.options["strategy"],
            "spill": self.spill["options"].get(member.index) if self.spill else None,
            "batch_size": int(member.options["batch_size"]),
            "checkpoint_every": member.options.get("checkpoint_every"),
            "checkpointing": job.save_checkpoint is not None,
            "resume": state if state is not None and state.get("format") == FORMAT else None,
        }

    def _remaining(self, member: Member, payload: dict) -> int:
        from sqlml.training.large.run import ModelRun

        probe = ModelRun(name=member.name, spec=None, feed=member.job.feed, validation=None, epochs=member.job.epochs,
                         seed=0, stopper=None, engine=None)
        state = payload["resume"]
        if state is not None:
            probe.epoch = int(state["epoch"])
            probe.batch = int((state.get("cursor") or {}).get("batch", 0))
            es = state.get("early_stopping")
            if es and es.get("best_state") is not None and member.job.early_stopping is not None \
                    and es["bad_epochs"] >= member.job.early_stopping.patience:
                probe.stopped = True
        return probe.remaining_batches()

def _spill_settings(members: list[Member]) -> dict | None:
    """One device configuration for every spilled member: the slot size that fits all of them."""
    from sqlml.training.large.layers import sequential_layers, shard_layout
    from sqlml.training.large.optimizers import state_tensors_per_param
    from sqlml.training.large.options import spill_options
    from sqlml.training.large.spill import slots_needed
    from sqlml.training.large.strategy import shard_plan

    spilled = [m for m in members if m.options["strategy"] == "spill"]
    if not spilled:
        return None
    options, budgets, prefetch = {}, set(), set()
    slot_bytes, grad_reserve = 64, 0
    for member in spilled:
        opts = spill_options(member.options)
        options[member.index] = opts
        budgets.add(opts["device_memory"])
        prefetch.add(opts["spill_prefetch"])
        if opts["balance"] == "time":
            raise InvalidOptionError(WHERE, "balance", "grid members balance shards by 'bytes'")
        layers = sequential_layers(member.job.module)
        capacity = opts["device_memory"] // slots_needed(opts["spill_prefetch"])
        plan = shard_plan(layers, opts, count_key="shards", optimizer=member.job.optimizer, capacity=capacity)
        from torch import nn

        for a, b in plan.ranges():
            layout = shard_layout(nn.Sequential(*layers[a:b]), state_tensors_per_param(member.job.optimizer))
            slot_bytes = max(slot_bytes, layout.total_bytes)
            grad_reserve = max(grad_reserve, layout.grad_bytes)
    if len(budgets) > 1 or len(prefetch) > 1:
        raise InvalidOptionError(WHERE, "device_memory", "spilled grid members share their worker's device: give one device_memory and spill_prefetch for all")
    return {"options": options, "slot_bytes": slot_bytes, "grad_reserve": grad_reserve}
