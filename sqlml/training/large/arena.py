"""The device side of spilling: fixed slots, a ledger of resident bytes, and the copy engine.

The arena is allocated once (``n_slots`` x ``slot_bytes`` on the compute device) and
never grows, so device memory cannot fragment under constant swapping (Hydra needed
``max_split_size_mb`` for that). The ledger counts what is resident — the weights and
optimizer state of the shards in slots, plus the gradients alive during a shard's
backward — and refuses any move that would take it past the budget. Its peak is the
proof the budget held; ``SpillTrainer.audit`` cross-checks it against the tensors.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from sqlml.errors import TrainingError


class BudgetExceeded(TrainingError):
    """Internal guard: a move would have taken resident bytes past ``device_memory``."""


class Ledger:
    def __init__(self, budget: int):
        self.budget = int(budget)
        self.items: dict[str, int] = {}
        self.current = 0
        self.peak = 0

    def hold(self, name: str, nbytes: int) -> None:
        nbytes = int(nbytes)
        delta = nbytes - self.items.get(name, 0)
        if self.current + delta > self.budget:
            raise BudgetExceeded(
                f"holding {name} ({nbytes} bytes) would bring device-resident bytes to "
                f"{self.current + delta}, over device_memory {self.budget}"
            )
        self.items[name] = nbytes
        self.current += delta
        self.peak = max(self.peak, self.current)

    def release(self, name: str) -> None:
        self.current -= self.items.pop(name, 0)


class Arena:
    """``n_slots`` equal byte slots on ``device``, carved from one allocation."""

    def __init__(self, n_slots: int, slot_bytes: int, device):
        import torch

        self.n_slots = n_slots
        self.slot_bytes = slot_bytes
        self.device = torch.device(device)
        self.flat = torch.empty(n_slots * slot_bytes, dtype=torch.uint8, device=self.device)
        self.slots = [self.flat[k * slot_bytes : (k + 1) * slot_bytes] for k in range(n_slots)]

    @property
    def nbytes(self) -> int:
        return self.n_slots * self.slot_bytes

    def owns(self, tensor) -> bool:
        """Whether ``tensor`` lives in the arena's memory."""
        return tensor.untyped_storage().data_ptr() == self.flat.untyped_storage().data_ptr()


class _Done:
    def wait(self) -> None:
        return None


class SyncMover:
    """Copies run at once on the caller's thread (no prefetch)."""

    def submit(self, fn) -> _Done:
        fn()
        return _Done()

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


class _FutureHandle:
    def __init__(self, future: Future):
        self.future = future

    def wait(self) -> None:
        self.future.result()


class ThreadMover:
    """Copies run in order on one background thread (CPU prefetch: memcpy and page-ins
    overlap compute; torch releases the GIL while copying)."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sqlml-spill-io")
        self.last: Future | None = None

    def submit(self, fn) -> _FutureHandle:
        self.last = self.pool.submit(fn)
        return _FutureHandle(self.last)

    def drain(self) -> None:
        if self.last is not None:
            self.last.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class _EventHandle:
    def __init__(self, event):
        self.event = event

    def wait(self) -> None:
        import torch

        torch.cuda.current_stream().wait_event(self.event)


class CudaMover:
    """Copies run in order on a side CUDA stream; the compute stream waits on events, the
    host never blocks (double buffering for real: needs pinned host memory)."""

    def __init__(self, device):
        import torch

        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device)

    def submit(self, fn) -> _EventHandle:
        import torch

        compute = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(compute)  # write-backs see finished optimizer steps
        with torch.cuda.stream(self.stream):
            fn()
            event = torch.cuda.Event()
            event.record(self.stream)
        return _EventHandle(event)

    def drain(self) -> None:
        self.stream.synchronize()

    def close(self) -> None:
        self.drain()


def make_mover(device, prefetch: bool):
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return CudaMover(device)
    return ThreadMover() if prefetch else SyncMover()
