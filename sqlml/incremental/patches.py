"""The exact update-patch rules of Krypton, per axis and per spatial layer.

A *box* is a half-open rectangle ``(y0, y1, x0, x1)`` of a feature map. When the
cells of an input box change, a layer with kernel extent ``k`` (dilation folded in:
``d*(k-1)+1``), stride ``s`` and leading padding ``p`` changes exactly the outputs
whose window touches the box (per axis)::

    o0 = max(0, ceil((a + p - k + 1) / s))      o1 = min(n_out, floor((b - 1 + p) / s) + 1)

and recomputing outputs ``[o0, o1)`` reads the input slice ``[o0*s - p, (o1-1)*s - p + k)``
(the read-in context), which may reach into the padding. ``SpatialOp.apply`` runs the
layer without padding on read-in windows that were padded by hand (zeros for
convolutions, -inf for max pooling, sum/count for average pooling), so the result is
the same arithmetic the full layer does, ``ceil_mode`` overhang included (occlusion maps
use boxes; the video engine applies the same rule per cell, see ``masks`` and ``cells``,
through ``on_cells``).

The projective-field threshold ``tau`` (0 < tau < 1) caps an output box's side at
``round(tau * n_out)``, keeping the centre: the fringe cells stay stale (approximate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open


def ceil_div(n: int, d: int) -> int:
    return -((-n) // d)


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a conv/pool window: extent, stride, leading padding."""

    extent: int  # d * (k - 1) + 1
    stride: int
    pad: int

    def affected(self, a: int, b: int, n_out: int) -> tuple[int, int]:
        """Outputs ``[o0, o1)`` changed by input cells ``[a, b)``; empty when o0 >= o1."""
        o0 = max(0, ceil_div(a + self.pad - self.extent + 1, self.stride))
        o1 = min(n_out, (b - 1 + self.pad) // self.stride + 1)
        return o0, o1

    def read_in(self, o0: int, o1: int) -> tuple[int, int]:
        """Input cells ``[i0, i1)`` that outputs ``[o0, o1)`` read (may pass the borders)."""
        return o0 * self.stride - self.pad, (o1 - 1) * self.stride - self.pad + self.extent


def cap(o0: int, o1: int, n_out: int, tau: float) -> tuple[int, int]:
    """Krypton's projective-field threshold: keep at most ``round(tau*n_out)`` centre cells."""
    if not 0.0 < tau < 1.0:
        return o0, o1
    limit = max(1, round(tau * n_out))
    width = o1 - o0
    if width <= limit:
        return o0, o1
    o0 += (width - limit) // 2
    return o0, o0 + limit


def shift_inside(o0: int, width: int, n: int) -> tuple[int, int]:
    """A window of ``width`` cells starting near ``o0``, moved back inside ``[0, n)``."""
    width = min(width, n)
    o0 = min(max(o0, 0), n - width)
    return o0, o0 + width


def box_area(box: Box) -> int:
    return max(0, box[1] - box[0]) * max(0, box[3] - box[2])


def union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


# -- recomputing output boxes from their read-in windows ------------------------------


class SpatialOp:
    """A conv or pooling layer that can recompute output boxes from their read-in windows."""

    kind = "spatial"
    pad_value = 0.0
    needs_counts = False  # whether ``on_cells`` divides by a count per cell (average pooling)

    def __init__(self, rows: Axis, cols: Axis, taps=None):
        self.rows = rows
        self.cols = cols
        #: a 1x1 window, stride 1, no padding: each output cell reads its own input cell only
        self.pointwise = all(a.extent == 1 and a.stride == 1 and a.pad == 0 for a in (rows, cols))
        #: offsets inside the window that the layer reads, per axis (dilation leaves gaps)
        self.taps = taps or (list(range(rows.extent)), list(range(cols.extent)))

    def affected(self, box: Box, out_hw: tuple[int, int]) -> Box | None:
        y0, y1 = self.rows.affected(box[0], box[1], out_hw[0])
        x0, x1 = self.cols.affected(box[2], box[3], out_hw[1])
        if y0 >= y1 or x0 >= x1:
            return None
        return (y0, y1, x0, x1)

    def read_in(self, out_box: Box) -> Box:
        return (*self.rows.read_in(out_box[0], out_box[1]), *self.cols.read_in(out_box[2], out_box[3]))

    def apply(self, xs, out_boxes: list[Box], in_hw):
        """Run the layer with no padding on read-in slices ``xs`` (one per box, same size)."""
        raise NotImplementedError

    def on_cells(self, taps, counts=None):
        """The layer's output at a list of cells from their windows ``taps`` (cells, taps, C):
        (cells, C') rows. ``counts`` is average pooling's divisor per cell."""
        raise NotImplementedError

    def macs_per_output(self, in_channels: int, out_channels: int) -> int:
        raise NotImplementedError


class ConvOp(SpatialOp):
    def __init__(self, rows: Axis, cols: Axis, weight, bias, stride, dilation, groups):
        kh, kw = weight.shape[-2:]
        super().__init__(rows, cols, ([i * dilation[0] for i in range(kh)], [i * dilation[1] for i in range(kw)]))
        self.weight, self.bias = weight, bias
        self.stride, self.dilation, self.groups = stride, dilation, groups

    def apply(self, xs, out_boxes, in_hw):
        import torch.nn.functional as F

        return F.conv2d(xs, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def on_cells(self, taps, counts=None):
        """im2col: one matrix product of the windows with the weights (taps major, channels minor)."""
        import torch.nn.functional as F

        n, k, c = taps.shape
        out_channels = self.weight.shape[0]
        if self.groups == 1:
            matrix = self.weight.permute(0, 2, 3, 1).reshape(out_channels, k * c)
            return F.linear(taps.reshape(n, k * c), matrix, self.bias)
        kh, kw = self.weight.shape[-2:]
        windows = taps.view(n, kh, kw, c).permute(0, 3, 1, 2)  # taps already spaced by the dilation
        return F.conv2d(windows, self.weight, self.bias, 1, 0, 1, self.groups).view(n, out_channels)

    def macs_per_output(self, in_channels, out_channels):
        kh, kw = self.weight.shape[-2:]
        return int(self.weight.shape[1] * kh * kw * out_channels)


class MaxPoolOp(SpatialOp):
    pad_value = -math.inf

    def __init__(self, rows: Axis, cols: Axis, kernel, stride, dilation):
        taps = ([i * dilation[0] for i in range(kernel[0])], [i * dilation[1] for i in range(kernel[1])])
        super().__init__(rows, cols, taps)
        self.kernel, self.stride, self.dilation = kernel, stride, dilation

    def apply(self, xs, out_boxes, in_hw):
        import torch
        import torch.nn.functional as F

        (kh, kw), (sh, sw) = self.kernel, self.stride
        if (kh, kw) != (sh, sw) or self.dilation != (1, 1) or kh * kw > 9:
            return F.max_pool2d(xs, self.kernel, self.stride, 0, self.dilation)
        # non-overlapping windows: the maximum of k*k strided views (the same values; on CPU
        # several times faster than max_pool2d, whose kernel also tracks indices)
        h, w = xs.shape[-2] // kh * kh, xs.shape[-1] // kw * kw
        taps = [xs[..., i:h:kh, j:w:kw] for i in range(kh) for j in range(kw)]
        out = torch.maximum(taps[0], taps[1]) if len(taps) > 1 else taps[0].clone()
        for tap in taps[2:]:
            torch.maximum(out, tap, out=out)
        return out

    def on_cells(self, taps, counts=None):
        return taps.amax(dim=1)

    def macs_per_output(self, in_channels, out_channels):
        return int(out_channels * self.kernel[0] * self.kernel[1])


class AvgPoolOp(SpatialOp):
    """Average pooling as window sum / window count, the count following PyTorch exactly.

    PyTorch divides by the cells of the window inside ``[-p, n + p)`` when padding
    counts (``count_include_pad``) and inside ``[0, n)`` otherwise; windows that
    ``ceil_mode`` lets run past ``n + p`` count only up to it.
    """

    def __init__(self, rows: Axis, cols: Axis, kernel, stride, pad, include_pad, divisor):
        super().__init__(rows, cols)
        self.kernel, self.stride, self.pad = kernel, stride, pad
        self.include_pad, self.divisor = include_pad, divisor
        self.needs_counts = not divisor

    def apply(self, xs, out_boxes, in_hw):
        import torch
        import torch.nn.functional as F

        sums = F.avg_pool2d(xs, self.kernel, self.stride, 0, divisor_override=1)
        if self.divisor:
            return sums / self.divisor
        counts = torch.stack([self._counts(box, in_hw, xs) for box in out_boxes])
        return sums / counts.unsqueeze(1)

    def on_cells(self, taps, counts=None):
        sums = taps.sum(dim=1)
        return sums / self.divisor if self.divisor else sums / counts[:, None]

    def counts(self, out_box: Box, in_hw):
        """The divisor of every output cell in ``out_box``: (rows, cols) float32."""
        import torch

        return self._counts(out_box, in_hw, torch.zeros(0))

    def _counts(self, out_box: Box, in_hw, like):
        import torch

        def axis(o0, o1, k, s, p, n):
            start = torch.arange(o0, o1, dtype=like.dtype, device=like.device) * s - p
            lo, hi = (-p, n + p) if self.include_pad else (0, n)
            return (torch.clamp(start + k, max=hi) - torch.clamp(start, min=lo)).clamp(min=0)

        rows = axis(out_box[0], out_box[1], self.kernel[0], self.stride[0], self.pad[0], in_hw[0])
        cols = axis(out_box[2], out_box[3], self.kernel[1], self.stride[1], self.pad[1], in_hw[1])
        return (rows[:, None] * cols[None, :]).clamp(min=1)  # boxes may run past the map: cropped later

    def macs_per_output(self, in_channels, out_channels):
        return int(out_channels * self.kernel[0] * self.kernel[1])


def padded_slice(x, box: Box, value: float):
    """``x[..., y0:y1, x0:x1]`` where cells outside the map read as ``value``."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    y0, y1, x0, x1 = box
    inner = x[..., max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    pads = (max(0, -x0), max(0, x1 - w), max(0, -y0), max(0, y1 - h))
    if any(pads):
        return F.pad(inner, pads, value=value)
    return inner


# -- building ops from torch modules ----------------------------------------------------


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_op(module) -> ConvOp:
    """A ``torch.nn.Conv2d`` (zero padding, ints or 'same'/'valid') as a ConvOp."""
    kh, kw = module.kernel_size
    sh, sw = module.stride
    dh, dw = module.dilation
    if isinstance(module.padding, str):
        if module.padding == "valid":
            ph = pw = 0
        else:  # 'same': PyTorch puts the odd cell at the end
            ph, pw = (dh * (kh - 1)) // 2, (dw * (kw - 1)) // 2
    else:
        ph, pw = module.padding
    rows = Axis(dh * (kh - 1) + 1, sh, ph)
    cols = Axis(dw * (kw - 1) + 1, sw, pw)
    return ConvOp(rows, cols, module.weight, module.bias, (sh, sw), (dh, dw), module.groups)


def max_pool_op(module) -> MaxPoolOp:
    k = _pair(module.kernel_size)
    s = _pair(module.stride if module.stride is not None else module.kernel_size)
    p = _pair(module.padding)
    d = _pair(module.dilation)
    rows = Axis(d[0] * (k[0] - 1) + 1, s[0], p[0])
    cols = Axis(d[1] * (k[1] - 1) + 1, s[1], p[1])
    return MaxPoolOp(rows, cols, k, s, d)


def avg_pool_op(module) -> AvgPoolOp:
    k = _pair(module.kernel_size)
    s = _pair(module.stride if module.stride is not None else module.kernel_size)
    p = _pair(module.padding)
    rows, cols = Axis(k[0], s[0], p[0]), Axis(k[1], s[1], p[1])
    return AvgPoolOp(rows, cols, k, s, p, module.count_include_pad, module.divisor_override)
