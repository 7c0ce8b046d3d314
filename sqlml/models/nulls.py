"""Why a prediction came back NULL, counted: predictions are never NaN.

A model call returns NULL for a row whose inputs are unusable (a NULL, NaN or infinite
feature, or a number beyond float32's range, ±3.4e38, which becomes infinite in the
network) and for a row whose output is not finite (the network overflowed). Each such
row is counted per (model, version, reason) for the session; ``ml_prediction_nulls()``
shows the counts.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlml.session import Session

INVALID_INPUT = "invalid_input"
NON_FINITE_OUTPUT = "non_finite_output"


class NullCounts:
    """Thread-safe counters (model calls run on DuckDB's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int, str], int] = {}

    def add(self, model: str, version: int, reason: str, rows: int) -> None:
        if rows:
            with self._lock:
                key = (model, version, reason)
                self._counts[key] = self._counts.get(key, 0) + int(rows)

    def rows(self) -> list[tuple[str, int, str, int]]:
        with self._lock:
            return [(*key, count) for key, count in sorted(self._counts.items())]


def counts_of(session: Session) -> NullCounts:
    """The session's counters (one per connection and its cursors)."""
    with session.lock:
        area = session.cache("serving")
        return area.setdefault("null_predictions", NullCounts())
