"""The shard alternator: which model a free worker trains next (Hydra's scheduler).

Every model is a chain of units that run one at a time (a model is never on two workers
at once); a worker asks for work whenever it is free. The policy:

1. **Prefer what is resident.** If the model this worker ran last can go on and its
   remaining time is within ``tolerance`` of the longest, it goes on: no swap, its
   shards are still in the worker's device slots.
2. **Longest remaining time first**: the model that would finish last goes first, so
   they all end together (this is what minimises the makespan of independent chains on
   identical workers) — preferring, within the same ``tolerance``, a model that lives
   on this worker or has no worker yet over one homed elsewhere.
3. Otherwise the longest model moves here from the worker that holds it (its state
   crosses workers: the only migration).

``next_after`` predicts the pick after the one being handed out, which is what the
worker prefetches while it computes. Remaining time is remaining batches times the
measured seconds per batch (an average of the worker reports; before any, the mean of
the other models, else 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Task:
    id: int
    name: str
    remaining: int  # batches, as of the last report
    seconds_per_batch: float | None = None
    home: int | None = None  # worker that holds its state
    worker: int | None = None  # worker its queued units run on (while any are queued)
    queued: int = 0  # batches handed out and not yet reported
    claimed: int = 0  # batches the last ``pick`` handed out
    done: bool = False

    @property
    def running(self) -> bool:
        return self.queued > 0

    @property
    def unassigned(self) -> int:
        return max(0, self.remaining - self.queued)

    def record(self, batches: int, seconds: float) -> None:
        """Fold a finished unit into the per-batch time (exponential average)."""
        if batches <= 0:
            return
        per = seconds / batches
        self.seconds_per_batch = per if self.seconds_per_batch is None else 0.7 * self.seconds_per_batch + 0.3 * per


class ShardAlternator:
    """Hands out units of ``unit`` batches. A worker may hold more than one unit (the owner
    queues the next one before the current one ends, so no worker waits for the owner);
    a model's queued units all run on one worker, in order."""

    def __init__(self, tasks: list[Task], *, tolerance: float = 0.2, unit: int = 1):
        self.tasks = tasks
        self.tolerance = tolerance
        self.unit = unit
        self.last: dict[int, int] = {}  # worker -> id of the task it was given last

    def _per_batch(self, task: Task) -> float:
        if task.seconds_per_batch is not None:
            return task.seconds_per_batch
        known = [t.seconds_per_batch for t in self.tasks if t.seconds_per_batch is not None]
        return sum(known) / len(known) if known else 1.0

    def remaining_time(self, task: Task) -> float:
        return task.unassigned * self._per_batch(task)

    def runnable(self, worker: int | None = None) -> list[Task]:
        return [
            t for t in self.tasks
            if not t.done and t.unassigned > 0 and (not t.running or t.worker == worker)
        ]

    def pick(self, worker: int, *, claim: bool = True) -> Task | None:
        candidates = self.runnable(worker)
        if not candidates:
            return None
        key = lambda t: (self.remaining_time(t), -t.id)  # noqa: E731 - ties go to the earlier model
        longest = max(candidates, key=key)
        previous = next((t for t in candidates if t.id == self.last.get(worker)), None)
        near = [t for t in candidates if t.home in (None, worker) or t.worker == worker]
        best_near = max(near, key=key) if near else None
        close = lambda t: t is not None and self.remaining_time(t) >= (1 - self.tolerance) * self.remaining_time(longest)  # noqa: E731
        if close(previous):
            chosen = previous  # no swap
        elif close(best_near):
            chosen = best_near  # no migration
        else:
            chosen = longest
        if claim:
            chosen.claimed = min(self.unit, chosen.unassigned)
            chosen.queued += chosen.claimed
            chosen.worker = worker
            self.last[worker] = chosen.id
        return chosen

    def next_after(self, worker: int, task: Task, batches: int) -> Task | None:
        """What ``pick(worker)`` would choose next (for prefetch), without claiming it."""
        return self.pick(worker, claim=False)

    def finished_unit(self, task: Task, worker: int, batches: int, seconds: float, remaining: int, *, requested: int | None = None) -> None:
        """A unit of ``requested`` batches (``unit`` when not given) ran ``batches``; ``remaining`` are left."""
        task.record(batches, seconds)
        task.queued = max(0, task.queued - (self.unit if requested is None else requested))
        if remaining <= 0:
            task.queued = 0
        task.remaining = remaining
        task.home = worker
        if not task.running:
            task.worker = None
        if remaining <= 0:
            task.done = True

    @property
    def all_done(self) -> bool:
        return all(t.done for t in self.tasks)


def simulate(durations: list[list[float]], workers: int, *, swap_cost: float = 0.0, tolerance: float = 0.2) -> dict:
    """Makespan of models with the given per-unit durations on ``workers`` identical workers.

    ``swap_cost`` is paid when a worker switches to a model other than the one it ran
    last (its shards must come in); migrations pay it too. Returns makespan, the
    sequential time (one worker, no swaps) and the number of swaps.
    """
    import heapq

    tasks = [Task(i, f"m{i}", len(d), seconds_per_batch=sum(d) / max(len(d), 1)) for i, d in enumerate(durations)]
    alternator = ShardAlternator(tasks, tolerance=tolerance, unit=1)
    position = [0] * len(tasks)
    clock, swaps, events = 0.0, 0, []
    free = list(range(workers))
    last_on = {}
    while not alternator.all_done:
        while free:
            worker = free.pop(0)
            task = alternator.pick(worker)
            if task is None:
                free.insert(0, worker)
                break
            cost = durations[task.id][position[task.id]]
            if last_on.get(worker) != task.id:
                cost += swap_cost
                swaps += 1
            last_on[worker] = task.id
            heapq.heappush(events, (clock + cost, worker, task.id))
        if not events:
            break
        clock, worker, task_id = heapq.heappop(events)
        task = tasks[task_id]
        position[task_id] += 1
        alternator.finished_unit(task, worker, 1, durations[task_id][position[task_id] - 1], len(durations[task_id]) - position[task_id])
        free.append(worker)
    return {"makespan": clock, "sequential": sum(sum(d) for d in durations), "swaps": swaps}
