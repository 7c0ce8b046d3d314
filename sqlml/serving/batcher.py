"""Adaptive batching for the online endpoint (Clipper's AIMD, Triton's queue delay).

Requests wait in a bounded queue; one worker thread runs the model on batches of them.
The batch size adapts: after each full batch whose model time (CPU time of the model
thread) stayed under the target it grows by ``step`` rows (additive increase), after one
that overshot it shrinks to ``backoff`` times itself (multiplicative decrease). A batch leaves as soon as
it is full or its first request has waited ``max_wait_ms``. A full queue refuses new
work (``Overloaded``: the endpoint answers 503) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class Overloaded(Exception):
    """The queue is full: try again later."""


@dataclass
class BatchPolicy:
    adaptive: bool = True
    max_batch: int = 512  # rows
    initial_batch: int = 8
    step: int = 8  # additive increase, rows
    backoff: float = 0.75  # multiplicative decrease
    target_ms: float = 25.0  # model time per batch the size adapts to
    max_wait_ms: float = 0.0  # how long the first request of a batch may wait for company (0: never;
    # batches still form while the model is busy, as in Triton, whose default this is)
    max_queue: int = 4096  # rows waiting at most; beyond that: Overloaded

    @classmethod
    def unbatched(cls, **kwargs) -> BatchPolicy:
        """One request per model call (the baseline adaptive batching is measured against)."""
        return cls(adaptive=False, max_batch=1, initial_batch=1, max_wait_ms=0.0, **kwargs)


@dataclass
class _Pending:
    rows: list[Any]
    future: asyncio.Future
    enqueued: float


@dataclass
class BatcherStats:
    batches: int = 0
    rows: int = 0
    model_seconds: float = 0.0
    sizes: deque = field(default_factory=lambda: deque(maxlen=1000))


class AdaptiveBatcher:
    """Runs ``predict(rows) -> results`` (same length) on batches of submitted rows."""

    def __init__(self, predict: Callable[[list[Any]], list[Any]], policy: BatchPolicy | None = None):
        self.predict = predict
        self.policy = policy or BatchPolicy()
        self.batch_size = max(1, min(self.policy.initial_batch, self.policy.max_batch))
        self.stats = BatcherStats()
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlml-model")
        self._closing = False

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sqlml-batcher")

    async def submit(self, rows: list[Any]) -> list[Any]:
        """Results for ``rows``, in order, once a batch holding them has run."""
        if self._closing:
            raise Overloaded("the server is shutting down")
        if self._queued_rows + len(rows) > self.policy.max_queue:
            raise Overloaded(f"{self._queued_rows} rows are waiting (limit {self.policy.max_queue})")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(rows, future, time.perf_counter()))
        self._queued_rows += len(rows)
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Finish everything queued, then stop (new work is refused meanwhile)."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather()
            batch = self._take()
            rows = [row for pending in batch for row in pending.rows]
            try:
                results, elapsed = await loop.run_in_executor(self._executor, self._timed_predict, rows)
            except Exception as error:  # noqa: BLE001 - each waiting request gets the error
                if len(batch) == 1:
                    if not batch[0].future.done():
                        batch[0].future.set_exception(error)
                    continue
                # one request's rows broke the batch: run each alone, so only it fails
                for pending in batch:
                    try:
                        alone, _ = await loop.run_in_executor(self._executor, self._timed_predict, pending.rows)
                    except Exception as own:  # noqa: BLE001
                        if not pending.future.done():
                            pending.future.set_exception(own)
                    else:
                        if not pending.future.done():
                            pending.future.set_result(alone)
                continue
            self._adapt(elapsed, len(rows))
            at = 0
            for pending in batch:
                n = len(pending.rows)
                if not pending.future.done():
                    pending.future.set_result(results[at : at + n])
                at += n

    def _timed_predict(self, rows):
        """Results and the model thread's CPU seconds: wall time would also count the
        moments the event loop holds the GIL, which a smaller batch does not shorten."""
        started = time.thread_time()
        results = self.predict(rows)
        return results, time.thread_time() - started

    async def _gather(self) -> None:
        """Wait (up to max_wait_ms after the oldest request arrived) for a full batch."""
        if self.policy.max_wait_ms <= 0 or self._closing:
            return
        deadline = self._queue[0].enqueued + self.policy.max_wait_ms / 1000
        while self._queued_rows < self.batch_size:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[_Pending]:
        batch = [self._queue.popleft()]
        taken = len(batch[0].rows)
        while self._queue and taken + len(self._queue[0].rows) <= self.batch_size:
            pending = self._queue.popleft()
            batch.append(pending)
            taken += len(pending.rows)
        self._queued_rows -= taken
        return batch

    def _adapt(self, seconds: float, rows: int) -> None:
        self.stats.batches += 1
        self.stats.rows += rows
        self.stats.model_seconds += seconds
        self.stats.sizes.append(rows)
        policy = self.policy
        if not policy.adaptive:
            return
        if seconds * 1000 <= policy.target_ms:
            if rows >= self.batch_size:  # only a full batch says the size can grow
                self.batch_size = min(policy.max_batch, self.batch_size + policy.step)
        else:
            self.batch_size = max(1, int(self.batch_size * policy.backoff))
