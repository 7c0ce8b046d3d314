"""Incremental inference on a stream of frames: detect the change, update only the patch.

For every new frame the engine compares it with the image its materialized state
was computed from, finds the changed boxes (cells differing by more than
``threshold``, grouped into tiles, then into a few boxes), propagates them through
the local layers with the exact patch rules, recomputes each box from the layer's
materialized (already updated) input, splices it into the materialized output, and
runs the dense tail on the full updated tensors. Boxes are updated in topological
order, so overlapping boxes only cost time, never correctness.

The state image is updated only inside the boxes; with a threshold it therefore
drifts from the true frame by at most the threshold per pixel, never more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlml.incremental import patches
from sqlml.incremental.cost import CostModel, Estimate
from sqlml.incremental.graph import MERGE, SPATIAL, Program

Box = patches.Box


@dataclass
class Plan:
    """Boxes to recompute per local node, and the cost of doing so."""

    boxes: dict[str, list[Box]]
    recomputed_macs: float
    calls: int

    @property
    def empty(self) -> bool:
        return not any(self.boxes.values())


def propagate(program: Program, input_boxes: list[Box], tau: float = 0.0, overhead_macs: float = 2.5e5) -> Plan:
    """Carry the changed input boxes through the local layers (exact unless ``0 < tau < 1``)."""
    boxes: dict[str, list[Box]] = {program.input_name: list(input_boxes)}
    recomputed = 0.0
    calls = 0
    for node in program.local:
        out_hw = node.shape[-2:]
        per_cell = node.full_macs / max(1, out_hw[0] * out_hw[1])
        if node.kind == SPATIAL:
            found = []
            for box in boxes[node.inputs[0]]:
                out = node.op.affected(box, out_hw)
                if out is not None:
                    y0, y1 = patches.cap(out[0], out[1], out_hw[0], tau)
                    x0, x1 = patches.cap(out[2], out[3], out_hw[1], tau)
                    found.append((y0, y1, x0, x1))
            found = patches.merge_boxes(found, overhead_macs / max(per_cell, 1.0))
        elif node.kind == MERGE:
            found = [b for i in node.inputs for b in boxes[i]]
            found = patches.merge_boxes(found, overhead_macs / max(per_cell, 1.0))
        else:  # pointwise
            found = list(boxes[node.inputs[0]])
        boxes[node.name] = found
        recomputed += per_cell * sum(patches.box_area(b) for b in found)
        calls += len(found)
    return Plan(boxes, recomputed, calls)


def apply_plan(program: Program, tensors: dict[str, Any], x_new, plan: Plan) -> None:
    """Splice the plan's boxes into ``tensors`` (the materialized state), in place.

    A pointwise layer reads the boxes its input just computed (same boxes), so a
    layer read only by pointwise layers (a conv before its ReLU) is never written back.
    """
    name = program.input_name
    fresh: dict[str, list] = {name: [x_new[..., y0:y1, x0:x1] for y0, y1, x0, x1 in plan.boxes.get(name, [])]}
    _write(tensors[name], plan.boxes.get(name, []), fresh[name])
    for node in program.local:
        boxes = plan.boxes[node.name]
        if node.kind == SPATIAL:
            source = tensors[node.inputs[0]]
            values = [node.op.region(source, box) for box in boxes]
        elif node.kind == MERGE:
            values = [program.evaluate(node, {i: tensors[i][..., b[0] : b[1], b[2] : b[3]] for i in node.inputs}) for b in boxes]
        else:  # pointwise: on the input's fresh values, box for box
            source = node.inputs[0]
            values = [program.evaluate(node, {source: value}) for value in fresh[source]]
        fresh[node.name] = values
        if node.name in program.materialized:
            _write(tensors[node.name], boxes, values)


def _write(target, boxes, values) -> None:
    for (y0, y1, x0, x1), value in zip(boxes, values, strict=True):
        target[..., y0:y1, x0:x1] = value


def changed_boxes(new, old, threshold=0.0, tile: int | None = None, overhead: float | None = None):
    """Boxes covering every cell where ``new`` and ``old`` (1, C, H, W) differ by more than ``threshold``.

    ``threshold`` is a number or one per channel. Returns (boxes, changed fraction,
    fraction of cells whose difference is over half the threshold: the drift).
    """
    import numpy as np
    import torch

    diff = (new - old).abs()
    if isinstance(threshold, (int, float)):
        over = diff > float(threshold)
        near = diff > float(threshold) / 2 if threshold > 0 else over
    else:
        limit = torch.as_tensor(threshold, dtype=diff.dtype).view(1, -1, 1, 1)
        over, near = diff > limit, diff > limit / 2
    mask = over.any(dim=1)[0].numpy()
    drift = float(near.any(dim=1).float().mean())
    changed = float(mask.mean())
    if changed == 0.0:
        return [], 0.0, drift
    h, w = mask.shape
    tile = tile or max(4, round(min(h, w) / 28))
    boxes = _component_boxes(mask, tile, np)
    overhead = (h * w) * 0.01 if overhead is None else overhead
    return patches.merge_boxes(boxes, overhead), changed, drift


def _component_boxes(mask, tile: int, np) -> list[Box]:
    """Changed tiles grouped into 8-connected components; each as the tight box of its cells."""
    import cv2

    h, w = mask.shape
    th, tw = -(-h // tile), -(-w // tile)
    padded = np.zeros((th * tile, tw * tile), dtype=bool)
    padded[:h, :w] = mask
    tiles = padded.reshape(th, tile, tw, tile).any(axis=(1, 3)).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(tiles, connectivity=8)
    boxes = []
    for label in range(1, count):
        tx, ty, tw_, th_ = (int(v) for v in stats[label, :4])
        y0, x0 = ty * tile, tx * tile
        sub = mask[y0 : min(h, (ty + th_) * tile), x0 : min(w, (tx + tw_) * tile)]
        rows = np.flatnonzero(sub.any(axis=1))
        cols = np.flatnonzero(sub.any(axis=0))
        boxes.append((y0 + int(rows[0]), y0 + int(rows[-1]) + 1, x0 + int(cols[0]), x0 + int(cols[-1]) + 1))
    return boxes


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


@dataclass
class FrameResult:
    output: Any
    mode: str  # 'full' | 'incremental' | 'reuse'
    recomputed: float  # fraction of the model's compute spent on this frame
    reason: str = ""  # why this mode
    boxes: list = field(default_factory=list)
    seconds: float = 0.0
    estimate: Estimate | None = None


class VideoEngine:
    """Runs a compiled model over consecutive frames, reusing what did not change.

    ``mode='full'`` runs every frame whole (the reference); ``'incremental'`` lets the
    cost model pick per frame. ``threshold`` (in input-tensor units, per channel or
    one number) and ``tau`` are the approximation knobs; both 0 means exact.
    ``refresh`` forces a full pass after that many approximate updates, ``drift``
    when that fraction of cells differs by more than half the threshold.
    """

    def __init__(self, program: Program, *, mode: str = "incremental", threshold=0.0, tau: float = 0.0,
                 refresh: int = 100, drift: float = 0.25, cost: CostModel | None = None):  # fmt: skip
        self.program = program
        self.mode = mode
        self.threshold = threshold
        self.tau = tau
        self.refresh = refresh
        self.drift = drift
        self.cost = cost or CostModel()
        self.state: State | None = None

    @property
    def exact(self) -> bool:
        thresholds = self.threshold if not isinstance(self.threshold, (int, float)) else [self.threshold]
        return all(float(t) == 0.0 for t in thresholds) and not (0.0 < self.tau < 1.0)

    def step(self, x, frame: Any = None) -> FrameResult:
        """Inference for one frame ``x`` (1, C, H, W)."""
        import torch

        with torch.inference_mode():
            started = time.perf_counter()
            result = self._decide_and_run(x, frame)
            result.seconds = time.perf_counter() - started
        self.cost.observe(result.mode, result.seconds, result.estimate)
        return result

    def _decide_and_run(self, x, frame) -> FrameResult:
        program = self.program
        if self.mode == "full" or not program.supported:
            reason = "mode full" if self.mode == "full" else program.reason or "no local layers"
            return self._full(x, frame, reason, keep=program.supported and self.mode != "full")
        state = self.state
        if state is None:
            return self._full(x, frame, "first frame: materializing its state")
        boxes, changed, drift = changed_boxes(x, state.tensors[program.input_name], self.threshold)
        if not boxes:
            state.frame = frame
            return FrameResult(_clone(state.output), "reuse", 0.0, "no cell changed beyond the threshold")
        if not self.exact and self.refresh and state.since_key >= self.refresh:
            return self._full(x, frame, f"refresh: {state.since_key} approximate updates since the key frame")
        if not self.exact and drift > self.drift:
            return self._full(x, frame, f"refresh: drift {drift:.0%} of cells")
        plan = propagate(program, boxes, self.tau, self.cost.overhead_macs)
        estimate = self.cost.estimate(program.total_macs, plan.recomputed_macs + self._dense_macs(), plan.calls)
        if self.cost.choose(estimate) == "full":
            result = self._full(x, frame, f"cost: update ~{estimate.predicted * self.cost.correction:.2f}x of full "
                                          f"({changed:.0%} of pixels changed)")  # fmt: skip
            result.estimate = estimate
            return result
        apply_plan(program, state.tensors, x, plan)
        state.output = program.run_dense(state.tensors)
        state.frame = frame
        state.exact = state.exact and self.exact
        state.since_key += 0 if self.exact else 1
        result = FrameResult(_clone(state.output), "incremental", estimate.recomputed, f"{len(boxes)} box(es)", boxes)
        result.estimate = estimate
        return result

    def _full(self, x, frame, reason: str, keep: bool = True) -> FrameResult:
        output, tensors = self.program.run(x.clone() if keep else x, keep=keep)
        if keep:
            self.state = State(tensors, output, frame, frame)
        return FrameResult(_clone(output) if keep else output, "full", 1.0, reason)

    def _dense_macs(self) -> int:
        return sum(n.full_macs for n in self.program.dense)

    def resume(self, state: State) -> None:
        """Continue from a state materialized earlier (hot, or read back from DuckDB)."""
        import torch

        if state.output is None:
            with torch.inference_mode():
                state.output = self.program.run_dense(state.tensors)
        self.state = state

    def reset(self) -> None:
        self.state = None


def _clone(output):
    """Outputs that alias materialized tensors must not change with later frames."""
    import torch

    if isinstance(output, torch.Tensor):
        return output.clone()
    if isinstance(output, (list, tuple)):
        return type(output)(_clone(o) for o in output)
    if isinstance(output, dict):
        return {k: _clone(v) for k, v in output.items()}
    return output
