"""Which cells of every layer a change reaches, and what recomputing them costs.

The input's dirty cells (the changed blocks) go through the local layers as masks,
each by its layer's exact rule (Krypton's update-patch rule, per cell): a conv or
pooling output is dirty when any cell of its window (kernel extent, stride, padding,
dilation, ``ceil_mode`` overhang) is; a pointwise layer keeps its input's mask; a
residual add or channel concat takes the union of its inputs'. So many small changes
stay many small regions however they are spread over the frame, each growing exactly
by its projective field, never into a bounding box around them all; a layer whose
dirty cells cover most of its map runs whole. ``tau`` applies Krypton's
projective-field threshold to each connected dirty region of each layer: its
bounding box is capped at ``tau`` of the map's side, around its centre, and the
fringe beyond keeps its old values (approximate).

Planning is mask arithmetic on uint8 maps (a fraction of a millisecond at 640x360),
so the cost model prices an update before any tensor work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlml.incremental.graph import MERGE, SPATIAL, Program

#: a layer whose dirty cells cover this share of its map runs whole (cell by cell loses there: it
#: costs about twice as much per cell)
WHOLE_SHARE = 0.35


@dataclass
class Plan:
    """The dirty mask of every local node, the nodes that run whole, and the update's price."""

    masks: dict[str, Any] = field(default_factory=dict)  # (H, W) uint8 numpy, 1 where dirty (input too)
    whole: set[str] = field(default_factory=set)
    macs: float = 0.0  # multiply-adds recomputed
    arithmetic: float = 0.0  # the layers' share of their measured whole-map cost
    calls: int = 0  # batched operator calls (about one per layer)
    complete: bool = True  # False: planning stopped once over budget


def spatial_mask(op, mask, out_hw):
    """Outputs of a conv or pooling layer whose window reads any cell of ``mask`` (uint8; exact)."""
    import cv2
    import numpy as np

    if op.pointwise:
        return mask
    h, w = mask.shape
    oh, ow = out_hw
    rows, cols = op.rows, op.cols
    bottom = max(0, (oh - 1) * rows.stride - rows.pad + rows.extent - h)
    right = max(0, (ow - 1) * cols.stride - cols.pad + cols.extent - w)
    m = mask
    if rows.pad or cols.pad or bottom or right:
        m = cv2.copyMakeBorder(m, rows.pad, bottom, cols.pad, right, cv2.BORDER_CONSTANT, value=0)
    kernel = np.zeros((rows.extent, cols.extent), np.uint8)
    taps_y, taps_x = op.taps
    kernel[np.ix_(taps_y, taps_x)] = 1
    # anchor (0, 0): each cell takes the maximum of the window starting at it
    grown = cv2.dilate(m, kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out = grown[: (oh - 1) * rows.stride + 1 : rows.stride, : (ow - 1) * cols.stride + 1 : cols.stride]
    return out if out.flags.c_contiguous else np.ascontiguousarray(out)


def cap_regions(mask, tau: float):
    """Krypton's projective-field threshold on a mask: each 8-connected region keeps only the cells
    inside its bounding box capped at ``tau`` of the map's side (centred)."""
    import cv2
    import numpy as np

    if not 0.0 < tau < 1.0 or not mask.any():
        return mask
    h, w = mask.shape
    limit_y, limit_x = max(1, round(tau * h)), max(1, round(tau * w))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    x0, y0, bw, bh = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    if (bh <= limit_y).all() and (bw <= limit_x).all():
        return mask
    y0 = y0 + np.maximum(0, bh - limit_y) // 2
    x0 = x0 + np.maximum(0, bw - limit_x) // 2
    y1, x1 = y0 + np.minimum(bh, limit_y), x0 + np.minimum(bw, limit_x)
    ys, xs = np.nonzero(mask)
    own = labels[ys, xs]
    keep = (ys >= y0[own]) & (ys < y1[own]) & (xs >= x0[own]) & (xs < x1[own])
    capped = np.zeros_like(mask)
    capped[ys[keep], xs[keep]] = 1
    return capped


def node_mask(node, masks: dict[str, Any], tau: float = 0.0):
    """The dirty mask of ``node``'s output from its inputs' masks."""
    if node.kind == SPATIAL:
        return cap_regions(spatial_mask(node.op, masks[node.inputs[0]], node.shape[-2:]), tau)
    if node.kind == MERGE:
        out = None
        for name in node.inputs:
            out = masks[name] if out is None else out | masks[name]
        return out
    return masks[node.inputs[0]]  # pointwise


def share(mask) -> float:
    """The dirty share of a uint8 mask."""
    import numpy as np

    return np.count_nonzero(mask) / max(1, mask.size)


def runs_whole(node, mask, whole: set[str]) -> bool:
    """A pointwise layer runs whole when its input did; others when most of their map is dirty."""
    if node.kind not in (SPATIAL, MERGE):
        return node.inputs[0] in whole
    return share(mask) >= WHOLE_SHARE


def plan(program: Program, input_mask, *, tau: float = 0.0, costs: dict[str, float] | None = None,
         budget: float | None = None) -> Plan:  # fmt: skip
    """Masks and price of an update whose input cells ``input_mask`` (uint8) changed.

    ``costs`` are each node's whole-map seconds (default: its multiply-adds); planning
    stops (``complete`` False) once the price passes ``budget``.
    """
    result = Plan({program.input_name: input_mask})
    for node in program.local:
        mask = result.masks[node.name] = node_mask(node, result.masks, tau)
        if not mask.any():
            continue
        whole = runs_whole(node, mask, result.whole)
        if whole:
            result.whole.add(node.name)
        part = 1.0 if whole else share(mask)
        result.macs += part * node.full_macs
        result.arithmetic += part * (costs[node.name] if costs else node.full_macs)
        result.calls += 1
        if budget is not None and result.arithmetic > budget:
            result.complete = False
            return result
    return result
