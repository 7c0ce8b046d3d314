"""Incremental inference on a stream of frames: detect the change, update only what it reaches.

For every new frame the engine scores each block of the frame against the image its
materialized state was computed from (:mod:`sqlml.incremental.changes`: mean absolute
difference per block, small isolated changes ignored, thresholds on change accumulated
since the block was last recomputed). When most blocks changed (a moving camera, a
cut) it runs full inference at once. Otherwise the changed blocks' cells are carried
through the local layers as exact masks (:mod:`sqlml.incremental.masks`) and the
update is priced by the cost model with each layer's cost as measured on this
machine; an update predicted to cost more than 0.85x of a full pass runs full
inference instead, before any tensor work. Otherwise the changed blocks are copied
into the state's image, each layer recomputes exactly its dirty cells in one batched
call (:mod:`sqlml.incremental.cells`), and the dense tail runs on the full updated tensors.

Every layer's state is always exactly the network's activations for the state's
image; with a threshold, that image differs from the true frame in each block by at
most the threshold on average (see ``changes``), never more, however many frames pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlml.incremental import cells, changes, masks
from sqlml.incremental.cost import CostModel, Estimate
from sqlml.incremental.graph import Program

# -- the per-frame driver -----------------------------------------------------------------


@dataclass
class State:
    """Materialized activations of the local layers, for the image in ``tensors[input]``
    (kept channels last: see :func:`sqlml.incremental.cells.hwc`)."""

    tensors: dict[str, Any]
    output: Any
    frame: Any = None  # the frame the state was last brought up to
    key_frame: Any = None  # the frame of the last full pass
    since_key: int = 0  # approximate updates since the last full pass
    exact: bool = True
    scales: dict[str, float] | None = None  # activation spread per layer (feature_threshold)
    pixels: Any = None  # the state's image as uint8 pixels (H, W, C), when frames come with them


@dataclass
class FrameResult:
    output: Any
    mode: str  # 'full' | 'incremental' | 'reuse'
    recomputed: float  # fraction of the model's compute spent on this frame
    reason: str = ""  # why this mode
    calls: int = 0  # batched operator calls of the update (about one per layer)
    seconds: float = 0.0  # the whole step
    compute_seconds: float = 0.0  # the full pass or the update alone (what the cost model compares)
    estimate: Estimate | None = None
    looked: bool = False  # the frame was compared with the state (not a full pass while backing off)
    changed: float | None = None  # share of blocks recomputed (None: not looked at)


#: the longest run of frames that go to full inference without looking for change ...
BACKOFF = 8
#: ... unless looking costs more than this share of the full passes in between (small models)
LOOK_SHARE = 0.02
MAX_BACKOFF = 32
#: over this share of changed blocks a frame goes to full inference without planning an update
MOSTLY_CHANGED = 0.5


class VideoEngine:
    """Runs a compiled model over consecutive frames, reusing what did not change.

    ``mode='full'`` runs every frame whole (the reference); ``'incremental'`` lets the
    cost model pick per frame. The approximation knobs, all 0 for exact results:
    ``threshold`` (input-tensor units, one number or per channel) ignores smaller mean
    changes per block (``block`` pixels a side, default ``changes.block_size``);
    ``pixel_threshold`` is the same in pixel levels, used for frames that come with
    their uint8 pixels (``step(x, pixels=...)``: far cheaper to compare than tensors);
    ``tau`` caps each dirty region, on each layer, at that fraction of the map's side;
    ``feature_threshold`` ignores feature changes under that fraction of a layer's
    spread. ``refresh`` forces a full pass after that many approximate updates,
    ``drift`` when that fraction of blocks differs by more than half the threshold.
    After a frame falls back to full inference the next look for change waits 1, then
    2, 4, up to ``BACKOFF`` frames (more when a look costs much of a full pass; full
    inference meanwhile: exact, and on a moving camera the detection is not paid every
    frame); an update that pays resets it.
    """

    def __init__(self, program: Program, *, mode: str = "incremental", threshold=0.0, tau: float = 0.0,
                 feature_threshold: float = 0.0, refresh: int = 100, drift: float = 0.25,
                 cost: CostModel | None = None, block: int | None = None,
                 pixel_threshold: float | None = None):  # fmt: skip
        self.program = program
        self.pixel_threshold = pixel_threshold
        self.mode = mode
        self.threshold = threshold
        self.tau = tau
        self.feature_threshold = feature_threshold
        self.refresh = refresh
        self.drift = drift
        self.block = block
        self.cost = cost or CostModel()
        if self.cost.calibrating and not self.cost.layer_seconds and program._layer_seconds:
            self.cost.adopt(program._layer_seconds)  # timed by an earlier engine of this process
        self.state: State | None = None
        self.tables = cells.tables_for(program) if program.supported else None
        self._dense_macs = sum(n.full_macs for n in program.dense)
        self._backoff = 0  # after fallbacks, look for change only every 2, 4, ... BACKOFF frames
        self._look_seconds = 0.0  # what a look that ends in full inference costs beyond the full pass (EMA)
        self._skip = 0
        self._keep_state = False
        self._pixels = None
        self._copy = True
        self._moving = None  # while a moving camera is screened on pixels: the previous frame's pixels
        self._screen_backoff = 0  # while it keeps moving, screen only every 2, 4, ... frames
        self._screen_skip = 0

    @property
    def exact(self) -> bool:
        zero = changes.exact_threshold(self.threshold if self.pixel_threshold is None else self.pixel_threshold)
        return zero and not (0.0 < self.tau < 1.0) and not self.feature_threshold

    def step(self, x, frame: Any = None, *, keep_state: bool = False, pixels=None, copy: bool = True) -> FrameResult:
        """Inference for one frame ``x`` (1, C, H, W); ``keep_state`` materializes its state in any case
        (the last frame of a query, whose state is stored for the next one). ``pixels`` are the
        frame's (H, W, C) uint8 pixels ``x`` was made from, at its size (changes are then found
        on them, with ``pixel_threshold``); ``copy=False`` returns outputs that the next step
        may overwrite (for callers that use them at once)."""
        import torch

        with torch.inference_mode():
            started = time.perf_counter()
            self._keep_state = keep_state
            self._pixels = pixels if self.pixel_threshold is not None else None
            self._copy = copy
            result = self._decide_and_run(x, frame)
            self._pixels = None
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
        if self._moving is not None:
            return self._screen(x, frame)
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
        pixels = self._pixels
        if pixels is not None and state.pixels is not None and state.pixels.shape == pixels.shape:
            change = changes.detect(pixels, state.pixels, self.pixel_threshold, self.block)
        else:
            change = changes.detect(x, base, self.threshold, self.block)
            state.pixels = None  # (approximate updates would leave it behind the state's image)
        if change.fraction > MOSTLY_CHANGED:
            reason = f"most of the frame changed ({change.fraction:.0%} of blocks)"
            if pixels is not None and not self._keep_state:  # screen the next frames on their pixels
                self._moving = pixels.copy()
                result = self._full(x, frame, reason, keep=False)
                result.changed = change.fraction
                return result
            return self._fall_back(x, frame, reason, change)
        if change.fraction == 0.0:
            self._backoff = 0
            state.frame = frame
            result = FrameResult(self._out(state), "reuse", 0.0, "no block changed beyond the threshold")
            result.changed = 0.0
            return result
        if not self.exact and self.refresh and state.since_key >= self.refresh:
            return self._full(x, frame, f"refresh: {state.since_key} approximate updates since the key frame")
        what = f"{change.fraction:.1%} of blocks changed"
        if not self.exact and change.drift > self.drift:  # sweep the drifted blocks (an update, when it pays)
            change = change.widened(0.5)
            what = f"drift sweep: {change.drift:.0%} of blocks over half the threshold, {change.fraction:.1%} recomputed"
        costs = self.cost.layer_costs(program)
        total = sum(costs.values())
        dense = sum(costs[n.name] for n in program.dense)
        height, width = base.shape[-2:]
        planned = masks.plan(program, change.pixels(height, width), tau=self.tau, costs=costs,
                             budget=self.cost.budget(total) - dense)  # fmt: skip
        estimate = self.cost.estimate(total, (planned.macs + self._dense_macs) / max(1, program.total_macs),
                                      planned.arithmetic + dense, planned.calls)  # fmt: skip
        if not planned.complete or self.cost.choose(estimate) == "full":
            return self._priced_out(x, frame, estimate, planned, what, change)
        self._backoff = 0
        if self.feature_threshold and state.scales is None:
            state.scales = _spreads(state.tensors)
        started = time.perf_counter()
        cells.write_input(base, x, self.tables.blocks(change.block), _ids(change.blocks, base.device))
        if state.pixels is not None:
            import cv2

            cv2.copyTo(pixels, planned.masks[program.input_name], state.pixels)
        done = cells.update(program, self.tables, state.tensors, planned, tau=self.tau,
                            feature_threshold=self.feature_threshold, scales=state.scales)  # fmt: skip
        state.output = program.run_dense(state.tensors)
        state.frame = frame
        state.exact = state.exact and self.exact
        state.since_key += 0 if self.exact else 1
        recomputed = min(1.0, (done.macs + self._dense_macs) / max(1, program.total_macs))
        result = FrameResult(self._out(state), "incremental", recomputed,
                             f"{what}: {done.cells} cells over {done.layers} layers ({done.whole} whole)",
                             planned.calls, compute_seconds=time.perf_counter() - started, estimate=estimate)  # fmt: skip
        result.changed = change.fraction
        return result

    def _screen(self, x, frame) -> FrameResult:
        """While most of every frame changes (a moving camera, codec noise in exact mode; frames
        with their pixels): compare a frame's pixels with the previous frame's only and run it
        full without keeping a state; while that lasts, screen only every 2, 4, ... frames (a
        screen costs about 1 ms at 640x360, a few percent of a full pass). The first frame that
        changed less keeps its state, so the next one is compared with it and updated when that pays."""
        pixels, previous = self._pixels, self._moving
        if pixels is None or pixels.shape != previous.shape or self._keep_state:
            self._stop_screening()
            why = "the query's last frame" if self._keep_state else "first frame after a moving camera"
            return self._full(x, frame, f"{why}: materializing its state")
        if self._screen_skip > 0:
            self._screen_skip -= 1
            if self._screen_skip == 0:
                self._moving = pixels.copy()  # the next frame is screened against this one
            return self._full(x, frame, f"still moving (next look in {self._screen_skip + 1})", keep=False)
        screen = changes.detect(pixels, previous, self.pixel_threshold, self.block)
        if screen.fraction > MOSTLY_CHANGED:
            self._screen_backoff = min(self._longest_backoff(), max(1, 2 * self._screen_backoff))
            self._screen_skip = self._screen_backoff - 1
            self._moving = pixels.copy() if self._screen_skip == 0 else previous
            result = self._full(x, frame, f"still moving: {screen.fraction:.0%} of blocks changed since the last frame", keep=False)
        else:
            self._stop_screening()
            result = self._full(x, frame, f"the camera settled ({screen.fraction:.0%} of blocks changed since the last "
                                          f"frame): materializing its state")  # fmt: skip
        result.changed = screen.fraction
        return result

    def _stop_screening(self) -> None:
        self._moving = None
        self._screen_backoff = self._screen_skip = 0

    def _priced_out(self, x, frame, estimate: Estimate, planned: masks.Plan, what: str, change) -> FrameResult:
        """Full inference because the cost model priced the update above a full pass."""
        predicted = self.cost.corrected(estimate)
        bound = ">" if not planned.complete else "~"
        result = self._fall_back(x, frame, f"cost: update {bound}{predicted:.2f}x of full ({what})", change)
        result.estimate = estimate
        return result

    def _fall_back(self, x, frame, reason: str, change=None) -> FrameResult:
        """Full inference because an update would not pay; look less often while that lasts."""
        self._backoff = min(self._longest_backoff(), max(1, 2 * self._backoff))
        self._skip = self._backoff - 1
        result = self._full(x, frame, reason, keep=self._skip == 0 or self._keep_state)
        result.changed = change.fraction if change is not None else None
        return result

    def _longest_backoff(self) -> int:
        """``BACKOFF``, or more when a look costs over ``LOOK_SHARE`` of the full passes between looks."""
        full = self.cost.full_seconds
        if not full or not self._look_seconds:
            return BACKOFF
        return int(min(MAX_BACKOFF, max(BACKOFF, self._look_seconds / (LOOK_SHARE * full))))

    def _full(self, x, frame, reason: str, keep: bool = True) -> FrameResult:
        import torch

        self.state = None  # free the old activations first (the allocator reuses their memory)
        started = time.perf_counter()
        timings = {} if keep and self.cost.calibrating else None
        if keep:  # channels last, so a map's cells are rows of a matrix (a no-op for decoded frames)
            x = x.clone(memory_format=torch.channels_last) if x.dim() == 4 else x.clone()
        output, tensors = self.program.run(x, keep=keep, timings=timings)
        if timings:
            self.cost.calibrate(timings)
            if not self.cost.calibrating:
                self.program._layer_seconds = dict(self.cost.layer_seconds)
        if keep:
            tensors = {name: cells.hwc(t) for name, t in tensors.items()}
            self.state = State(tensors, output, frame, frame)
            if self._pixels is not None:
                self.state.pixels = self._pixels.copy()
            output = self._out(self.state)
        return FrameResult(output, "full", 1.0, reason, compute_seconds=time.perf_counter() - started)

    def _out(self, state: State):
        """The state's output for the caller: copies of what later steps update in place."""
        return _clone(state.output, state.tensors.values()) if self._copy else state.output

    def resume(self, state: State) -> None:
        """Continue from a state materialized earlier (hot, or read back from DuckDB)."""
        import torch

        state.tensors = {name: cells.hwc(t) for name, t in state.tensors.items()}
        if state.output is None:
            with torch.inference_mode():
                state.output = self.program.run_dense(state.tensors)
        self.state = state

    def reset(self) -> None:
        self.state = None
        self._stop_screening()


def _ids(blocks, device):
    """Row-major ids of the set cells of a (rows, cols) bool numpy grid, as a tensor."""
    import numpy as np
    import torch

    return torch.as_tensor(np.flatnonzero(blocks), device=device)


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
