"""Where a frame changed: noise-robust block scores against the state's image.

A frame is cut into square *blocks* (``block_size``: 8 px at 360 lines, 5 at 224).
A block's *score* is its mean absolute difference from the image the materialized
state was computed from, over its pixels and channels, in units of the threshold
(1.0 = the threshold). Comparing with the state's image, not with the previous
frame, makes the threshold apply to change *accumulated* since the block was last
recomputed: slow drift adds up until it crosses it, so it never grows unbounded.

With a threshold, a block is recomputed when

- its score is over 1 (its mean change passed the threshold) and a neighbouring
  block's is too, or its own is over ``ISOLATED`` (an isolated block of small change,
  typically codec noise or a flickering leaf, waits until it adds up to twice the
  threshold); or
- its score is over ``FRINGE`` and it touches such a block (the fringe of a moving
  object, whose partial coverage keeps its mean under the threshold).

So after every frame each block of the state's image differs from the real frame by
at most the threshold on average (twice it for a block whose neighbours are
unchanged). Threshold 0 is exact: every block with any changed pixel is recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: score (in thresholds) an isolated block must pass on its own
ISOLATED = 2.0
#: score (in thresholds) over which a block next to a recomputed one is recomputed too
FRINGE = 1.0


@dataclass
class Change:
    """The blocks to recompute (``blocks``: (rows, cols) bool numpy) and what they say."""

    blocks: Any
    block: int  # side of a block in pixels
    fraction: float  # share of blocks to recompute
    drift: float  # share of blocks whose score is over half the threshold (all changed blocks when exact)
    scores: Any = None  # (rows, cols) float numpy: each block's score, in thresholds

    def widened(self, level: float) -> Change:
        """The same change with every block scoring over ``level`` recomputed too (a drift sweep)."""
        blocks = self.blocks | (self.scores > level)
        return Change(blocks, self.block, float(blocks.mean()), self.drift, self.scores)

    def pixels(self, height: int, width: int):
        """The (height, width) uint8 numpy mask (1: in a block to recompute) of the pixels."""
        import cv2
        import numpy as np

        b = self.block
        rows, cols = self.blocks.shape
        grown = cv2.resize(self.blocks.view(np.uint8), (cols * b, rows * b), interpolation=cv2.INTER_NEAREST)
        return np.ascontiguousarray(grown[:height, :width])


def block_size(height: int, width: int) -> int:
    """Blocks of about 1/45 of the shorter side (8 px at 360, 5 at 224), at least 2."""
    return max(2, round(min(height, width) / 45))


def exact_threshold(threshold) -> bool:
    values = [threshold] if isinstance(threshold, (int, float)) else list(threshold)
    return all(float(t) == 0.0 for t in values)


def detect(new, old, threshold=0.0, block: int | None = None) -> Change:
    """The blocks of ``new`` to recompute against ``old`` (the state's image).

    Either input tensors (1, C, H, W), ``threshold`` in input-tensor units, one number or
    one per channel; or the frames' pixels, (H, W, C) uint8 numpy arrays, ``threshold`` in
    pixel levels (the same test, far less memory to read). 0 is exact.
    """
    import numpy as np

    pixels = isinstance(new, np.ndarray)
    h, w = new.shape[:2] if pixels else new.shape[-2:]
    block = block or block_size(h, w)
    exact = exact_threshold(threshold)
    if pixels:
        score = _scores_pixels(new, old, _scales(threshold, new.shape[2] if new.ndim == 3 else 1, exact), block)
    else:
        score = _scores(new, old, threshold, block, exact)
    if exact:
        flagged = score > 0
        return Change(flagged, block, float(flagged.mean()), float(flagged.mean()), score)
    strong = score > 1.0
    neighbours = _count_neighbours(strong)
    kept = strong & ((neighbours > 0) | (score > ISOLATED))
    flagged = kept | ((score > FRINGE) & (_count_neighbours(kept) > 0))
    return Change(flagged, block, float(flagged.mean()), float(np.mean(score > 0.5)), score)


def _count_neighbours(mask):
    """How many of each cell's 8 neighbours are set (uint8 counts)."""
    import cv2
    import numpy as np

    kernel = np.ones((3, 3), np.float32)
    kernel[1, 1] = 0.0
    return cv2.filter2D(mask.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)


def _scores(new, old, threshold, block: int, exact: bool):
    """Per-block mean |new - old| over pixels and channels, in thresholds (raw when exact)."""
    import numpy as np

    channels, h, w = new.shape[1:]
    scales = _scales(threshold, channels, exact)
    rows, cols = -(-h // block), -(-w // block)
    if new.device.type == "cpu" and str(new.dtype) == "torch.float32" and new.dtype == old.dtype:
        hwc_new, hwc_old = new[0].permute(1, 2, 0), old[0].permute(1, 2, 0)
        if 1 <= channels <= 4 and hwc_new.is_contiguous() and hwc_old.is_contiguous():
            return _scores_cv2(hwc_new.numpy(), hwc_old.numpy(), scales, block, rows, cols)
    import torch
    import torch.nn.functional as F

    diff = torch.sub(new[0], old[0]).abs_()
    # ceil_mode windows past the border average over the cells inside: each block's own mean
    means = F.avg_pool2d(diff[None], block, block, ceil_mode=True)[0]
    means = means * torch.as_tensor(scales, dtype=means.dtype, device=means.device).view(-1, 1, 1)
    return np.ascontiguousarray(means.mean(dim=0).float().cpu().numpy())


def _scores_cv2(a, b, scales, block: int, rows: int, cols: int):
    """``_scores`` for channels-last CPU frames, read in place: one difference, one area resize."""
    import cv2
    import numpy as np

    h, w, channels = a.shape
    d = cv2.absdiff(a, b).reshape(h, w, channels)
    full_rows, full_cols = h // block, w // block
    means = np.zeros((rows, cols, channels), np.float32)
    if full_rows and full_cols:  # whole blocks: an area resize averages each exactly
        inner = cv2.resize(d[: full_rows * block, : full_cols * block], (full_cols, full_rows), interpolation=cv2.INTER_AREA)
        means[:full_rows, :full_cols] = inner.reshape(full_rows, full_cols, channels)
    if full_cols < cols:  # the partial blocks of the right edge, the bottom edge and the corner
        right = d[: full_rows * block, full_cols * block :]
        means[:full_rows, full_cols] = right.reshape(full_rows, block, -1, channels).mean(axis=(1, 2))
    if full_rows < rows:
        bottom = d[full_rows * block :]
        edge = bottom[:, : full_cols * block].reshape(h - full_rows * block, full_cols, block, channels)
        means[full_rows, :full_cols] = edge.mean(axis=(0, 2))
        if full_cols < cols:
            means[full_rows, full_cols] = bottom[:, full_cols * block :].mean(axis=(0, 1))
    return (means * np.asarray(scales, np.float32)).mean(axis=2)


def _scores_pixels(a, b, scales, block: int):
    """``_scores`` of uint8 (H, W, C) frames: exact integer block sums of |a - b|."""
    import cv2
    import numpy as np

    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    h, w, channels = a.shape
    d = cv2.absdiff(a, b).reshape(h, w, channels)
    rows, cols = -(-h // block), -(-w // block)
    if (rows * block, cols * block) != (h, w):
        d = cv2.copyMakeBorder(d, 0, rows * block - h, 0, cols * block - w, cv2.BORDER_CONSTANT, value=0)
        d = d.reshape(rows * block, cols * block, channels)
    # rows of each block first (contiguous), then its columns and channels together
    wide = d.reshape(rows, block, cols * block * channels).sum(axis=1, dtype=np.uint32 if block > 257 else np.uint16)
    count = np.minimum(block, h - np.arange(rows) * block)[:, None] * np.minimum(block, w - np.arange(cols) * block)[None, :]
    if len(set(scales)) == 1:
        totals = wide.reshape(rows, cols, block * channels).sum(axis=2, dtype=np.uint32)
        return totals * (scales[0] / channels) / count
    per_channel = wide.reshape(rows, cols, block, channels).sum(axis=2, dtype=np.uint32)
    return (per_channel * np.asarray(scales) / count[:, :, None]).mean(axis=2)


def _scales(threshold, channels: int, exact: bool) -> list[float]:
    if exact:
        return [1.0] * channels
    values = [threshold] if isinstance(threshold, (int, float)) else list(threshold)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels or any(float(v) <= 0 for v in values):
        raise ValueError(f"threshold must be one value or one per channel ({channels}), all > 0 (or all 0): {threshold!r}")
    return [1.0 / float(v) for v in values]
