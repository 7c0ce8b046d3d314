"""The documented range of every numeric option, and the checks that enforce it at parse time.

An option value sizes threads, memory, processes or loops, so each one has a range
(``docs/limits.md`` lists them all); a value outside it is an ``InvalidOptionError`` naming
the option and the range before any work starts. Checks follow the convention of
``sqlml.training.options``: a function of the value returning None (fine) or what was
expected.

    >>> whole(1, 10)(11)
    'expected a whole number from 1 to 10'
    >>> number(0, 1, low_open=True)(float("nan"))
    'expected a finite number in (0, 1]'
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from sqlml.errors import InvalidOptionError

Check = Callable[[Any], "str | None"]

# -- the bounds ----------------------------------------------------------------------------
MAX_EPOCHS = 100_000  # epochs, early-stopping patience, label-model epochs and iterations
MAX_BATCH_ROWS = 1 << 24  # batch_size, block_rows: rows of one step or one staged block
MAX_SHUFFLE_WINDOW = 65_536  # blocks pooled for shuffling
MAX_PREFETCH = 64  # shuffle windows read ahead
MAX_CATEGORIES = 100_000  # distinct values of a categorical feature (its one-hot width)
MAX_LR = 10.0  # learning rates above this diverge; the loss guard catches smaller bad ones
MAX_SEED = 2**63 - 1
MAX_PROCESSES = 256  # worker processes (data_parallel, grids) and pipeline stages
MAX_MICRO_BATCHES = 4_096
MAX_GRID_MODELS = 1_000  # models of one CREATE MODELS grid
MAX_LAYER_WIDTH = 1 << 20  # units of a hidden layer, channels of a conv layer
MAX_LAYERS = 1_000
MAX_INPUT_VALUES = 2**31 - 1  # values of one example (input_shape's product)
MAX_BYTES = 1 << 50  # 1 PiB: any size option (device_memory, ...)
MAX_COUNT = 2**63 - 1  # row counts (min_rows, max_rows)


def max_threads() -> int:
    """Threads one statement may ask for: 4 per CPU core of this machine, at most 1024."""
    return min(1024, 4 * (os.cpu_count() or 1))


# -- checks --------------------------------------------------------------------------------


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def whole(low: int, high: int | Callable[[], int]) -> Check:
    """A whole number in [low, high] (``high`` may be a function, e.g. ``max_threads``)."""

    def check(v):
        top = high() if callable(high) else high
        return None if _is_int(v) and low <= v <= top else f"expected a whole number from {low:,} to {top:,}"

    return check


def number(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    """A finite number in the interval, ends open or closed as given."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(v):
        if not _is_number(v):
            return f"expected a finite number in {shown}"
        if (v <= low if low_open else v < low) or (v >= high if high_open else v > high):
            return f"expected a finite number in {shown}"
        return None

    return check


def optional(check: Check) -> Check:
    """NULL, or what ``check`` accepts."""
    return lambda v: None if v is None else check(v)


def whole_list(low: int, high: int, *, max_items: int, what: str) -> Check:
    """A whole number, or a list of at most ``max_items`` of them, each in [low, high]."""

    def check(v):
        items = [v] if _is_int(v) else v
        if isinstance(items, list) and len(items) <= max_items and all(_is_int(x) and low <= x <= high for x in items):
            return None
        return f"expected {what}: a whole number from {low:,} to {high:,} or a list of at most {max_items:,} of them"

    return check


def require(where: str, option: str, value, check: Check):
    """``value`` if ``check`` accepts it, else ``InvalidOptionError`` naming the option."""
    problem = check(value)
    if problem:
        raise InvalidOptionError(where, option, f"{problem}, got {value!r}")
    return value
