"""Sparse recomputation: each layer recomputes exactly its dirty cells, in one batched call.

The materialized tensors are kept channels last (H, W, C in memory), so a map is
also a matrix of ``H*W`` rows of ``C`` values, one row per cell. For a conv or
pooling layer, the window of every dirty output cell is gathered from the layer's
materialized (already updated) input with ONE ``index_select`` (cells past the
map's border read as the layer's padding: zeros, or -inf for max pooling): a
``(cells, taps, C)`` batch. A convolution is then one matrix product of that batch
with its weights (im2col, as CBinfer does), a max pool one maximum over the taps, an
average pool one sum; the pointwise layers after it (BN, activations, softmax over
channels) run on the ``(cells, C)`` rows, and ONE ``index_copy_`` writes them back.
A layer costs a handful of operator calls whatever the number and shape of the
changed regions, and no cell is recomputed that the change did not reach. A layer
whose dirty cells cover most of its map runs whole, as the model wrote it.

With ``feature_threshold`` a materialized layer keeps only the cells whose value moved
by more than that share of the layer's spread since they were last written (the rest
keep their old values, so small changes accumulate until they count); the layers
after it see only the cells that moved (DeltaCNN's truncation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlml.incremental import masks as planning
from sqlml.incremental.graph import MERGE, SPATIAL, Program


def _is_hwc(tensor) -> bool:
    n, c, h, w = tensor.shape
    return n == 1 and tensor.stride()[1:] == (1, w * c, c)  # (one image: its batch stride does not matter)


def hwc(tensor):
    """``tensor`` (1, C, H, W) laid out as H, W, C in memory (a copy only when it is not)."""
    import torch

    if _is_hwc(tensor) or tensor.numel() == 0:
        return tensor
    _, c, h, w = tensor.shape
    return torch.empty_strided(tensor.shape, (h * w * c, 1, w * c, c), dtype=tensor.dtype, device=tensor.device).copy_(tensor)


def rows(tensor):
    """The ``(H*W, C)`` matrix view of an ``hwc`` tensor: writes go to the tensor."""
    _, c, h, w = tensor.shape
    assert _is_hwc(tensor), "materialized tensors are kept channels last"
    return tensor.as_strided((h * w, c), (c, 1), tensor.storage_offset())


@dataclass
class Windows:
    """Where a spatial layer's output cells read: ``base[cell] + offsets`` are the input rows."""

    base: Any  # (H_out * W_out,) int64: the input row of each output cell's window origin
    offsets: Any  # (taps,) int64: each tap's row offset from the origin
    border: Any  # (H_out * W_out,) bool: the window reaches past the input map; None if never
    origin: tuple[Any, Any] | None  # (rows, cols) int64 of each output cell's window origin (border cells)
    taps: tuple[Any, Any]  # (dy, dx) int64 per tap
    in_hw: tuple[int, int]
    counts: Any = None  # (H_out * W_out,) float: average pooling's divisor per cell


class Tables:
    """Per-program index tables (shapes only), built on first use and shared by every engine."""

    def __init__(self, program: Program):
        self.program = program
        self.device = program.device
        self._windows: dict[str, Windows] = {}
        self._blocks: dict[int, Any] = {}

    def windows(self, node) -> Windows:
        found = self._windows.get(node.name)
        if found is None:
            found = self._windows[node.name] = _windows(self.program, node, self.device)
        return found

    def blocks(self, side: int):
        """(blocks, side * side) int64: the input rows of each ``side``-px block (cut at the border,
        its rows past it repeating the last: a copy of exactly the block's own pixels)."""
        found = self._blocks.get(side)
        if found is None:
            import torch

            h, w = self.program.by_name[self.program.input_name].shape[-2:]
            step = torch.arange(side)
            ys = (torch.arange(0, h, side)[:, None] + step).clamp(max=h - 1)
            xs = (torch.arange(0, w, side)[:, None] + step).clamp(max=w - 1)
            cells = ys[:, None, :, None] * w + xs[None, :, None, :]
            found = self._blocks[side] = cells.reshape(-1, side * side).to(self.device)
        return found


def tables_for(program: Program) -> Tables:
    found = getattr(program, "_tables", None)
    if found is None or found.device != program.device:
        found = program._tables = Tables(program)
    return found


def _windows(program: Program, node, device) -> Windows:
    import torch

    op = node.op
    in_h, in_w = program.by_name[node.inputs[0]].shape[-2:]
    out_h, out_w = node.shape[-2:]
    oy = torch.arange(out_h) * op.rows.stride - op.rows.pad
    ox = torch.arange(out_w) * op.cols.stride - op.cols.pad
    dy = torch.tensor(op.taps[0])
    dx = torch.tensor(op.taps[1])
    tap_y, tap_x = (t.reshape(-1) for t in torch.meshgrid(dy, dx, indexing="ij"))
    origin_y = oy[:, None].expand(out_h, out_w).reshape(-1)
    origin_x = ox[None, :].expand(out_h, out_w).reshape(-1)
    base = origin_y * in_w + origin_x
    reach_y = (oy < 0) | (oy + int(dy.max()) >= in_h)
    reach_x = (ox < 0) | (ox + int(dx.max()) >= in_w)
    border = (reach_y[:, None] | reach_x[None, :]).reshape(-1)
    counts = None
    if op.needs_counts:  # average pooling: its divisor for every output cell
        counts = op.counts((0, out_h, 0, out_w), (in_h, in_w)).reshape(-1).to(device)
    window = Windows(base.to(device), (tap_y * in_w + tap_x).to(device), None, None, (tap_y.to(device), tap_x.to(device)),
                     (in_h, in_w), counts)  # fmt: skip
    if bool(border.any()):
        window.border = border.to(device)
        window.origin = (origin_y.to(device), origin_x.to(device))
    return window


def gather(tensor, window: Windows, cells, pad_value: float):
    """(cells, taps, C): the window of each output cell in ``cells`` read from ``tensor``."""
    c = tensor.shape[1]
    index = window.base[cells][:, None] + window.offsets[None, :]
    fix = None
    if window.border is not None:
        edge = window.border[cells]
        if bool(edge.any()):  # windows past the border: read a cell inside, then set the padding
            ry = window.origin[0][cells][:, None] + window.taps[0][None, :]
            rx = window.origin[1][cells][:, None] + window.taps[1][None, :]
            in_h, in_w = window.in_hw
            fix = (ry < 0) | (ry >= in_h) | (rx < 0) | (rx >= in_w)
            index = ry.clamp(0, in_h - 1) * in_w + rx.clamp(0, in_w - 1)
    picked = rows(tensor).index_select(0, index.reshape(-1)).view(len(cells), -1, c)
    if fix is not None:
        picked.masked_fill_(fix.unsqueeze(-1), pad_value)
    return picked


def write_input(state_x, x_new, blocks, ids) -> None:
    """Copy the blocks ``ids`` (rows ``blocks``, see ``Tables.blocks``) of the new frame into the state's image."""
    where = blocks[ids].reshape(-1)
    rows(state_x).index_copy_(0, where, rows(hwc(x_new)).index_select(0, where))


@dataclass
class Done:
    """What an update recomputed."""

    layers: int = 0
    cells: int = 0
    whole: int = 0
    macs: float = 0.0


def update(program: Program, tables: Tables, tensors: dict[str, Any], plan: planning.Plan, *, tau: float = 0.0,
           feature_threshold: float = 0.0, scales: dict[str, float] | None = None) -> Done:  # fmt: skip
    """Bring the materialized ``tensors`` up to date with their input, which changed where ``plan``
    says (the input already written); without truncation the plan runs as planned, with it each
    layer is re-planned from the cells that actually moved before it."""
    truncating = feature_threshold > 0 and bool(scales)
    masks = dict(plan.masks) if truncating else plan.masks
    whole = set() if truncating else plan.whole
    fresh: dict[str, tuple[Any, Any]] = {}  # node -> (its dirty cells or None when whole, its new values)
    listed: dict[int, Any] = {}  # cells of each mask, by the mask's identity
    fresh[program.input_name] = (_cells(masks[program.input_name], listed, tables.device), None)
    done = Done()
    for node in program.local:
        if truncating:
            masks[node.name] = planning.node_mask(node, masks, tau)
            if masks[node.name].any() and planning.runs_whole(node, masks[node.name], whole):
                whole.add(node.name)
        mask = masks[node.name]
        source = fresh.get(node.inputs[0])
        pointwise = node.kind not in (SPATIAL, MERGE)
        if pointwise and source is None or not mask.any():
            continue
        if node.name in whole:
            cells, values = None, _whole(program, tensors, node, source)
            done.whole += 1
        else:
            cells = _cells(mask, listed, tables.device)
            values = _compute(program, tables, tensors, node, cells, source)
            done.cells += len(cells)
        done.layers += 1
        done.macs += (1.0 if cells is None else len(cells) / mask.size) * node.full_macs
        if node.name in program.materialized:
            limit = feature_threshold * scales.get(node.name, 0.0) if truncating else 0.0
            values, moved = _store(tensors, node.name, cells, values, limit)
            if moved is not None:
                masks[node.name] = moved
        fresh[node.name] = (cells, values)
    return done


def _cells(mask, listed: dict[int, Any], device):
    """The dirty cells of ``mask`` as row numbers (one list per mask object)."""
    import numpy as np
    import torch

    found = listed.get(id(mask))
    if found is None:
        found = listed[id(mask)] = torch.from_numpy(np.flatnonzero(mask.view(bool))).to(device)
    return found


def _whole(program: Program, tensors, node, source):
    """The node on its whole map (a pointwise layer on its input's fresh whole map)."""
    if node.kind not in (SPATIAL, MERGE) and source is not None and source[0] is None and source[1] is not None:
        return program.evaluate(node, {node.inputs[0]: source[1]})
    return program.evaluate(node, {name: tensors[name] for name in node.inputs})


def _compute(program: Program, tables: Tables, tensors, node, cells, source):
    """The node's new values at ``cells``, as (cells, C) rows."""
    c_out = node.shape[1]
    if node.kind == SPATIAL:
        op = node.op
        if op.pointwise and source is not None and source[0] is cells and source[1] is not None:
            return op.on_cells(source[1].view(len(cells), 1, -1))  # a 1x1 conv on its input's fresh rows: no gather
        window = tables.windows(node)
        taps = gather(tensors[node.inputs[0]], window, cells, op.pad_value)
        return op.on_cells(taps, window.counts[cells] if window.counts is not None else None)
    if node.kind == MERGE:  # its inputs' rows at its cells
        env = {name: rows(tensors[name]).index_select(0, cells).view(len(cells), -1, 1, 1) for name in node.inputs}
        return program.evaluate(node, env).view(len(cells), c_out)
    if source[0] is not cells or source[1] is None:  # on the network's input, or on a truncated input
        values = rows(tensors[node.inputs[0]]).index_select(0, cells)
    else:
        values = source[1]
    return program.evaluate(node, {node.inputs[0]: values.view(len(cells), -1, 1, 1)}).view(len(cells), c_out)


def _store(tensors, name: str, cells, values, limit: float):
    """Write ``values`` into the materialized tensor ``name``; returns (values as stored, the uint8
    mask of the cells that moved when ``limit`` > 0: only those are written; else None)."""
    import torch

    target = tensors[name]
    if cells is None:
        if limit > 0:
            moved = (values - target).abs().amax(dim=1, keepdim=True) > limit
            values = torch.where(moved, values, target)
            target.copy_(values)
            return values, moved[0, 0].cpu().numpy().view("uint8")
        if values is not target:
            if _is_hwc(values) and not any(values is t for t in tensors.values()):
                tensors[name] = values
            else:
                target.copy_(values)
        return values, None
    if limit > 0:
        old = rows(target).index_select(0, cells)
        moved = (values - old).abs().amax(dim=1) > limit
        values = torch.where(moved[:, None], values, old)
        rows(target).index_copy_(0, cells, values)
        mask = torch.zeros(target.shape[-2] * target.shape[-1], dtype=torch.bool, device=target.device)
        mask[cells[moved]] = True
        return values, mask.view(target.shape[-2:]).cpu().numpy().view("uint8")
    rows(target).index_copy_(0, cells, values)
    return values, None
