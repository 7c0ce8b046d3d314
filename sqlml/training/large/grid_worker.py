"""A grid worker: trains whichever models the shard alternator hands it, a unit at a time.

A worker is one compute device (a GPU, or a CPU process here). It holds the models
homed on it, each an ``EpochLoop`` (the one epoch loop) with its own RNG stream (so
interleaving never changes a model's dropout draws), and for spilled models one
``SpillDevice`` whose slots the models share. Models reading the same staged data with
the same batching share one pass over it: decoded batches are kept until every model on
the worker has used them.

The commands and messages are ``grid_messages``'. ``Worker.handle`` does the work;
``serve`` is the process loop around it, and the owner can also call ``handle``
directly (one worker, no process).
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict

from sqlml.training.job import FinishedRun, JobHooks, TrainJob
from sqlml.training.large import grid_messages as m
from sqlml.training.large.grid_messages import SpillSlots
from sqlml.training.loop import EpochLoop


class FeedCache:
    """Decoded batches shared by the models of one worker that read the same feed."""

    def __init__(self, keep: int = 64, streams: int = 4):
        self.keep = keep
        self.max_streams = streams
        self.streams: OrderedDict = OrderedDict()  # (feed key, epoch, serial) -> stream
        self.serial = 0
        self.decoded = 0  # batches produced by feed iterators (tests: sharing happened)
        self.served = 0

    @staticmethod
    def key(feed) -> tuple:
        t = feed.training
        return (t.path, t.seed, t.validation_fraction, feed.part, feed.batch_size, feed.shuffle, feed.window, feed.rank, feed.world)

    def source(self, feed, epoch: int, start: int):
        key = self.key(feed)

        def batches():
            i = start
            while True:
                batch = self._get(feed, key, epoch, i)
                if batch is None:
                    return
                self.served += 1
                yield batch
                i += 1

        return batches()

    def _get(self, feed, key, epoch, i):
        stream = None
        for (k, e, _), s in self.streams.items():
            if k == key and e == epoch and s["first"] <= i <= s["produced"]:
                stream = s
                break
        if stream is None:  # nobody is there: a new pass, started at i
            stream = {"iterator": iter(feed(epoch)), "batches": {}, "first": i, "produced": 0, "ended": False}
            for _ in range(i):  # the feed is deterministic: skip what this model has done
                if next(stream["iterator"], None) is None:
                    break
            stream["produced"] = i
            self.serial += 1
            self.streams[(key, epoch, self.serial)] = stream
            while len(self.streams) > self.max_streams:
                _, old = self.streams.popitem(last=False)
                close = getattr(old["iterator"], "close", None)
                if close:
                    close()
        if i == stream["produced"]:
            if stream["ended"]:
                return None
            batch = next(stream["iterator"], None)
            if batch is None:
                stream["ended"] = True
                return None
            self.decoded += 1
            stream["batches"][i] = batch
            stream["produced"] = i + 1
            while len(stream["batches"]) > self.keep:
                oldest = min(stream["batches"])
                del stream["batches"][oldest]
                stream["first"] = oldest + 1
        return stream["batches"].get(i)


class Worker:
    """The models homed on one device, and the commands that train them."""

    def __init__(self, worker_id: int, device: str, emit, slots: SpillSlots | None = None):
        self.id = worker_id
        self.device_name = device
        self.slots = slots
        self.emit = emit
        self.loops: dict[int, EpochLoop] = {}
        self.cache = FeedCache()
        self.device = None  # SpillDevice, made when the first spilled model arrives

    # -- commands ------------------------------------------------------------------------------
    def handle(self, command: m.Command) -> bool:
        """Do one command; False after ``Stop``."""
        if isinstance(command, m.Configure):  # known once the jobs exist (the spilled members' slots)
            self.slots = command.slots
        elif isinstance(command, m.Add):
            self.loops[command.model] = self._build(command.model, command.job)
        elif isinstance(command, m.Run):
            self._run(command)
        elif isinstance(command, m.Export):
            loop = self.loops.pop(command.model)
            self.emit(m.Exported(self.id, command.model, loop.checkpoint_state(mid_epoch=True)))
            loop.engine.close()
        elif isinstance(command, m.Stop):
            for loop in self.loops.values():
                loop.engine.close()
            self.loops.clear()
            if self.device is not None:
                self.device.close()
            return False
        else:
            raise RuntimeError(f"unknown grid command {command!r}")
        return True

    def _run(self, command: m.Run) -> None:
        loop = self.loops[command.model]
        if command.prefetch is not None and command.prefetch in self.loops:
            self.loops[command.prefetch].engine.prefetch_first()
        started, cpu = time.perf_counter(), time.process_time()
        ran = loop.run(command.batches)
        seconds = time.perf_counter() - started
        self.emit(m.Ran(self.id, command.model, ran, seconds, time.process_time() - cpu, loop.remaining_batches()))
        if loop.done:
            self.emit(m.Done(self.id, command.model, FinishedRun.of(loop.result())))
            self.loops.pop(command.model).engine.close()

    # -- building a model's loop ------------------------------------------------------------------
    def _build(self, model_id: int, job: TrainJob) -> EpochLoop:
        import torch

        from sqlml.training.engine import ResidentEngine

        device = torch.device(self.device_name)
        if job.strategy == "spill":
            engine = self._spill_engine(job, device)
        else:
            engine = ResidentEngine(job.module, job.optimizer, job.task, device)
        hooks = JobHooks(
            on_epoch_end=lambda report: self.emit(m.EpochEnded(self.id, model_id, report)),
            save_checkpoint=lambda state: self.emit(m.Checkpoint(self.id, model_id, state)),
        )
        return EpochLoop(job, engine, hooks, isolate_rng=True, source=self.cache.source)

    def _spill_engine(self, job: TrainJob, device):
        from sqlml.training.large.arena import SpillDevice
        from sqlml.training.large.options import spill_options
        from sqlml.training.large.strategy import spill_engine

        opts = spill_options(job.options)
        if self.device is None:
            if self.slots is None:
                raise RuntimeError("a spilled grid member reached a worker that was not configured for spilling")
            self.device = SpillDevice(device, opts["device_memory"], self.slots.slot_bytes, self.slots.grad_reserve,
                                      prefetch=opts["spill_prefetch"])
        engine, _, _ = spill_engine(job.module, job.optimizer, job.task, device, opts, feed=job.feed,
                                    batch_size=job.batch_size, shared=self.device)
        return engine


def serve(worker_id: int, device: str, threads: int, inbox, outbox) -> None:
    """Process entry point: serve commands until ``Stop``; every failure goes to the owner."""
    import torch

    torch.set_num_threads(threads or 1)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    current = None
    try:
        worker = Worker(worker_id, device, outbox.put)
        outbox.put(m.Ready(worker_id))
        while True:
            command = inbox.get()
            current = getattr(command, "model", None)
            if not worker.handle(command):
                outbox.put(m.Stopped(worker_id))
                return
    except BaseException as error:  # noqa: BLE001 - reported, then the process ends
        from sqlml.errors import SqlmlError

        told = str(error) if isinstance(error, SqlmlError) else f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        outbox.put(m.Failed(worker_id, current, told))
