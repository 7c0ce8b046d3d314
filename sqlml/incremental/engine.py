"""Incremental inference on a stream of frames: detect the change, update only what it reaches.

For every new frame the engine first compares every 4th row and column with the
image its materialized state was computed from: when most of the frame changed
(a moving camera) it runs full inference at once, having spent 1/16 of a change
map. Otherwise the pixels differing by more than ``threshold`` are clustered into a
few boxes, carried through the local layers by the exact patch rule (see
:mod:`sqlml.incremental.boxes`), and priced by the cost model with each layer's cost
as measured on this machine; an update predicted to cost more than 0.85x of a full
pass runs full inference instead, before any tensor work. Otherwise each layer
recomputes its boxes from its materialized (already updated) input and writes them
back, and the dense tail runs on the full updated tensors.

Only changed input cells enter the state image, so with a threshold the state drifts
from the true frame by less than the threshold per pixel, never more.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlml.incremental import boxes
from sqlml.incremental.cost import CostModel, Estimate
from sqlml.incremental.graph import Program

# -- the per-frame driver -----------------------------------------------------------------


@dataclass
class State:
    """Materialized activations of the local layers, for the image in ``tensors[input]``."""

    tensors: dict[str, Any]
    output: Any
    frame: Any = None  # the frame the state was last brought up to
    key_frame: Any = None  # the frame of the last full pass
    since_key: int = 0  # approximate updates since the last full pass
    exact: bool = True
    scales: dict[str, float] | None = None  # activation spread per layer (feature_threshold)


@dataclass
class FrameResult:
    output: Any
    mode: str  # 'full' | 'incremental' | 'reuse'
    recomputed: float  # fraction of the model's compute spent on this frame
    reason: str = ""  # why this mode
    calls: int = 0  # operator calls of the update (one per box per layer)
    seconds: float = 0.0  # the whole step
    compute_seconds: float = 0.0  # the full pass or the update alone (what the cost model compares)
    estimate: Estimate | None = None
    looked: bool = False  # the frame was compared with the state (not a full pass while backing off)


#: the longest run of frames that go to full inference without looking for change ...
BACKOFF = 8
#: ... unless looking costs more than this share of the full passes in between (small models)
LOOK_SHARE = 0.02
MAX_BACKOFF = 32
#: over this share of changed pixels a frame goes to full inference without planning an update
MOSTLY_CHANGED = 0.5
#: the first look at a frame compares every SAMPLE_STRIDE-th row and column
SAMPLE_STRIDE = 4


class VideoEngine:
    """Runs a compiled model over consecutive frames, reusing what did not change.

    ``mode='full'`` runs every frame whole (the reference); ``'incremental'`` lets the
    cost model pick per frame. The approximation knobs, all 0 for exact results:
    ``threshold`` (input-tensor units, one number or per channel) ignores smaller
    pixel changes; ``tau`` caps each box, on each layer, at that fraction of the map's side;
    ``feature_threshold`` ignores feature changes under that fraction of a layer's
    spread. ``refresh`` forces a full pass after that many approximate updates,
    ``drift`` when that fraction of cells differs by more than half the threshold.
    After a frame falls back to full inference the next look for change waits 1, then
    2, 4, up to ``BACKOFF`` frames (more when a look costs much of a full pass; full
    inference meanwhile: exact, and on a moving camera the detection is not paid every
    frame); an update that pays resets it.
    """

    def __init__(self, program: Program, *, mode: str = "incremental", threshold=0.0, tau: float = 0.0,
                 feature_threshold: float = 0.0, refresh: int = 100, drift: float = 0.25,
                 cost: CostModel | None = None):  # fmt: skip
        self.program = program
        self.mode = mode
        self.threshold = threshold
        self.tau = tau
        self.feature_threshold = feature_threshold
        self.refresh = refresh
        self.drift = drift
        self.cost = cost or CostModel()
        self.state: State | None = None
        self._dense_macs = sum(n.full_macs for n in program.dense)
        self._backoff = 0  # after fallbacks, look for change only every 2, 4, ... BACKOFF frames
        self._updated = 0.0  # share of pixels changed at the last update
        self._priced_out_at = math.inf  # sampled share of change at which the last exact plan was priced out
        self._look_seconds = 0.0  # what a look that ends in full inference costs beyond the full pass (EMA)
        self._skip = 0
        self._keep_state = False

    @property
    def _zero_threshold(self) -> bool:
        thresholds = self.threshold if not isinstance(self.threshold, (int, float)) else [self.threshold]
        return all(float(t) == 0.0 for t in thresholds)

    @property
    def exact(self) -> bool:
        thresholds = self.threshold if not isinstance(self.threshold, (int, float)) else [self.threshold]
        return all(float(t) == 0.0 for t in thresholds) and not (0.0 < self.tau < 1.0) and not self.feature_threshold

    def step(self, x, frame: Any = None, *, keep_state: bool = False) -> FrameResult:
        """Inference for one frame ``x`` (1, C, H, W); ``keep_state`` materializes its state in any case
        (the last frame of a query, whose state is stored for the next one)."""
        import torch

        with torch.inference_mode():
            started = time.perf_counter()
            self._keep_state = keep_state
            result = self._decide_and_run(x, frame)
            result.seconds = time.perf_counter() - started
        self.cost.observe(result.mode, result.compute_seconds, result.estimate)
        if result.looked and result.mode == "full":
            extra = max(0.0, result.seconds - result.compute_seconds)
            self._look_seconds = extra if not self._look_seconds else 0.7 * self._look_seconds + 0.3 * extra
        return result

    def _decide_and_run(self, x, frame) -> FrameResult:
        program = self.program
        if self.mode == "full" or not program.supported:
            reason = "mode full" if self.mode == "full" else program.reason or "no local layers"
            return self._full(x, frame, reason, keep=False)
        if self._skip > 0:
            self._skip -= 1  # only the frame before the next look needs its state
            reason = f"recent frames changed too much to update (next look in {self._skip + 1})"
            return self._full(x, frame, reason, keep=self._skip == 0 or self._keep_state)
        state = self.state
        if state is None:
            return self._full(x, frame, "first frame: materializing its state")
        result = self._look_and_run(x, frame, state)
        result.looked = True
        return result

    def _look_and_run(self, x, frame, state: State) -> FrameResult:
        program = self.program
        base = state.tensors[program.input_name]
        height, width = base.shape[-2:]
        first = boxes.sample(x, base, self.threshold, SAMPLE_STRIDE)  # 1/16 of the pixels
        if first.fraction > MOSTLY_CHANGED:
            return self._fall_back(x, frame, "most of the frame changed")
        if first.fraction >= self._priced_out_at:  # as much change as at a look the exact plan priced out
            return self._fall_back(x, frame, f"cost: about {first.fraction:.0%} of pixels changed, sampled; "
                                             f"an update was priced out at {self._priced_out_at:.0%}")  # fmt: skip
        costs = self.cost.layer_costs(program)
        price = boxes.prices(program, costs, self.cost.call_seconds, truncating=bool(self.feature_threshold))
        total = sum(costs.values())
        dense = sum(costs[n.name] for n in program.dense)
        if first.fraction > 0.0 and (self._backoff or first.fraction > 2 * self._updated):
            # price the update the sample sees before any exact work (skipped while updates
            # pay and the change is not growing: the exact plan is as cheap then)
            rough = boxes.plan(program, boxes.sampled_boxes(first, SAMPLE_STRIDE, height, width), self.tau, price,
                               self.cost.budget(total) - dense)  # fmt: skip
            estimate = self.cost.estimate(total, 1.0, rough.arithmetic + dense, rough.calls)
            if not rough.complete or self.cost.choose(estimate) == "full":
                return self._priced_out(x, frame, estimate, rough, f"about {first.fraction:.0%} of pixels changed, sampled")
        change = boxes.detect(x, base, self.threshold, drift=not self.exact)
        if change.fraction > MOSTLY_CHANGED:
            return self._fall_back(x, frame, "most of the frame changed")
        if change.fraction == 0.0:
            self._backoff = 0
            state.frame = frame
            return FrameResult(_clone(state.output, state.tensors.values()), "reuse", 0.0, "no cell changed beyond the threshold")
        if not self.exact and self.refresh and state.since_key >= self.refresh:
            return self._full(x, frame, f"refresh: {state.since_key} approximate updates since the key frame")
        if not self.exact and change.drift > self.drift:
            return self._full(x, frame, f"refresh: drift {change.drift:.0%} of cells")
        found = boxes.change_boxes(change.changed)
        planned = boxes.plan(program, found, self.tau, price, self.cost.budget(total) - dense)
        estimate = self.cost.estimate(total, (planned.macs + self._dense_macs) / max(1, program.total_macs),
                                      planned.arithmetic + dense, planned.calls)  # fmt: skip
        if not planned.complete or self.cost.choose(estimate) == "full":
            self._priced_out_at = max(first.fraction, 1e-9)
            return self._priced_out(x, frame, estimate, planned, f"{change.fraction:.1%} of pixels changed")
        self._backoff = 0
        self._updated = change.fraction
        self._priced_out_at = math.inf
        if self.feature_threshold and state.scales is None:
            state.scales = _spreads(state.tensors)
        started = time.perf_counter()
        done = boxes.update(program, state.tensors, x, found, changed=None if self._zero_threshold else change.changed,
                            tau=self.tau, price=price, planned=planned, feature_threshold=self.feature_threshold,
                            scales=state.scales)  # fmt: skip
        state.output = program.run_dense(state.tensors)
        state.frame = frame
        state.exact = state.exact and self.exact
        state.since_key += 0 if self.exact else 1
        recomputed = min(1.0, (done.macs + self._dense_macs) / max(1, program.total_macs))
        return FrameResult(_clone(state.output, state.tensors.values()), "incremental", recomputed,
                           f"{change.fraction:.1%} of pixels changed in {len(found)} box(es), {done.layers} layers updated",
                           done.calls, compute_seconds=time.perf_counter() - started, estimate=estimate)  # fmt: skip

    def _priced_out(self, x, frame, estimate: Estimate, planned: boxes.BoxPlan, what: str) -> FrameResult:
        """Full inference because the cost model priced the update above a full pass."""
        predicted = self.cost.corrected(estimate)
        bound = ">" if not planned.complete else "~"
        result = self._fall_back(x, frame, f"cost: update {bound}{predicted:.2f}x of full ({what})")
        result.estimate = estimate
        return result

    def _fall_back(self, x, frame, reason: str) -> FrameResult:
        """Full inference because an update would not pay; look less often while that lasts."""
        self._backoff = min(self._longest_backoff(), max(1, 2 * self._backoff))
        self._skip = self._backoff - 1
        return self._full(x, frame, reason, keep=self._skip == 0 or self._keep_state)

    def _longest_backoff(self) -> int:
        """``BACKOFF``, or more when a look costs over ``LOOK_SHARE`` of the full passes between looks."""
        full = self.cost.full_seconds
        if not full or not self._look_seconds:
            return BACKOFF
        return int(min(MAX_BACKOFF, max(BACKOFF, self._look_seconds / (LOOK_SHARE * full))))

    def _full(self, x, frame, reason: str, keep: bool = True) -> FrameResult:
        self.state = None  # free the old activations first (the allocator reuses their memory)
        started = time.perf_counter()
        timings = {} if keep and self.cost.calibrating else None
        output, tensors = self.program.run(x.clone() if keep else x, keep=keep, timings=timings)
        if timings:
            self.cost.calibrate(timings)
        if keep:
            self.state = State(tensors, output, frame, frame)
            output = _clone(output, tensors.values())
        return FrameResult(output, "full", 1.0, reason, compute_seconds=time.perf_counter() - started)

    def resume(self, state: State) -> None:
        """Continue from a state materialized earlier (hot, or read back from DuckDB)."""
        import torch

        if state.output is None:
            with torch.inference_mode():
                state.output = self.program.run_dense(state.tensors)
        self.state = state

    def reset(self) -> None:
        self.state = None
        self._priced_out_at = math.inf


def _spreads(tensors) -> dict[str, float]:
    """Each materialized layer's standard deviation: the unit of ``feature_threshold``."""
    return {name: float(t.float().std()) for name, t in tensors.items()}


def _clone(output, materialized=()):
    """Copies of the outputs that are materialized tensors: later frames update those in place."""
    import torch

    if isinstance(output, torch.Tensor):
        return output.clone() if any(output is t for t in materialized) else output
    materialized = list(materialized)
    if isinstance(output, (list, tuple)):
        return type(output)(_clone(o, materialized) for o in output)
    if isinstance(output, dict):
        return {k: _clone(v, materialized) for k, v in output.items()}
    return output
