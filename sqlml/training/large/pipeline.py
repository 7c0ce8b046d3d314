"""GPipe pipelining over local worker processes with ``torch.distributed.pipelining``.

The model is cut into K stages (one per worker process: gloo on CPU, one process per
GPU with nccl). Each batch is split into M micro-batches that flow through the stages;
``schedule`` picks GPipe (all forwards, then all backwards) or 1F1B (one forward, one
backward in the steady state, fewer activations alive). With
``checkpoint_activations`` each stage keeps only its layer inputs and recomputes in
backward. Gradients are summed over micro-batches and applied once per batch, so a
step equals one step of the unsplit model (up to fp32 summation order; tested to 1e-6).

The owning process keeps the database: it feeds inputs to the first stage and targets
to the last, and gathers losses, timings and state. The idle share of each stage is
measured (time outside ``forward_one_chunk``/``backward_one_chunk`` over the step) and
reported next to GPipe's bubble fraction (K-1)/(M+K-1).
"""

from __future__ import annotations

import os
import queue
import tempfile
import time

from sqlml.errors import TrainingError
from sqlml.training.large.layers import sequential_layers
from sqlml.training.large.partition import ShardPlan

SCHEDULES = ("gpipe", "1f1b")


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """GPipe's idle share of a step with equal stages: (K-1)/(M+K-1)."""
    return (stages - 1) / (micro_batches + stages - 1)


class PipelineRunner:
    def __init__(
        self,
        model,
        plan: ShardPlan,
        optimizer,
        loss_fn,
        *,
        micro_batches: int = 4,
        schedule: str = "gpipe",
        checkpoint_activations: bool = False,
        device="cpu",
        threads: int = 1,
        timeout: float = 300.0,
        scale_grads: bool = False,
    ):
        import torch

        from sqlml.training.large.pipeline_worker import serve

        if schedule not in SCHEDULES:
            raise TrainingError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        if plan.n_shards < 2:
            raise TrainingError("a pipeline needs at least two stages (stages := 2 or more)")
        if not isinstance(micro_batches, int) or isinstance(micro_batches, bool) or micro_batches < 1:
            raise TrainingError(f"micro_batches must be a whole number of at least 1, got {micro_batches!r}")
        if schedule == "1f1b" and micro_batches < plan.n_shards:
            raise TrainingError(
                f"the 1F1B schedule needs at least as many micro-batches as stages "
                f"({micro_batches} < {plan.n_shards}); raise micro_batches or use schedule := 'gpipe'"
            )
        device = torch.device(device)
        if device.type == "cuda" and torch.cuda.device_count() < plan.n_shards:
            raise TrainingError(
                f"{plan.n_shards} pipeline stages need {plan.n_shards} GPUs, found {torch.cuda.device_count()}"
            )
        self.model = model
        self.plan = plan
        self.micro_batches = micro_batches
        self.schedule = schedule
        self.timeout = timeout
        self.layers = sequential_layers(model)
        self.steps = 0
        self.history: list[dict] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="sqlml_pipe_")
        init_file = os.path.join(self._tmp.name, "rendezvous")
        from sqlml.training.large import processes

        ctx = processes.context()
        self.outbox = ctx.Queue()
        self.inboxes = []
        self.procs = []
        for rank, (a, b) in enumerate(plan.ranges()):
            spec = {
                "layers": self.layers[a:b],
                "optimizer": optimizer,
                "loss_fn": loss_fn,
                "schedule": schedule,
                "micro_batches": micro_batches,
                "checkpoint_activations": checkpoint_activations,
                "device": str(device),
                "threads": threads,
                "scale_grads": scale_grads,
            }
            inbox = ctx.Queue()
            proc = processes.start(ctx, serve, (rank, plan.n_shards, init_file, spec, inbox, self.outbox))
            self.inboxes.append(inbox)
            self.procs.append(proc)
        self._gather("ready")

    @property
    def n_stages(self) -> int:
        return self.plan.n_shards

    # -- talking to the workers --------------------------------------------------------------
    def _gather(self, kind: str, ranks=None) -> dict[int, object]:
        ranks = set(range(self.n_stages) if ranks is None else ranks)
        replies = {}
        deadline = time.monotonic() + self.timeout
        while ranks - set(replies):
            try:
                got, rank, payload = self.outbox.get(timeout=1.0)
            except queue.Empty:
                dead = [r for r, p in enumerate(self.procs) if not p.is_alive()]
                if dead:
                    self._abort()
                    raise TrainingError(f"pipeline stage process(es) {dead} exited unexpectedly")
                if time.monotonic() > deadline:
                    self._abort()
                    raise TrainingError(f"pipeline stages did not answer {kind!r} within {self.timeout:.0f}s")
                continue
            if got == "error":
                self._abort()
                raise TrainingError(f"pipeline stage {rank} failed: {payload}")
            if got != kind:
                self._abort()
                raise TrainingError(f"pipeline stage {rank} answered {got!r} to {kind!r}")
            replies[rank] = payload
        return replies

    def _send_all(self, command: str, payloads) -> None:
        for rank, inbox in enumerate(self.inboxes):
            inbox.put((command, payloads[rank]))

    # -- training ----------------------------------------------------------------------------
    def step(self, x, target, *, weight_total: float | None = None, update: bool = True) -> dict:
        """One step over batch ``x`` (split into M micro-batches).

        Returns the last stage's report: ``loss`` (the sum of the micro-batch losses: the
        batch loss when the loss function divides by the batch's weight) and, with a
        ``PipelineLoss``, ``weighted`` (the sum of weight x loss)."""
        rows = int(x.shape[0])
        last = self.n_stages - 1
        total = float(rows if weight_total is None else weight_total)
        payloads = [(rows, x if r == 0 else None, target if r == last else None, total, update) for r in range(self.n_stages)]
        self._send_all("step", payloads)
        replies = self._gather("step")
        wall = max(r["wall"] for r in replies.values())
        stages = range(self.n_stages)
        self.history.append({"wall": wall, "busy": [replies[r]["busy"] for r in stages], "cpu": [replies[r].get("cpu") for r in stages]})
        self.steps += 1
        return replies[last]

    def seed(self, seed: int) -> None:
        """Seed every stage's RNG (stage r gets ``seed + r``): dropout in the stages."""
        self._send_all("seed", [int(seed)] * self.n_stages)
        self._gather("seed")

    def gradients(self) -> list:
        """Every parameter's gradient after the last step, in the model's parameter order."""
        self._send_all("grads", [None] * self.n_stages)
        replies = self._gather("grads")
        return [g for r in range(self.n_stages) for g in replies[r]]

    def stage_states(self):
        for rank in range(self.n_stages):
            self.inboxes[rank].put(("state", None))
            yield self._gather("state", [rank])[rank]

    def sync_model(self) -> None:
        """Copy the trained weights back into the owner's model."""
        for rank, state in enumerate(self.stage_states()):
            a, b = self.plan.ranges()[rank]
            for layer, layer_state in zip(self.layers[a:b], state["layers"]):
                layer.load_state_dict(layer_state)

    def push_model(self) -> None:
        """Send the owner's model weights to the stages (their optimizer state stays)."""
        self.load_stage_states(
            {"layers": [layer.state_dict() for layer in self.layers[a:b]], "optimizer": None}
            for a, b in self.plan.ranges()
        )

    def load_stage_states(self, states) -> None:
        """Load ``{"layers": [...], "optimizer": ...}`` per stage, one stage at a time."""
        for rank, state in enumerate(states):
            self.inboxes[rank].put(("load", state))
            self._gather("load", [rank])

    def stats(self) -> dict:
        steady = self.history[1:] or self.history
        wall = sum(h["wall"] for h in steady)
        busy = [sum(h["busy"][r] for h in steady) for r in range(self.n_stages)]
        cpu = [sum(h["cpu"][r] for h in steady) for r in range(self.n_stages)]
        return {
            "stages": self.n_stages,
            "micro_batches": self.micro_batches,
            "schedule": self.schedule,
            "steps": self.steps,
            "step_seconds": wall / max(len(steady), 1),
            "idle_fraction": [round(1 - b / wall, 4) if wall else None for b in busy],
            "bubble_measured": round(1 - sum(busy) / (self.n_stages * wall), 4) if wall else None,
            "bubble_theory": round(bubble_fraction(self.n_stages, self.micro_batches), 4),
            # CPU seconds each stage process used per step: below its busy time, the machine
            # took the CPU away; their sum against one process's step is the cost of splitting
            "stage_cpu_seconds": [round(c / max(len(steady), 1), 4) for c in cpu],
        }

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, directory, *, cursor: dict | None = None, extra: dict | None = None):
        from sqlml.training.large import checkpoint

        def shards():
            for state in self.stage_states():
                yield {"weights": state["layers"], "optimizer": state["optimizer"]}

        extra = dict(extra or {}, plan=self.plan.to_dict(), schedule=self.schedule, micro_batches=self.micro_batches)
        return checkpoint.save_shards(directory, shards(), step=self.steps, cursor=cursor, extra=extra,
                                      rng=checkpoint.rng_state())

    def load(self, directory) -> dict:
        from sqlml.training.large import checkpoint

        meta = checkpoint.read_meta(directory)
        if meta["shards"] != self.n_stages:
            raise TrainingError(
                f"the checkpoint in {directory} has {meta['shards']} stages, this pipeline has {self.n_stages}"
            )
        self.load_stage_states(
            {"layers": state["weights"], "optimizer": state["optimizer"]}
            for state in (checkpoint.load_shard(directory, rank) for rank in range(self.n_stages))
        )
        self.steps = meta["step"]
        rng = checkpoint.load_rng(directory)
        if rng is not None:
            checkpoint.set_rng_state(rng)
        return meta

    # -- shutting down -----------------------------------------------------------------------
    def close(self) -> None:
        if not self.procs:
            return
        try:
            self._send_all("stop", [None] * self.n_stages)
            self._gather("stop")
        except TrainingError:
            pass
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
        self.procs = []
        self._tmp.cleanup()

    def _abort(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join(timeout=5)
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
