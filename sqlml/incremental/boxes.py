"""Updating a frame's materialized state box by box: Krypton's patch rule on a few boxes per layer.

A frame's changed pixels are clustered into a few boxes (one per moving object,
roughly). Each box is carried through the local layers by the exact update-patch
rule of :mod:`sqlml.incremental.patches`; boxes that grow into each other merge when
one bigger box costs less than two (an operator call has a fixed cost), and
``tau`` caps every box on its own (Krypton's projective-field threshold, per object
rather than per frame). Then each layer recomputes each of its boxes with ONE dense
call on the box's read-in window, sliced from the layer's materialized (already
updated) input, and writes the result back in place; a layer whose boxes cover most
of its map runs whole. Planning is integer arithmetic on a handful of boxes, so the
cost model can price an update before any tensor work.

With ``feature_threshold`` > 0, a materialized layer keeps only the cells whose value
moved by more than that fraction of the layer's spread (the rest keep their old
values), and the boxes passed on shrink to the cells that moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlml.incremental import patches
from sqlml.incremental.graph import MERGE, SPATIAL, Program
from sqlml.incremental.patches import Box, box_area

#: the most boxes a layer keeps; beyond it the cheapest pairs merge
MAX_BOXES = 8
#: a layer whose boxes cost this share of the whole layer runs whole (small crops run at fewer MACs/s)
WHOLE_SHARE = 0.6


# -- finding the change ------------------------------------------------------------------


@dataclass
class Change:
    """Where a frame differs from the state's image: a 0/1 map, its share, the drift."""

    changed: Any  # (H, W) float32 numpy array, 1.0 where a pixel changed beyond the threshold
    fraction: float  # share of pixels changed
    drift: float  # share of pixels differing by more than half the threshold


def detect(new, old, threshold=0.0, drift: bool = True) -> Change:
    """Pixels where ``new`` and ``old`` (1, C, H, W) differ by more than ``threshold`` in any channel.

    ``threshold`` is one number or one per channel (input-tensor units). On CPU float32
    this is a few OpenCV passes (channels-last frames, as decoded, are read in place);
    elsewhere torch does it.
    """
    import numpy as np

    channels = new.shape[1]
    per_channel = not isinstance(threshold, (int, float))
    limit = 1.0 if per_channel else float(threshold)
    scales = [1.0 / float(t) for t in threshold] if per_channel else None
    if new.device.type == "cpu" and new.dtype == old.dtype and str(new.dtype) == "torch.float32":
        import cv2

        hwc_new, hwc_old = new[0].permute(1, 2, 0), old[0].permute(1, 2, 0)
        if 1 < channels <= 4 and hwc_new.is_contiguous() and hwc_old.is_contiguous():
            # channels last (frames decoded to HWC are): one pass over interleaved pixels, no copies
            d = cv2.absdiff(hwc_new.numpy(), hwc_old.numpy())
            if scales is not None:
                d = cv2.multiply(d, tuple(scales[c % len(scales)] for c in range(channels)) + (0.0,) * (4 - channels))
            ones = np.ones((1, channels), np.float32)  # channels over the limit, summed per pixel

            def over(level):
                return cv2.transform(cv2.threshold(d, level, 1.0, cv2.THRESH_BINARY)[1], ones)

            changed = cv2.threshold(over(limit), 0.5, 1.0, cv2.THRESH_BINARY)[1]
            count = cv2.countNonZero(changed)
            loose = cv2.countNonZero(over(limit / 2)) if drift and limit > 0 else count
        else:
            a, b = new[0].contiguous().numpy(), old[0].contiguous().numpy()
            level = None
            for c in range(channels):
                d = cv2.absdiff(a[c], b[c])
                if scales is not None:
                    d = cv2.multiply(d, scales[c % len(scales)])
                level = d if level is None else cv2.max(level, d, dst=level)
            changed = cv2.threshold(level, limit, 1.0, cv2.THRESH_BINARY)[1]
            count = cv2.countNonZero(changed)
            loose = cv2.countNonZero(cv2.threshold(level, limit / 2, 1.0, cv2.THRESH_BINARY)[1]) if drift and limit > 0 else count
    else:
        import torch

        diff = torch.sub(new[0], old[0]).abs_()
        if scales is not None:
            diff.mul_(torch.as_tensor(scales, dtype=diff.dtype, device=diff.device).view(-1, 1, 1))
        level = diff.amax(dim=0)
        mask = level > limit
        count = int(mask.sum())
        loose = int((level > limit / 2).sum()) if drift and limit > 0 else count
        changed = mask.to(torch.float32).cpu().numpy()
    cells = changed.size
    return Change(np.ascontiguousarray(changed, dtype=np.float32), count / cells, loose / cells)


def sample(new, old, threshold=0.0, stride: int = 4) -> Change:
    """``detect`` on every ``stride``-th row and column only (1/16 of the pixels at 4): cheap.

    ``changed`` is the (H/stride, W/stride) map of the sampled pixels. A first look:
    it can miss a change that falls between samples, so it only ever decides *for*
    full inference (most of the frame changed, or an update would not pay).
    """
    import numpy as np
    import torch

    diff = (new[0, :, ::stride, ::stride] - old[0, :, ::stride, ::stride]).abs_()
    if isinstance(threshold, (int, float)):
        limit = float(threshold)
    else:
        limit = 1.0
        diff.div_(torch.as_tensor(threshold, dtype=diff.dtype, device=diff.device).view(-1, 1, 1))
    mask = diff.amax(dim=0) > limit
    fraction = float(mask.float().mean())
    return Change(np.ascontiguousarray(mask.cpu().numpy(), dtype=np.float32), fraction, fraction)


def sampled_boxes(change: Change, stride: int, height: int, width: int) -> list[Box]:
    """Boxes of a ``sample``'s changed pixels, each sample standing for its stride x stride block."""
    cell = max(1, round(block_size(height, width) / stride))
    found = change_boxes(change.changed, cell=cell)
    return [(y0 * stride, min(height, y1 * stride), x0 * stride, min(width, x1 * stride)) for y0, y1, x0, x1 in found]


def block_size(height: int, width: int) -> int:
    """Blocks of about 1/48 of the shorter side (8 px at 360, 5 at 224), at least 2."""
    return max(2, round(min(height, width) / 48))


def change_boxes(changed, cell: int | None = None, limit: int = MAX_BOXES) -> list[Box]:
    """Boxes covering every changed pixel of ``changed`` (H, W, 0/1 float32 numpy): one per cluster.

    Changed pixels are gathered into blocks of ``cell`` pixels, blocks touching each
    other form a cluster (8-connected); while there are more than ``limit`` clusters,
    clusters within 1, 2, 4, ... blocks of each other join. Each box is then shrunk to
    the exact extent of the changed pixels inside it.
    """
    import cv2
    import numpy as np

    h, w = changed.shape
    cell = cell or block_size(h, w)
    gh, gw = -(-h // cell), -(-w // cell)
    padded = changed
    if (gh * cell, gw * cell) != (h, w):
        padded = cv2.copyMakeBorder(changed, 0, gh * cell - h, 0, gw * cell - w, cv2.BORDER_CONSTANT, value=0)
    grid = (cv2.resize(padded, (gw, gh), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    if not grid.any():
        return []
    reach = 0
    while True:
        joined = grid if reach == 0 else cv2.dilate(grid, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        if n - 1 <= limit or reach >= max(gh, gw):
            break
        reach = max(1, 2 * reach)
    if reach == 0:
        blocks = [(int(y), int(y + bh), int(x), int(x + bw)) for x, y, bw, bh, _ in stats[1:]]
    else:  # the clusters' own blocks, without the dilation's margin
        ys, xs = np.nonzero(grid)
        owner = labels[ys, xs]
        blocks = []
        for k in range(1, n):
            mine = owner == k
            if mine.any():
                blocks.append((int(ys[mine].min()), int(ys[mine].max()) + 1, int(xs[mine].min()), int(xs[mine].max()) + 1))
    boxes = []
    for by0, by1, bx0, bx1 in blocks:
        y0, y1, x0, x1 = by0 * cell, min(h, by1 * cell), bx0 * cell, min(w, bx1 * cell)
        crop = changed[y0:y1, x0:x1]
        rows = np.flatnonzero(crop.max(axis=1) > 0)
        cols = np.flatnonzero(crop.max(axis=0) > 0)
        if rows.size:
            boxes.append((y0 + int(rows[0]), y0 + int(rows[-1]) + 1, x0 + int(cols[0]), x0 + int(cols[-1]) + 1))
    return boxes


# -- planning ----------------------------------------------------------------------------


def merge(boxes: list[Box], cell: float, call: float, limit: int = MAX_BOXES) -> list[Box]:
    """Merge pairs of boxes while one box costs no more than two (area x ``cell`` + ``call``
    each), and while there are more than ``limit``."""
    boxes = list(dict.fromkeys(boxes))
    while len(boxes) > 1:
        best, pair = None, None
        areas = [(b[1] - b[0]) * (b[3] - b[2]) for b in boxes]
        for i in range(len(boxes) - 1):
            ay0, ay1, ax0, ax1 = boxes[i]
            for j in range(i + 1, len(boxes)):
                by0, by1, bx0, bx1 = boxes[j]
                y0, y1 = (ay0 if ay0 < by0 else by0), (ay1 if ay1 > by1 else by1)
                x0, x1 = (ax0 if ax0 < bx0 else bx0), (ax1 if ax1 > bx1 else bx1)
                gain = (areas[i] + areas[j] - (y1 - y0) * (x1 - x0)) * cell + call
                if best is None or gain > best:
                    best, pair = gain, (i, j, (y0, y1, x0, x1))
        if best < 0 and len(boxes) <= limit:
            break
        i, j, u = pair
        boxes[i] = u
        del boxes[j]
    return boxes


#: elementwise passes over a materialized box when truncating features (sub, abs, max, compare, where, copy)
TRUNCATE_PASSES = 6


@dataclass
class Prices:
    """What recomputing costs on each local node, in one unit (seconds, or multiply-adds).

    ``whole``: the layer on its whole map; ``cell``: one output cell of it (with
    ``store``, what keeping only the cells that moved adds per cell, when truncating);
    ``tail_cell`` and ``tail_call``: what one more cell, or one more box, at this node
    costs from here to the last local layer (a box merged here stays merged downstream,
    and every later layer pays its area and its call).
    """

    whole: dict[str, float]
    cell: dict[str, float]
    tail_cell: dict[str, float]
    tail_call: dict[str, float]
    call: float
    store: dict[str, float] = field(default_factory=dict)


def prices(program: Program, costs: dict[str, float] | None = None, call: float = 0.0,
           truncating: bool = False) -> Prices:  # fmt: skip
    """Prices from each node's whole-map cost (``costs``, default its MACs) and one call's cost.

    With ``truncating``, an element pass costs what the cheapest pointwise layer costs per
    element (measured when ``costs`` are), and each materialized cell pays ``TRUNCATE_PASSES``.
    """
    whole = {n.name: (costs[n.name] if costs else n.full_macs) for n in program.local}
    cell, tail_cell, tail_call, store = {}, {}, {}, {}
    later = 0.0
    for k, node in enumerate(reversed(program.local)):
        area = max(1, node.shape[-2] * node.shape[-1])
        later += whole[node.name]
        cell[node.name] = whole[node.name] / area
        tail_cell[node.name] = later / area  # a later map's cells per cell here: its area / this area
        tail_call[node.name] = (k + 1) * call
    if truncating:
        numel = {n.name: max(1, area_of(n) * n.shape[-3]) for n in program.local}
        pointwise = [n.name for n in program.local if n.kind not in (SPATIAL, MERGE)] or list(numel)
        element = min(whole[name] / numel[name] for name in pointwise)
        for node in program.local:
            if node.name in program.materialized:
                store[node.name] = TRUNCATE_PASSES * element * node.shape[-3]
                cell[node.name] += store[node.name]
                tail_cell[node.name] += store[node.name]
    return Prices(whole, cell, tail_cell, tail_call, call, store)


def area_of(node) -> int:
    return node.shape[-2] * node.shape[-1]


def node_boxes(node, boxes: dict[str, list[Box]], tau: float, price: Prices) -> list[Box]:
    """The boxes of ``node``'s output that its inputs' boxes reach (Krypton's rule, per box)."""
    h, w = node.shape[-2:]
    if node.kind == SPATIAL:
        out = []
        for box in boxes[node.inputs[0]]:
            o = node.op.affected(box, (h, w))
            if o is None:  # the change falls between windows (stride > kernel): nothing to do
                continue
            if 0.0 < tau < 1.0:
                o = (*patches.cap(o[0], o[1], h, tau), *patches.cap(o[2], o[3], w, tau))
            out.append(o)
    elif node.kind == MERGE:
        out = [b for name in node.inputs for b in boxes[name]]
    else:
        return boxes[node.inputs[0]]  # pointwise
    return merge(out, price.tail_cell[node.name], price.tail_call[node.name])


def runs_whole(node, out: list[Box], price: Prices) -> bool:
    """Whether recomputing ``out`` box by box would cost most of the whole layer."""
    boxed = sum(box_area(b) for b in out) * price.cell[node.name] + len(out) * price.call
    return boxed >= WHOLE_SHARE * (price.whole[node.name] + price.call)


@dataclass
class BoxPlan:
    """Boxes of every local node, the layers run whole, and the work (None boxes: over budget)."""

    boxes: dict[str, list[Box]] | None
    whole: set[str] = field(default_factory=set)
    macs: float = 0.0  # multiply-adds of the boxes (and whole layers)
    arithmetic: float = 0.0  # their price (the unit of ``Prices``) without the calls
    calls: int = 0  # operator calls: one per box per layer
    layers: int = 0  # layers with anything to recompute

    @property
    def complete(self) -> bool:
        return self.boxes is not None

    def cost(self, price: Prices) -> float:
        return self.arithmetic + self.calls * price.call

    def add(self, node, out: list[Box], whole: bool, price: Prices) -> None:
        self.layers += 1
        if whole:
            self.whole.add(node.name)
            self.macs += node.full_macs
            self.arithmetic += price.whole[node.name] + price.store.get(node.name, 0.0) * area_of(node)
            self.calls += 1
            return
        area = sum(box_area(b) for b in out)
        self.macs += area * node.full_macs / max(1, node.shape[-2] * node.shape[-1])
        self.arithmetic += area * price.cell[node.name]
        self.calls += len(out)


def plan(program: Program, boxes: list[Box], tau: float = 0.0, price: Prices | None = None,
         budget: float | None = None) -> BoxPlan:  # fmt: skip
    """Boxes and work of an update whose input changed in ``boxes``.

    Planning stops (boxes None) once the cost passes ``budget``: a full pass is then
    cheaper and the rest of the plan would be wasted time.
    """
    price = price or prices(program)
    found = {program.input_name: list(boxes)}
    result = BoxPlan(found)
    for node in program.local:
        out = node_boxes(node, found, tau, price)
        found[node.name] = out
        if not out:
            continue
        pointwise = node.kind != SPATIAL and node.kind != MERGE
        whole = node.inputs[0] in result.whole if pointwise else runs_whole(node, out, price)
        result.add(node, out, whole, price)
        if budget is not None and result.cost(price) > budget:
            result.boxes = None
            return result
    return result


# -- running -----------------------------------------------------------------------------


def update(program: Program, tensors: dict[str, Any], x_new, boxes: list[Box], *, changed=None,
           tau: float = 0.0, price: Prices | None = None, planned: BoxPlan | None = None,
           feature_threshold: float = 0.0, scales: dict[str, float] | None = None) -> BoxPlan:  # fmt: skip
    """Bring ``tensors`` (the materialized state) up to ``x_new``, which differs inside ``boxes``.

    ``changed`` (H, W 0/1 numpy) marks the pixels that count as changed: only those
    enter the state image (with a threshold the state never moves by less than it);
    None copies the boxes whole (exact mode). ``planned`` is the plan already priced
    (recomputed here when feature truncation shrinks boxes on the way). Returns the
    work done, as a plan.
    """
    name = program.input_name
    price = price or prices(program)
    _write_input(tensors[name], x_new, boxes, changed)
    truncating = feature_threshold > 0 and bool(scales)
    if planned is None or not planned.complete or truncating:
        planned = None
    found = {name: list(boxes)}
    done = BoxPlan(found)
    fresh: dict[str, tuple[list[Box], list[Any]] | None] = {}
    for node in program.local:
        out = planned.boxes[node.name] if planned else node_boxes(node, found, tau, price)
        found[node.name] = out
        source = fresh.get(node.inputs[0])
        pointwise = node.kind != SPATIAL and node.kind != MERGE
        if not out or (pointwise and source is None):
            fresh[node.name] = None
            continue
        if planned:
            whole = node.name in planned.whole
        else:
            whole = node.inputs[0] in done.whole if pointwise else runs_whole(node, out, price)
        h, w = node.shape[-2:]
        done.add(node, out, whole, price)
        if pointwise:  # on its input's fresh values, where they are
            where, values = source[0], [program.evaluate(node, {node.inputs[0]: v}) for v in source[1]]
        elif whole and isinstance(node.op, patches.MaxPoolOp):  # its own max is faster than the module's
            inp = tensors[node.inputs[0]]
            read = patches.padded_slice(inp, node.op.read_in((0, h, 0, w)), node.op.pad_value)
            where, values = [(0, h, 0, w)], [node.op.apply(read, [(0, h, 0, w)], inp.shape[-2:])]
        elif whole:
            env = {i: tensors[i] for i in node.inputs}
            where, values = [(0, h, 0, w)], [program.evaluate(node, env)]
        elif node.kind == SPATIAL:
            inp = tensors[node.inputs[0]]
            in_hw = inp.shape[-2:]
            where = out
            values = [node.op.apply(patches.padded_slice(inp, node.op.read_in(b), node.op.pad_value), [b], in_hw) for b in out]
        else:  # merge: the inputs' windows at each box
            where = out
            values = [program.evaluate(node, {i: tensors[i][..., b[0] : b[1], b[2] : b[3]] for i in node.inputs}) for b in out]
        if node.name in program.materialized:
            limit = feature_threshold * scales.get(node.name, 0.0) if truncating else 0.0
            moved = _store(tensors, node, where, values, (h, w), limit)
            if moved is not None:
                found[node.name] = moved
        fresh[node.name] = (where, values)
    return done


def _write_input(state_x, x_new, boxes: list[Box], changed) -> None:
    import torch

    for y0, y1, x0, x1 in boxes:
        target = state_x[..., y0:y1, x0:x1]
        source = x_new[..., y0:y1, x0:x1]
        if changed is None:
            target.copy_(source)
        else:
            keep = torch.from_numpy(changed[y0:y1, x0:x1]).to(device=target.device) > 0
            target.copy_(torch.where(keep, source, target))


def _store(tensors, node, where, values, hw, limit: float):
    """Write ``values`` at ``where`` into the node's materialized tensor (a whole map replaces it).

    With ``limit`` > 0 only cells that moved by more than it are written; returns the
    boxes of the cells that moved (None without a limit).
    """
    import torch

    target = tensors[node.name]
    whole = len(where) == 1 and where[0] == (0, hw[0], 0, hw[1])
    if limit <= 0:
        if whole:
            if values[0] is target:
                return None
            if any(values[0] is t for t in tensors.values()):  # an identity: do not alias two states
                target.copy_(values[0])
            else:
                tensors[node.name] = values[0]
            return None
        for (y0, y1, x0, x1), v in zip(where, values, strict=True):
            target[..., y0:y1, x0:x1] = v
        return None
    moved_boxes = []
    for k, ((y0, y1, x0, x1), v) in enumerate(zip(where, values, strict=True)):
        old = target[..., y0:y1, x0:x1]
        moved = (v - old).abs().amax(dim=1, keepdim=True) > limit
        merged = torch.where(moved, v, old)
        values[k] = merged
        old.copy_(merged)
        if whole:
            moved_boxes += change_boxes(moved[0, 0].to(torch.float32).cpu().numpy())
            continue
        rows = moved[0, 0].any(dim=1).nonzero()
        if rows.numel():
            cols = moved[0, 0].any(dim=0).nonzero()
            moved_boxes.append((y0 + int(rows[0]), y0 + int(rows[-1]) + 1, x0 + int(cols[0]), x0 + int(cols[-1]) + 1))
    return moved_boxes
