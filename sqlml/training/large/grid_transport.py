"""How the grid's owner talks to its workers: one worker in this process, or worker processes.

Both offer ``send(worker, command)``, ``receive()`` (the next message from any worker),
``export(worker, model)`` (a model's state, to move it), ``stop()`` (tell the workers to
finish, without waiting) and ``close()`` (wait for them); commands and messages are
the dataclasses of ``grid_messages``. The owner registers
the models between the two, while worker processes tear down.
"""

from __future__ import annotations

import time

from sqlml.errors import TrainingError
from sqlml.training.large import grid_messages as m


class Threads:
    """torch CPU threads for an in-process worker (one per worker: the workers are the parallelism)."""

    def __init__(self, count: int):
        import torch

        self.before = torch.get_num_threads()
        torch.set_num_threads(count)

    def restore(self) -> None:
        import torch

        torch.set_num_threads(self.before)


class Inline:
    """One worker, run in the owner's process (no process start, same code path)."""

    def __init__(self, device: str, slots=None):
        from sqlml.training.large.grid_worker import Worker

        self.messages: list[m.Message] = []
        self.worker: Worker | None = Worker(0, device, self.messages.append, slots)

    def send(self, worker: int, command: m.Command) -> None:
        assert self.worker is not None, "the grid's worker has stopped"
        self.worker.handle(command)

    def export(self, worker: int, model_id: int) -> dict:
        self.send(worker, m.Export(model_id))
        for k, message in enumerate(self.messages):
            if isinstance(message, m.Exported) and message.model == model_id:
                return self.messages.pop(k).state
        raise TrainingError(f"grid worker sent no state for model {model_id}")

    def receive(self) -> m.Message:
        if not self.messages:
            raise TrainingError("the grid worker has nothing more to report")
        return self.messages.pop(0)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.handle(m.Stop())
            self.worker = None

    def close(self) -> None:
        self.stop()


class Processes:
    """Worker processes from the forkserver; messages over queues."""

    def __init__(self, devices: list[str], threads: int, timeout: float = 600.0):
        """Start one worker per device; returns at once (each says ``Ready`` when up, skipped then)."""
        from sqlml.training.large import processes
        from sqlml.training.large.grid_worker import serve

        ctx = processes.context()
        self.outbox = ctx.Queue()
        self.inboxes = []
        self.procs = []
        self.pending: list[m.Message] = []
        self.timeout = timeout
        self.stopped = False
        for w, device in enumerate(devices):
            inbox = ctx.Queue()
            self.procs.append(processes.start(ctx, serve, (w, device, threads, inbox, self.outbox)))
            self.inboxes.append(inbox)

    def send(self, worker: int, command: m.Command) -> None:
        self.inboxes[worker].put(command)

    def export(self, worker: int, model_id: int) -> dict:
        self.send(worker, m.Export(model_id))
        while True:
            message = self._next()
            if isinstance(message, m.Exported) and message.model == model_id:
                return message.state
            self.pending.append(message)

    def receive(self) -> m.Message:
        if self.pending:
            return self.pending.pop(0)
        return self._next()

    def _next(self) -> m.Message:
        import queue

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                message = self.outbox.get(timeout=1.0)
            except queue.Empty:
                dead = [w for w, p in enumerate(self.procs) if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    self._kill()
                    raise TrainingError(
                        f"grid worker(s) {dead} exited unexpectedly" if dead else f"grid workers silent for {self.timeout:.0f}s"
                    ) from None
                continue
            if isinstance(message, m.Failed):
                self._kill()
                raise TrainingError(f"grid worker {message.worker} failed: {message.message}")
            if isinstance(message, m.Ready):
                continue
            return message

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            for inbox in self.inboxes:
                inbox.put(m.Stop())

    def close(self) -> None:
        self.stop()
        for proc in self.procs:
            proc.join(timeout=30)
        self._kill()

    def _kill(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(timeout=5)
