"""Updating a frame's materialized state tile by tile, from a cell-exact dirty mask.

The changed cells of a layer's input form a mask; the layer's output cells whose
window touches a changed cell are exactly the max-pool of that mask with the layer's
window (kernel, stride, padding, dilation, ceil mode): Krypton's patch rule, applied
to every cell at once, so scattered changes stay scattered and rounding never
compounds from layer to layer. Each layer then recomputes only the fixed-size tiles
of its output that hold dirty cells: their read-in windows are gathered from the
(already updated) input with ``unfold``, the layer runs once on the batch, and the
tiles are written back. Tiles keep their shape from frame to frame, so the operator
set-up is reused.

With ``feature_threshold`` > 0 a materialized layer keeps only cells whose value
moved by more than that fraction of the layer's spread: the rest keep their old
values (changes accumulate until they count, as in CBinfer and DeltaCNN), and the
mask passed on shrinks to the cells that moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlml.incremental import patches
from sqlml.incremental.graph import MERGE, SPATIAL, Program

NODE_OVERHEAD_MACS = 4e5  # one layer's gather, call and scatter, in multiply-adds of work
TILE_OVERHEAD_MACS = 2e4  # each tile written back
#: a layer with this share of its tiles dirty runs whole (Krypton's saturation point)
DENSE_SHARE = 0.5


def tile_size(height: int, width: int) -> int:
    """Tiles of about 1/14 of the shorter side (16 px at 224), at least 4 cells."""
    return max(4, round(min(height, width) / 14))


@dataclass
class Work:
    """What an update recomputes: tiles per layer, and its cost in multiply-adds."""

    tiles: dict[str, int] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)  # layers run whole (most tiles dirty)
    macs: float = 0.0  # the layers' arithmetic on the tiles
    overhead_macs: float = 0.0  # per-layer and per-tile overheads, as multiply-adds

    @property
    def layers(self) -> int:
        return sum(1 for n in self.tiles.values() if n)


def dirty_masks(program: Program, mask, tau: float = 0.0) -> dict[str, Any]:
    """The dirty mask (H, W bool) of every local node, from the input's."""
    masks = {program.input_name: mask}
    for node in program.local:
        masks[node.name] = node_mask(node, masks, tau)
    return masks


def node_mask(node, masks, tau: float = 0.0):
    if node.kind == SPATIAL:
        out = spread(node.op, masks[node.inputs[0]], node.shape[-2:])
        return cap(out, tau) if 0.0 < tau < 1.0 else out
    if node.kind == MERGE:
        out = masks[node.inputs[0]]
        for name in node.inputs[1:]:
            out = out | masks[name]
        return out
    return masks[node.inputs[0]]


def spread(op: patches.SpatialOp, mask, out_hw):
    """Output cells of ``op`` whose window reads a dirty input cell (bool (H, W) -> bool out_hw).

    Per axis, an OR of the window's taps (dilation respected), taken every stride.
    """
    rows = _spread_axis(mask, 0, op.rows, op.taps[0], out_hw[0])
    return _spread_axis(rows, 1, op.cols, op.taps[1], out_hw[1])


def _spread_axis(mask, dim: int, axis: patches.Axis, taps: list[int], n_out: int):
    import torch

    n_in = mask.shape[dim]
    need = (n_out - 1) * axis.stride + axis.extent  # padded length the windows cover
    shape = list(mask.shape)
    shape[dim] = max(need, axis.pad + n_in)
    padded = torch.zeros(shape, dtype=torch.bool, device=mask.device)
    padded.narrow(dim, axis.pad, n_in).copy_(mask)
    out = None
    span = (n_out - 1) * axis.stride + 1
    for tap in taps:
        part = padded.narrow(dim, tap, span)
        part = part[::axis.stride] if dim == 0 else part[:, :: axis.stride]
        out = part.clone() if out is None else out.logical_or_(part)
    return out


def cap(mask, tau: float):
    """Krypton's projective-field threshold on a mask: keep a centred window of the dirty rows and columns."""
    import torch

    rows = torch.nonzero(mask.any(dim=1)).flatten()
    cols = torch.nonzero(mask.any(dim=0)).flatten()
    if rows.numel() == 0:
        return mask
    h, w = mask.shape
    bounds = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
    y0, y1 = patches.cap(bounds[0], bounds[1], h, tau)
    x0, x1 = patches.cap(bounds[2], bounds[3], w, tau)
    if (y0, y1, x0, x1) == bounds:
        return mask
    out = torch.zeros_like(mask)
    out[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
    return out


def dirty_tiles(mask, t: int):
    """(rows, cols) index tensors of the t x t tiles holding a dirty cell, row-major."""
    found = _tile_grid(mask, t).nonzero()
    return found[:, 0], found[:, 1]


@dataclass
class Plan:
    """Dirty masks and tile grids of every local node (None once over budget), and the work."""

    masks: dict[str, Any] | None
    grids: dict[str, Any]
    work: Work


def plan(program: Program, mask, tau: float = 0.0, budget_macs: float | None = None) -> Plan:
    """Masks and tiles of every local node and the work of updating them.

    Stops early, with masks None, once the work passes ``budget_macs`` (then a full
    pass is cheaper and the rest of the plan would be wasted time).
    """
    masks = {program.input_name: mask}
    grids: dict[str, Any] = {}
    work = Work()
    for node in program.local:
        h, w = node.shape[-2:]
        t = tile_size(h, w)
        masks[node.name] = node_mask(node, masks, tau)
        if node.kind in (SPATIAL, MERGE):
            grids[node.name] = _tile_grid(masks[node.name], t)
            n = int(grids[node.name].sum())
            whole = n >= DENSE_SHARE * grids[node.name].numel()
        else:  # pointwise: as its input
            n = work.tiles.get(node.inputs[0], 0)
            whole = node.inputs[0] in work.whole
        work.tiles[node.name] = n
        if whole:
            work.whole.add(node.name)
            work.macs += node.full_macs
            work.overhead_macs += NODE_OVERHEAD_MACS
        elif n:
            work.macs += n * t * t * node.full_macs / max(1, h * w)
            work.overhead_macs += NODE_OVERHEAD_MACS + n * TILE_OVERHEAD_MACS
        if budget_macs is not None and work.macs + work.overhead_macs > budget_macs:
            return Plan(None, grids, work)
    return Plan(masks, grids, work)


def tile_count(mask, t: int) -> int:
    """How many t x t tiles hold a dirty cell."""
    return int(_tile_grid(mask, t).sum())


def _tile_grid(mask, t: int):
    import torch.nn.functional as F

    h, w = mask.shape
    th, tw = -(-h // t), -(-w // t)
    if (th * t, tw * t) != (h, w):
        mask = F.pad(mask, (0, tw * t - w, 0, th * t - h))
    return mask.view(th, t, tw, t).any(dim=3).any(dim=1)


def update(program: Program, tensors: dict[str, Any], x_new, mask, *, tau: float = 0.0,
           feature_threshold: float = 0.0, scales: dict[str, float] | None = None,
           planned: Plan | None = None) -> Work:  # fmt: skip
    """Bring ``tensors`` (the materialized state) up to ``x_new``, whose changed cells are ``mask``.

    ``mask`` is (H, W) bool (True = changed); only those input cells are written, so
    with a threshold the state image never moves by less than it. ``planned`` is the
    ``plan`` already made for the estimate (its masks are not reused when truncating,
    since truncation shrinks them on the way). Returns the work done.
    """
    import torch

    name = program.input_name
    state_x = tensors[name]
    state_x[0][:, mask] = x_new[0][:, mask]
    truncating = feature_threshold > 0 and bool(scales)
    reuse = planned is not None and planned.masks is not None and not truncating
    masks = {name: mask}
    fresh: dict[str, Any] = {}
    work = Work()
    for node in program.local:
        h, w = node.shape[-2:]
        t = tile_size(h, w)
        source = fresh.get(node.inputs[0]) if node.inputs else None
        if node.kind not in (SPATIAL, MERGE):  # pointwise: its input's mask and tiles
            out_mask = masks[node.inputs[0]]
            cells = source[0] if source else []
            whole = bool(source) and source[0] is None
        else:
            out_mask = planned.masks[node.name] if reuse else node_mask(node, masks, tau)
            grid = planned.grids[node.name] if reuse else _tile_grid(out_mask, t)
            cells = [tuple(c) for c in grid.nonzero().tolist()]
            whole = len(cells) >= DENSE_SHARE * grid.numel()
        n = len(cells) if cells is not None else 0
        work.tiles[node.name] = n
        masks[node.name] = out_mask
        if not whole and n == 0:
            fresh[node.name] = None
            continue
        if whole:  # most of the map is dirty: run the layer on the full maps, as a full pass would
            work.whole.add(node.name)
            work.macs += node.full_macs
            work.overhead_macs += NODE_OVERHEAD_MACS
            env = {node.inputs[0]: source[1]} if node.kind not in (SPATIAL, MERGE) else {i: tensors[i] for i in node.inputs}
            values = program.evaluate(node, env)
            if node.name in program.materialized:
                target = tensors[node.name]
                if truncating and scales.get(node.name):
                    moved = (values - target).abs().amax(dim=1, keepdim=True) > feature_threshold * scales[node.name]
                    masks[node.name] = moved[0, 0]
                    values = torch.where(moved, values, target)
                target.copy_(values)
            fresh[node.name] = (None, values)
            continue
        work.macs += n * t * t * node.full_macs / max(1, h * w)
        work.overhead_macs += NODE_OVERHEAD_MACS + n * TILE_OVERHEAD_MACS
        if node.kind == SPATIAL:
            contexts = _windows(tensors[node.inputs[0]], cells, t, node.op)
            boxes = [(y * t, y * t + t, x * t, x * t + t) for y, x in cells]
            values = node.op.apply(contexts, boxes, tensors[node.inputs[0]].shape[-2:])
        elif node.kind == MERGE:
            values = program.evaluate(node, {i: _windows(tensors[i], cells, t) for i in node.inputs})
        else:  # pointwise: on the input's fresh tiles
            values = program.evaluate(node, {node.inputs[0]: source[1]})
        if node.name in program.materialized:
            target = tensors[node.name]
            if truncating and scales.get(node.name):
                masks[node.name], cells, values = _truncate(target, out_mask, cells, t, values, feature_threshold * scales[node.name])
            _scatter(target, cells, t, values)
        fresh[node.name] = (cells, values) if cells else None
    return work


#: up to this many tiles are sliced one by one; more are gathered from one unfold view
SLICE_TILES = 24


def _windows(source, cells, t: int, op: patches.SpatialOp | None = None):
    """Read-in windows of output tiles ``cells`` [(row, col)] from ``source`` (1, C, H, W): (n, C, h, w).

    Without ``op`` the window is the tile itself (merges, truncation). Windows reaching
    into the padding (or past the map) are sliced and padded one by one; the others
    are views of the map, stacked (few tiles) or gathered from an ``unfold`` view.
    """
    import torch

    h, w = source.shape[-2:]
    if op is None:
        sy = sx = win_h = win_w = t
        top = left = 0
        value = 0.0
    else:
        sy, sx = t * op.rows.stride, t * op.cols.stride
        win_h = (t - 1) * op.rows.stride + op.rows.extent
        win_w = (t - 1) * op.cols.stride + op.cols.extent
        top, left = op.rows.pad, op.cols.pad
        value = op.pad_value
    starts = [(y * sy - top, x * sx - left) for y, x in cells]
    inside = [a >= 0 and b >= 0 and a + win_h <= h and b + win_w <= w for a, b in starts]
    if len(cells) <= SLICE_TILES or not any(inside):
        return torch.stack([
            source[0, :, a : a + win_h, b : b + win_w] if ok else patches.padded_slice(source, (a, a + win_h, b, b + win_w), value)[0]
            for (a, b), ok in zip(starts, inside, strict=True)
        ])  # fmt: skip
    out = torch.empty((len(cells), source.shape[1], win_h, win_w), dtype=source.dtype, device=source.device)
    oy, ox = (-top) % sy, (-left) % sx  # where the grid of window starts meets the map
    grid = source[0, :, oy:, ox:].unfold(1, win_h, sy).unfold(2, win_w, sx)  # (C, rows, cols, win_h, win_w)
    picked = [k for k, ok in enumerate(inside) if ok]
    rows = torch.tensor([(starts[k][0] - oy) // sy for k in picked], device=source.device)
    cols = torch.tensor([(starts[k][1] - ox) // sx for k in picked], device=source.device)
    out[torch.tensor(picked, device=source.device)] = grid[:, rows, cols].transpose(0, 1)
    for k, ok in enumerate(inside):
        if not ok:
            a, b = starts[k]
            out[k] = patches.padded_slice(source, (a, a + win_h, b, b + win_w), value)[0]
    return out


def _scatter(target, cells, t: int, values) -> None:
    """Write tile k of ``values`` (n, C, t, t) at tile ``cells[k]`` of ``target``, cropped to the map."""
    import torch

    c, h, w = target.shape[-3:]
    if len(cells) > 2 and h % t == 0 and w % t == 0 and target.is_contiguous():
        grid = target[0].view(c, h // t, t, w // t, t).permute(1, 3, 0, 2, 4)  # (rows, cols, C, t, t), a view
        rows = torch.tensor([y for y, _ in cells], device=target.device)
        cols = torch.tensor([x for _, x in cells], device=target.device)
        grid[rows, cols] = values  # one index_put_ through the view
        return
    for k, (y, x) in enumerate(cells):
        y0, x0 = y * t, x * t
        y1, x1 = min(y0 + t, h), min(x0 + t, w)
        target[0, :, y0:y1, x0:x1] = values[k, :, : y1 - y0, : x1 - x0]


def _truncate(target, mask, cells, t: int, values, limit: float):
    """Keep cells that moved by more than ``limit``: (mask of moved cells, kept tiles, their values)."""
    import torch

    old = _windows(target, cells, t)
    moved = (values - old).abs().amax(dim=1, keepdim=True) > limit  # (n, 1, t, t)
    merged = torch.where(moved, values, old)
    keep = moved.flatten(1).any(dim=1).tolist()
    new_mask = torch.zeros_like(mask)
    h, w = mask.shape[-2:]
    kept = []
    for k, (y, x) in enumerate(cells):
        if keep[k]:
            y0, x0 = y * t, x * t
            y1, x1 = min(y0 + t, h), min(x0 + t, w)
            new_mask[y0:y1, x0:x1] = moved[k, 0, : y1 - y0, : x1 - x0]
            kept.append(k)
    return new_mask, [cells[k] for k in kept], merged[kept]
