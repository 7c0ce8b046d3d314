"""The device side of spilling: fixed slots, a ledger of resident bytes, and the copy engine.

The arena is allocated once (``n_slots`` x ``slot_bytes`` on the compute device) and
never grows, so device memory cannot fragment under constant swapping (Hydra needed
``max_split_size_mb`` for that). The ledger counts what is resident — the weights and
optimizer state of the shards in slots, plus the gradients alive during a shard's
backward — and refuses any move that would take it past the budget. Its peak is the
proof the budget held; ``SpillTrainer.audit`` cross-checks it against the tensors.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from sqlml.errors import BudgetExceeded


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

    def __init__(self):
        self.seconds = 0.0  # time spent copying (the benchmark's movement share)

    def submit(self, fn) -> _Done:
        start = time.perf_counter()
        fn()
        self.seconds += time.perf_counter() - start
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
        self.seconds = 0.0  # time the copy thread spent copying (overlapped or not)

    def submit(self, fn) -> _FutureHandle:
        def timed():
            start = time.perf_counter()
            fn()
            self.seconds += time.perf_counter() - start

        self.last = self.pool.submit(timed)
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
        self.seconds = 0.0  # not measured on CUDA (copies are asynchronous): see bench/gpu_check.py

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


class SpillDevice:
    """One compute device's spill memory, shared by every trainer placed on it.

    The arena's slots hold shards of any trainer (a grid worker trains several models
    through one device); ``owners[k]`` is ``(trainer, shard)`` or None. When a slot is
    needed, a free one is taken first, then the least recently used slot of another
    trainer (that model is not running now), and only then the trainer's own shard
    used furthest in the future.
    """

    def __init__(self, device, budget: int, slot_bytes: int, grad_reserve: int, *, prefetch: bool = False, n_slots: int | None = None):
        import torch

        self.device = torch.device(device)
        self.budget = int(budget)
        self.grad_reserve = int(grad_reserve)
        fit = (self.budget - self.grad_reserve) // slot_bytes if slot_bytes else 0
        n_slots = fit if n_slots is None else min(n_slots, fit)
        if n_slots < 1:
            raise BudgetExceeded(f"device_memory {self.budget} holds no slot of {slot_bytes} bytes")
        self.ledger = Ledger(self.budget)
        self.arena = Arena(n_slots, slot_bytes, self.device)
        self.prefetch = prefetch and n_slots >= 2
        self.mover = make_mover(self.device, self.prefetch)
        self.owners: list[tuple[object, int] | None] = [None] * n_slots
        self.trainers: list = []  # every trainer placed here (the audit sums them)
        self.last_used = [0] * n_slots
        self.clock = 0

    @property
    def n_slots(self) -> int:
        return self.arena.n_slots

    @property
    def slot_bytes(self) -> int:
        return self.arena.slot_bytes

    def touch(self, slot: int) -> None:
        self.clock += 1
        self.last_used[slot] = self.clock

    def free_slot(self, trainer, choose_own) -> int | None:
        """A slot for ``trainer``: free, else another trainer's LRU slot, else ``choose_own()``'s victim."""
        for k, owner in enumerate(self.owners):
            if owner is None:
                return k
        others = [k for k, (t, _) in enumerate(self.owners) if t is not trainer]
        if others:
            k = min(others, key=self.last_used.__getitem__)
            other, shard = self.owners[k]
            other.evict(shard)
            return k
        return choose_own()

    def close(self) -> None:
        self.mover.close()


def make_mover(device, prefetch: bool):
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return CudaMover(device)
    return ThreadMover() if prefetch else SyncMover()
