"""AIMD batch sizing and the batcher's bookkeeping, without HTTP."""

from __future__ import annotations

import asyncio
import time

import pytest

from sqlml.serving.batcher import AdaptiveBatcher, BatchPolicy, Overloaded


def test_additive_increase_while_under_target_multiplicative_decrease_above():
    batcher = AdaptiveBatcher(lambda rows: rows, BatchPolicy(initial_batch=8, step=8, backoff=0.5, target_ms=10, max_batch=40))
    sizes = []
    for _ in range(6):
        batcher._adapt(0.001, batcher.batch_size)  # fast, full batches
        sizes.append(batcher.batch_size)
    assert sizes == [16, 24, 32, 40, 40, 40]
    batcher._adapt(0.050, 40)  # over target
    assert batcher.batch_size == 20
    batcher._adapt(0.001, 3)  # fast but not full: no evidence the size can grow
    assert batcher.batch_size == 20


def test_unbatched_policy_never_adapts():
    batcher = AdaptiveBatcher(lambda rows: rows, BatchPolicy.unbatched())
    batcher._adapt(0.0001, 1)
    assert batcher.batch_size == 1


def test_batches_form_under_load_and_results_stay_in_order():
    calls = []

    def predict(rows):
        calls.append(len(rows))
        time.sleep(0.002)
        return [r * 10 for r in rows]

    async def go():
        batcher = AdaptiveBatcher(predict, BatchPolicy(initial_batch=4, step=4, target_ms=1000, max_wait_ms=5))
        batcher.start()
        results = await asyncio.gather(*[batcher.submit([i, i + 1000]) for i in range(100)])
        await batcher.close()
        return results, batcher

    results, batcher = asyncio.run(go())
    assert results == [[i * 10, (i + 1000) * 10] for i in range(100)]
    assert sum(calls) == 200 and len(calls) < 50
    assert batcher.batch_size > 4  # grew: batches stayed far under the target
    assert batcher.stats.rows == 200


def test_full_queue_refuses_and_errors_reach_every_waiting_request():
    def predict(rows):
        time.sleep(0.01)
        if 99 in rows:
            raise ValueError("bad row")
        return rows

    async def go():
        batcher = AdaptiveBatcher(predict, BatchPolicy(max_queue=3, initial_batch=8, max_wait_ms=50))
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([1, 99]))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await batcher.submit([2, 3])
        with pytest.raises(ValueError, match="bad row"):
            await first
        assert await batcher.submit([5]) == [5]
        await batcher.close()
        with pytest.raises(Overloaded, match="shutting down"):
            await batcher.submit([6])

    asyncio.run(go())
