"""One pipeline stage in its own process: the worker side of ``pipeline.PipelineRunner``.

The worker joins a gloo (CPU) or nccl (one GPU per process) group, wraps its layers in
a ``torch.distributed.pipelining.PipelineStage`` and serves the commands of
``pipeline_messages`` from the owning process: run a step (GPipe or 1F1B over M
micro-batches), step its optimizer, report gradients or state, load a state. Only the first stage receives
inputs and only the last receives targets; activations and gradients between stages
travel by point-to-point sends inside the group, never through the owner.
"""

from __future__ import annotations

import time
import traceback


def _stage_module(layers, checkpoint_activations: bool):
    import torch
    from torch import nn
    from torch.utils.checkpoint import checkpoint

    class Stage(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            for layer in self.layers:
                if checkpoint_activations and torch.is_grad_enabled() and any(
                    p.requires_grad for p in layer.parameters()
                ):
                    x = checkpoint(layer, x, use_reentrant=False)
                else:
                    x = layer(x)
            return x

    return Stage()


class PipelineLoss:
    """The training core's loss on one micro-batch, as a picklable callable for the last stage.

    ``target`` packs a micro-batch's label, row weight and soft labels as columns of one
    float tensor (the schedule splits it with the inputs). Each micro-batch contributes
    ``sum(w * loss) / W`` where ``W`` is the weight of the whole batch, and the schedule
    runs with ``scale_grads=False``, so the micro-batch gradients add up to the gradient
    of the whole batch's weighted mean loss: the same loss one process computes.
    """

    def __init__(self, task: str, has_soft: bool):
        self.task = task
        self.has_soft = has_soft
        self.weight_total = 1.0

    def __call__(self, output, target):
        from sqlml.training.feed import Batch
        from sqlml.training.job import row_losses

        y = target[:, 0].long() if self.task == "classification" else target[:, 0]
        soft = target[:, 2:] if self.has_soft else None
        batch = Batch(None, y, target[:, 1], soft, self.weight_total)
        weighted = (row_losses(self.task, output, batch) * batch.weight).sum()
        return weighted * (1.0 / max(self.weight_total, 1e-12))


def pack_target(batch):
    """Label, weight and soft labels of a ``Batch`` as one float tensor ``[n, 2 (+k)]``."""
    import torch

    columns = [batch.y.reshape(len(batch), 1).float(), batch.weight.reshape(len(batch), 1).float()]
    if batch.soft is not None:
        columns.append(batch.soft.float())
    return torch.cat(columns, dim=1)


def micro_batches_for(rows: int, wanted: int) -> int:
    """The most micro-batches, at most ``wanted``, that split ``rows`` evenly.

    A stage sizes its receive buffers from the first micro-batch, so every micro-batch
    of a step must have the same rows; a short last batch gets fewer micro-batches.
    """
    return max(m for m in range(1, min(wanted, rows) + 1) if rows % m == 0)


def serve(rank: int, world: int, init_file: str, spec, inbox, outbox) -> None:
    """Process entry point (spawned); ``spec`` is a ``StageSpec``. Every failure goes to the owner."""
    from sqlml.training.large.pipeline_messages import Failed

    try:
        _serve(rank, world, init_file, spec, inbox, outbox)
    except BaseException as error:  # noqa: BLE001 - report every failure to the owner
        outbox.put(Failed(rank, f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
        raise SystemExit(1)


def _serve(rank, world, init_file, spec, inbox, outbox):
    import torch
    import torch.distributed as dist
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    from sqlml.training.large import pipeline_messages as m

    torch.set_num_threads(spec.threads)
    device = torch.device(spec.device)
    if device.type == "cuda":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank, world_size=world)
    module = _stage_module(spec.layers, spec.checkpoint_activations).to(device)
    optimizer = spec.optimizer.build(module.parameters()) if any(
        p.requires_grad for p in module.parameters()
    ) else None
    is_first, is_last = rank == 0, rank == world - 1
    # every stage needs the loss: a schedule without one runs forward only
    loss = spec.loss_fn
    schedule_cls = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[spec.schedule]
    schedules = {}  # batch rows -> (stage, schedule): shapes are fixed per stage object
    busy = [0.0]

    def schedule_for(rows):
        if rows not in schedules:
            stage = PipelineStage(module, rank, world, device)
            for name in ("forward_one_chunk", "backward_one_chunk"):
                setattr(stage, name, _timed(getattr(stage, name), busy))
            count = micro_batches_for(rows, spec.micro_batches)
            cls = schedule_cls if (schedule_cls is ScheduleGPipe or count >= world) else ScheduleGPipe
            schedules[rows] = cls(stage, n_microbatches=count, loss_fn=loss, scale_grads=spec.scale_grads)
        return schedules[rows]

    outbox.put(m.Ready(rank))
    while True:
        command = inbox.get()
        if isinstance(command, m.Step):
            module.zero_grad(set_to_none=True)
            sched = schedule_for(command.rows)
            busy[0] = 0.0
            start, cpu = time.perf_counter(), time.process_time()
            losses = []
            if is_first and is_last:
                raise RuntimeError("a pipeline needs at least two stages")
            if is_first:
                sched.step(command.x.to(device))
            elif is_last:
                if hasattr(loss, "weight_total"):
                    loss.weight_total = command.weight_total
                sched.step(target=command.target.to(device), losses=losses)
            else:
                sched.step()
            wall = time.perf_counter() - start
            if command.update and optimizer is not None:
                optimizer.step()
            total = weighted = None
            if is_last:
                # the schedule's per-micro-batch losses (its first step also calls the loss on
                # placeholder tensors to infer shapes, so nothing is accumulated inside the loss)
                total = float(sum(float(v.detach()) for v in losses))
                weighted = total * command.weight_total
            outbox.put(m.Stepped(rank, wall, busy[0], time.process_time() - cpu, total, weighted))
        elif isinstance(command, m.Seed):
            torch.manual_seed(command.seed + rank)
            outbox.put(m.Seeded(rank))
        elif isinstance(command, m.SendGradients):
            outbox.put(m.Gradients(rank, [None if p.grad is None else p.grad.detach().cpu().clone() for p in module.parameters()]))
        elif isinstance(command, m.SendState):
            outbox.put(m.StageState(
                rank,
                [{k: v.detach().cpu().clone() for k, v in layer.state_dict().items()} for layer in module.layers],
                optimizer.state_dict() if optimizer is not None else None,
            ))
        elif isinstance(command, m.LoadState):
            for layer, state in zip(module.layers, command.layers):
                layer.load_state_dict(state)
            if optimizer is not None and command.optimizer is not None:
                optimizer.load_state_dict(command.optimizer)
            outbox.put(m.Loaded(rank))
        elif isinstance(command, m.Stop):
            dist.destroy_process_group()
            outbox.put(m.Stopped(rank))
            return
        else:
            raise RuntimeError(f"unknown pipeline command {command!r}")


def _timed(fn, busy):
    def run(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            busy[0] += time.perf_counter() - start

    return run
