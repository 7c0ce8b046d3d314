"""A grid worker: trains whichever models the shard alternator hands it, a unit at a time.

A worker is one compute device (a GPU, or a CPU process here). It holds the models
homed on it, each a ``ModelRun`` with its own RNG stream (so interleaving never changes
a model's dropout draws), and for spilled models one ``SpillDevice`` whose slots the
models share. Models reading the same staged data with the same batching share one
pass over it: decoded batches are kept until every model on the worker has used them.

Commands (from the owner):  configure(settings) | add(id, member) | run(id, batches, hint) | export(id) | stop
Messages (to the owner):    ran | epoch | checkpoint | done | exported | error
``Worker.handle`` does the work; ``serve`` is the process loop around it, and the owner
can also call ``handle`` directly (one worker, no process).
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict


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
    def __init__(self, worker_id: int, settings: dict, emit):
        self.id = worker_id
        self.settings = settings
        self.emit = emit
        self.runs: dict[int, object] = {}
        self.cache = FeedCache()
        self.device = None  # SpillDevice, made when the first spilled model arrives

    # -- commands ------------------------------------------------------------------------------
    def handle(self, command: str, payload) -> bool:
        """Do one command; False after ``stop``."""
        if command == "configure":  # settings known once the jobs exist (the spilled members' slots)
            self.settings.update(payload)
        elif command == "add":
            model_id, member = payload
            self.runs[model_id] = self._build(model_id, member)
        elif command == "run":
            model_id, batches, hint = payload
            self._run(model_id, batches, hint)
        elif command == "export":
            run = self.runs.pop(payload)
            self.emit(("exported", self.id, payload, run.checkpoint_state(mid_epoch=True)))
            run.engine.close()
        elif command == "stop":
            for run in self.runs.values():
                run.engine.close()
            self.runs.clear()
            if self.device is not None:
                self.device.close()
            return False
        else:
            raise RuntimeError(f"unknown grid command {command!r}")
        return True

    def _run(self, model_id: int, batches: int, hint) -> None:
        run = self.runs[model_id]
        if hint is not None and hint in self.runs:
            prefetch = getattr(self.runs[hint].engine, "prefetch_first", None)
            if prefetch is not None:
                prefetch()
        started, cpu = time.perf_counter(), time.process_time()
        ran = run.run(batches)
        seconds = time.perf_counter() - started
        self.emit(("ran", self.id, model_id, {"batches": ran, "seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                                              "remaining": run.remaining_batches()}))
        if run.done:
            result = run.result()
            self.emit(("done", self.id, model_id, {
                "state_dict": {k: v.detach().cpu().clone() for k, v in result.module.state_dict().items()},
                "history": [r.to_json() for r in result.history],
                "stopped_early": result.stopped_early,
                "best_epoch": result.best_epoch,
                "extra": result.extra,
            }))
            self.runs.pop(model_id).engine.close()

    # -- building a model's run -------------------------------------------------------------------
    def _build(self, model_id: int, member: dict):
        import torch

        from sqlml.training.job import EarlyStopping
        from sqlml.training.large.engines import ResidentEngine
        from sqlml.training.large.run import ModelRun

        device = torch.device(self.settings["device"])
        if member["strategy"] == "spill":
            engine = self._spill_engine(member, device)
        else:
            engine = ResidentEngine(member["module"], member["optimizer"], member["task"], device)
        stopper = EarlyStopping(*member["early_stopping"]) if member["early_stopping"] else None
        run = ModelRun(
            name=member["name"],
            spec=member["spec"],
            feed=member["feed"],
            validation=member["validation"],
            epochs=member["epochs"],
            seed=member["seed"],
            stopper=stopper,
            engine=engine,
            checkpoint_every=member["checkpoint_every"],
            on_epoch=lambda report: self.emit(("epoch", self.id, model_id, report.to_json())),
            on_checkpoint=(lambda state: self.emit(("checkpoint", self.id, model_id, state))) if member["checkpointing"] else None,
            isolate_rng=True,
            source=self.cache.source,
            lr=member["optimizer"].lr,
        )
        if member.get("resume") is not None:
            run.resume(member["resume"])
        return run

    def _spill_engine(self, member: dict, device):
        from sqlml.training.large.arena import SpillDevice
        from sqlml.training.large.strategy import spill_engine

        opts = member["spill"]
        if self.device is None:
            s = self.settings["spill"]
            self.device = SpillDevice(device, opts["device_memory"], s["slot_bytes"], s["grad_reserve"], prefetch=opts["spill_prefetch"])
        engine, _, _ = spill_engine(
            member["module"], member["optimizer"], member["task"], device, opts,
            feed=member["feed"], batch_size=member["batch_size"], shared=self.device,
        )
        return engine


def serve(worker_id: int, settings: dict, inbox, outbox) -> None:
    """Process entry point: serve commands until ``stop``; every failure goes to the owner."""
    import torch

    torch.set_num_threads(settings.get("threads") or 1)
    if settings["device"].startswith("cuda"):
        torch.cuda.set_device(torch.device(settings["device"]))
    current = None
    try:
        worker = Worker(worker_id, settings, outbox.put)
        outbox.put(("ready", worker_id, None, None))
        while True:
            command, payload = inbox.get()
            current = payload[0] if command in ("add", "run") else payload
            if not worker.handle(command, payload):
                outbox.put(("stopped", worker_id, None, None))
                return
    except BaseException as error:  # noqa: BLE001 - reported, then the process ends
        from sqlml.errors import SqlmlError

        told = str(error) if isinstance(error, SqlmlError) else f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        outbox.put(("error", worker_id, current, told))
