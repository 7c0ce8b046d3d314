"""Occlusion heat maps with batched incremental inference (Krypton's multi-query optimization).

Sliding a gray square over an image and re-running the CNN each time asks thousands
of queries that differ from the base image in one small patch. All of them share the
base image's materialized activations: per layer, a batch of ``n`` read-in contexts
(base values with each query's own patch overlaid) goes through the unmodified layer
operator once. Within a batch every query's patch has the same size per layer (the
upper-bound rule, shifted back inside at the borders), so they stack into one tensor.
Before the first dense layer (global pooling, linear) each query's full tensor is
rebuilt from the base and its patch ("full projection") and the tail runs batched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlml.incremental import patches
from sqlml.incremental.graph import MERGE, SPATIAL, Program


@dataclass
class OcclusionResult:
    heatmap: Any  # numpy (rows, cols): score drop when the patch covers that position
    target: int
    base_score: float
    positions: list[tuple[int, int]]  # top-left corners, row-major
    patch: int
    stride: int
    mode: str
    seconds: float
    stats: dict = field(default_factory=dict)


def occlusion_map(program: Program, x, *, patch: int = 16, stride: int = 4, color=0.0, target: int | None = None,
                  output: int = 0, batch: int = 16, mode: str = "incremental", tau: float = 0.0) -> OcclusionResult:  # fmt: skip
    """Heat map of score drops for ``x`` (1, C, H, W) under a ``patch``-px square of ``color``.

    The score is the softmax probability of ``target`` for a (N, K) output, the mean
    of channel ``target`` for a feature-map output; ``output`` picks one of several
    outputs. ``mode='full'`` re-runs the whole model per query (the naive baseline).
    """
    import numpy as np
    import torch

    _, c, h, w = x.shape
    if patch > min(h, w):
        patch = min(h, w)
    rows = list(range(0, h - patch + 1, stride))
    cols = list(range(0, w - patch + 1, stride))
    positions = [(py, px) for py in rows for px in cols]
    fill = torch.as_tensor(color, dtype=x.dtype, device=x.device).reshape(-1, 1, 1).expand(c, patch, patch)
    started = time.perf_counter()
    with torch.inference_mode():
        base_out, tensors = program.run(x, keep=True)
        base = _score_tensor(base_out, output)
        if target is None:
            target = int(_default_target(base))
        base_score = float(_score(base, target)[0])
        runner = _IncrementalBatch(program, tensors, tau) if mode == "incremental" and program.supported else None
        scores = []
        for start in range(0, len(positions), batch):
            chunk = positions[start : start + batch]
            if runner is None:
                images = x.expand(len(chunk), -1, -1, -1).clone()
                for k, (py, px) in enumerate(chunk):
                    images[k, :, py : py + patch, px : px + patch] = fill
                out = program.module(images)
            else:
                out = runner.run([(py, py + patch, px, px + patch) for py, px in chunk], fill)
            scores.append(_score(_score_tensor(out, output), target))
    seconds = time.perf_counter() - started
    drops = base_score - torch.cat(scores).cpu().numpy()
    heatmap = drops.reshape(len(rows), len(cols)).astype(np.float32)
    used = "incremental" if runner is not None else "full"
    stats = runner.stats() if runner is not None else {}
    if mode == "incremental" and runner is None:
        stats["reason"] = program.reason or "no local layers"
    return OcclusionResult(heatmap, target, base_score, positions, patch, stride, used, seconds, stats)


def _score_tensor(out, index: int):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    return out[index]


def _default_target(base) -> int:
    if base.ndim == 2:
        return int(base[0].argmax())
    return int(base[0].flatten(1).max(dim=1).values.argmax())


def _score(out, target: int):
    """One score per batch item: class probability, or a channel's mean over the map."""
    if out.ndim == 2:
        return out.float().softmax(dim=1)[:, target]
    return out[:, target].float().flatten(1).mean(dim=1)


class _IncrementalBatch:
    """Patch values per local node for a batch of occluded copies of one base image."""

    def __init__(self, program: Program, tensors: dict[str, Any], tau: float):
        self.program = program
        self.base = tensors
        self.tau = tau
        self.padded: dict[tuple, Any] = {}
        self.need_full = _read_by_dense(program)
        self.cells = 0.0
        self.full_cells = 0.0

    def run(self, boxes: list[patches.Box], fill):
        import torch

        program = self.program
        n = len(boxes)
        values = {program.input_name: fill.unsqueeze(0).expand(n, -1, -1, -1).contiguous()}
        where = {program.input_name: boxes}
        for node in program.local:
            per_cell = node.full_macs / max(1, node.shape[-1] * node.shape[-2])
            if node.kind == SPATIAL:
                where[node.name], values[node.name] = self._spatial(node, where, values)
            elif node.kind == MERGE:
                hw = node.shape[-2:]
                united = [_union_all(parts) for parts in zip(*(where[i] for i in node.inputs), strict=True)]
                united = _same_size(united, hw)
                env = {i: self._windows(i, united, where, values) for i in node.inputs}
                where[node.name], values[node.name] = united, program.evaluate(node, env)
            else:  # pointwise
                where[node.name] = where[node.inputs[0]]
                values[node.name] = program.evaluate(node, {node.inputs[0]: values[node.inputs[0]]})
            self.cells += per_cell * patches.box_area(where[node.name][0]) * n
            self.full_cells += node.full_macs * n
        env = {}
        for name in self.need_full:
            full = self.base[name].expand(n, -1, -1, -1).clone()
            _overlay(full, where[name], values[name], (0, 0))
            env[name] = full
        with torch.inference_mode():
            return program.run_dense(env)

    def _spatial(self, node, where, values):
        source = node.inputs[0]
        in_boxes = where[source]
        in_hw = self.base[source].shape[-2:]
        out_hw = node.shape[-2:]
        if all(patches.box_area(b) == in_hw[0] * in_hw[1] for b in in_boxes):  # saturated: run it whole
            full = (0, out_hw[0], 0, out_hw[1])
            return [full] * len(in_boxes), self.program.evaluate(node, {source: values[source]})
        outs = []
        for box in in_boxes:
            o = node.op.affected(box, out_hw)
            if o is None:  # the patch falls between windows: pick any cell, it recomputes unchanged
                o = (0, 1, 0, 1)
            y0, y1 = patches.cap(o[0], o[1], out_hw[0], self.tau)
            x0, x1 = patches.cap(o[2], o[3], out_hw[1], self.tau)
            outs.append((y0, y1, x0, x1))
        outs = _same_size(outs, out_hw)
        reads = [node.op.read_in(b) for b in outs]
        contexts = self._windows(source, reads, where, values, node.op)
        return outs, node.op.apply(contexts, outs, in_hw)

    def _windows(self, name, windows, where, values, op=None):
        """Each query's window of node ``name``: base values with that query's patch overlaid."""
        import torch

        pad_value = op.pad_value if op is not None else 0.0
        lo_y = max(0, -min(w[0] for w in windows))
        lo_x = max(0, -min(w[2] for w in windows))
        h, w = self.base[name].shape[-2:]
        hi_y = max(0, max(win[1] for win in windows) - h)
        hi_x = max(0, max(win[3] for win in windows) - w)
        key = (name, pad_value, lo_y, hi_y, lo_x, hi_x)
        padded = self.padded.get(key)
        if padded is None:
            padded = patches.padded_slice(self.base[name], (-lo_y, h + hi_y, -lo_x, w + hi_x), pad_value)[0]
            self.padded[key] = padded
        out = torch.stack([padded[:, y0 + lo_y : y1 + lo_y, x0 + lo_x : x1 + lo_x] for y0, y1, x0, x1 in windows])
        shifted = [(b[0] - w_[0], b[1] - w_[0], b[2] - w_[2], b[3] - w_[2]) for b, w_ in zip(where[name], windows, strict=True)]
        _overlay(out, shifted, values[name], (0, 0))
        return out

    def stats(self) -> dict:
        return {"recomputed": self.cells / self.full_cells if self.full_cells else 1.0}


def _overlay(target, boxes, values, origin) -> None:
    """Write each item's patch ``values[k]`` (at ``boxes[k]``) into ``target[k]``, clipped to it."""
    h, w = target.shape[-2:]
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
        if cy0 >= cy1 or cx0 >= cx1:
            continue
        target[k, :, cy0:cy1, cx0:cx1] = values[k, :, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


def _union_all(boxes):
    box = boxes[0]
    for other in boxes[1:]:
        box = patches.union(box, other)
    return box


def _same_size(boxes, hw):
    """All boxes grown to the largest height and width, shifted back inside the map."""
    height = max(b[1] - b[0] for b in boxes)
    width = max(b[3] - b[2] for b in boxes)
    out = []
    for y0, _, x0, _ in boxes:
        ry = patches.shift_inside(y0, height, hw[0])
        rx = patches.shift_inside(x0, width, hw[1])
        out.append((*ry, *rx))
    return out


def _read_by_dense(program: Program) -> list[str]:
    """Local nodes whose full tensors the dense tail (or the output) reads."""
    import torch.fx as fx

    local = {n.name for n in program.nodes if n.local}
    needed = {i for n in program.dense for i in n.inputs if i in local}
    fx.node.map_arg(program.output, lambda node: needed.add(node.name) if node.name in local else None)
    return sorted(needed)


def save_overlay(path, image, heatmap, alpha: float = 0.5) -> str:
    """Write ``image`` (H, W, 3 RGB uint8) with ``heatmap`` blended on top as a PNG."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    span = float(heatmap.max() - heatmap.min()) or 1.0
    normalized = ((heatmap - heatmap.min()) / span * 255).astype(np.uint8)
    colored = cv2.applyColorMap(cv2.resize(normalized, (w, h), interpolation=cv2.INTER_CUBIC), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), 1 - alpha, colored, alpha, 0)
    if not cv2.imwrite(str(path), blended):
        raise OSError(f"could not write the heat map image {path}")
    return str(path)
