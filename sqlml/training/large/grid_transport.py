"""How the grid's owner talks to its workers: one worker in this process, or worker processes.

Both offer ``send(worker, command, payload)``, ``receive()`` (the next message from any
worker), ``export(worker, model)`` (a model's state, to move it), ``stop()`` (tell the
workers to finish, without waiting) and ``close()`` (wait for them). The owner registers
the models between the two, while worker processes tear down.
"""

from __future__ import annotations

import time

from sqlml.errors import TrainingError


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

    def __init__(self, executor):
        from sqlml.training.large.grid_worker import Worker

        self.messages: list = []
        settings = {"device": executor.device_names[0], "spill": executor.spill, "threads": executor.threads}
        self.worker = Worker(0, settings, self.messages.append)

    def send(self, worker: int, command: str, payload) -> None:
        self.worker.handle(command, payload)

    def export(self, worker: int, model_id: int):
        self.worker.handle("export", model_id)
        return self._take("exported", model_id)

    def _take(self, kind, model_id):
        for k, message in enumerate(self.messages):
            if message[0] == kind and message[2] == model_id:
                return self.messages.pop(k)[3]
        raise TrainingError(f"grid worker sent no {kind!r} for model {model_id}")

    def receive(self):
        if not self.messages:
            raise TrainingError("the grid worker has nothing more to report")
        return self.messages.pop(0)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.handle("stop", None)
            self.worker = None

    def close(self) -> None:
        self.stop()


class Processes:
    """Worker processes from the forkserver; messages over queues."""

    def __init__(self, devices: list[str], threads: int, timeout: float = 600.0):
        """Start one worker per device; returns at once (each says 'ready' when up, skipped then)."""
        from sqlml.training.large import processes
        from sqlml.training.large.grid_worker import serve

        ctx = processes.context()
        self.outbox = ctx.Queue()
        self.inboxes = []
        self.procs = []
        self.pending: list = []
        self.timeout = timeout
        self.stopped = False
        for w, device in enumerate(devices):
            inbox = ctx.Queue()
            settings = {"device": device, "spill": None, "threads": threads}
            self.procs.append(processes.start(ctx, serve, (w, settings, inbox, self.outbox)))
            self.inboxes.append(inbox)

    def send(self, worker: int, command: str, payload) -> None:
        self.inboxes[worker].put((command, payload))

    def export(self, worker: int, model_id: int):
        self.send(worker, "export", model_id)
        while True:
            message = self._next()
            if message[0] == "exported" and message[2] == model_id:
                return message[3]
            self.pending.append(message)

    def receive(self):
        if self.pending:
            return self.pending.pop(0)
        return self._next()

    def _next(self):
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
            if message[0] == "error":
                self._kill()
                raise TrainingError(f"grid worker {message[1]} failed: {message[3]}")
            if message[0] == "ready":
                continue
            return message

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            for inbox in self.inboxes:
                inbox.put(("stop", None))

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
