"""The shard alternator: longest remaining time first, resident model preferred, migration last."""

import random

from sqlml.training.large.scheduler import ShardAlternator, Task, simulate


def tasks(*remaining, per_batch=1.0):
    return [Task(i, f"m{i}", r, seconds_per_batch=per_batch) for i, r in enumerate(remaining)]


def test_longest_remaining_first():
    alt = ShardAlternator(tasks(10, 50, 30))
    assert alt.pick(0).id == 1
    assert alt.pick(1).id == 2  # m1 is running elsewhere
    assert alt.pick(2).id == 0
    assert alt.pick(3) is None  # every model is running


def test_resident_model_is_kept_within_tolerance():
    alt = ShardAlternator(tasks(100, 95), tolerance=0.1)
    first = alt.pick(0)
    alt.finished_unit(first, 0, 8, 8.0, 92)  # m0 now has 92 left, m1 95: within 10 %, so no swap
    assert alt.pick(0).id == 0
    alt.finished_unit(alt.tasks[0], 0, 20, 20.0, 72)  # now far behind m1's 95: switch
    assert alt.pick(0).id == 1


def test_no_migration_while_local_work_is_close():
    ts = tasks(50, 48, 10)
    ts[0].home, ts[1].home = 1, 0  # m0 lives on worker 1, m1 on worker 0
    alt = ShardAlternator(ts)
    assert alt.pick(0).id == 1  # m0 is longer, but m1 is here and close enough
    ts2 = tasks(50, 10)
    ts2[0].home, ts2[1].home = 1, 0
    alt2 = ShardAlternator(ts2)
    assert alt2.pick(0).id == 0  # m0 is far longer: it moves (worker 1 is busy elsewhere)


def test_measured_speed_changes_the_order():
    ts = tasks(100, 60)
    ts[1].seconds_per_batch = 3.0  # fewer batches left, but each three times slower
    assert ShardAlternator(ts).pick(0).id == 1


def test_prediction_for_prefetch_does_not_change_state():
    alt = ShardAlternator(tasks(30, 29, 5), unit=8)
    current = alt.pick(0)
    assert current.id == 0 and current.queued == 8 and current.unassigned == 22
    following = alt.next_after(0, current, 8)
    assert following.id == 1  # m1 (29 left) is now well ahead of m0's unassigned 22
    assert current.queued == 8 and alt.last[0] == current.id and current.remaining == 30 and not following.running


def test_a_worker_can_queue_a_second_unit():
    alt = ShardAlternator(tasks(40, 10), unit=8)
    first = alt.pick(0)
    second = alt.pick(0)  # queued behind the first on the same worker: the same model goes on
    assert first is second and first.queued == 16 and first.worker == 0
    assert alt.pick(1).id == 1  # another worker cannot take a model queued elsewhere
    alt.finished_unit(first, 0, 8, 1.0, 32, requested=8)
    assert first.queued == 8 and first.running
    alt.finished_unit(first, 0, 8, 1.0, 24, requested=8)
    assert not first.running and first.worker is None and first.home == 0


def test_simulated_makespan_is_near_ideal():
    assert simulate([[1.0] * 50] * 4, 2)["makespan"] == 100.0
    random.seed(0)
    mixed = [[float(random.choice([1, 2, 3, 4]))] * 50 for _ in range(12)]
    result = simulate(mixed, 8)
    assert result["makespan"] <= 1.01 * result["sequential"] / 8 + 4  # within one unit of the ideal
    few = simulate([[1.0] * 50] * 3, 8)
    assert few["makespan"] == 50.0  # fewer models than workers: each model is a chain
