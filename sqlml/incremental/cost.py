"""Per-frame choice between reusing the last result, an incremental update, and full inference.

The static part counts multiply-adds: a layer's full cost is its MACs; an update
costs the MACs of the tiles it recomputes plus a fixed overhead per layer and per
tile (gathering windows, one more operator call, writing back). The dense tail
(global pooling, linear layers) is paid in full by both. The ratio ``incremental /
full`` predicts the time of an update relative to a full pass; measured times of
both modes then correct the prediction as the query runs (small tiles run at fewer
MACs/s than big tensors), so a net or machine where updates are slow falls back to
full inference by itself, and a correction that alone forces full passes fades so
updates get tried again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Estimate:
    """What an update plan would cost."""

    recomputed: float  # fraction of the model's compute (MACs) the update recomputes
    predicted: float  # predicted time of the update relative to a full pass (overheads included)


@dataclass
class CostModel:
    """Decides per frame; ``observe`` feeds it the times measured (``adaptive``)."""

    margin: float = 0.85  # update only when predicted < margin x full
    adaptive: bool = True
    correction: float = 1.0  # measured update time / predicted update time (EMA)
    full_seconds: float | None = None  # EMA of measured full-pass times

    def estimate(self, total_macs: int, work_macs: float, overhead_macs: float = 0.0) -> Estimate:
        """An update doing ``work_macs`` of arithmetic plus ``overhead_macs`` of bookkeeping."""
        total = max(1, total_macs)
        return Estimate(recomputed=min(1.0, work_macs / total), predicted=(work_macs + overhead_macs) / total)

    def budget(self, total_macs: int) -> float:
        """The most an update may cost (in multiply-adds) and still be chosen."""
        return self.margin / self.correction * total_macs

    def choose(self, estimate: Estimate) -> str:
        """'incremental' when the corrected prediction beats a full pass, else 'full'."""
        if estimate.predicted * self.correction < self.margin:
            return "incremental"
        return "full"

    def observe(self, mode: str, seconds: float, estimate: Estimate | None = None) -> None:
        if not self.adaptive or seconds <= 0:
            return
        if mode == "full":
            self.full_seconds = seconds if self.full_seconds is None else 0.7 * self.full_seconds + 0.3 * seconds
            if estimate is not None and estimate.predicted < self.margin:
                # chose full only because of the correction: let it fade, so updates get retried
                self.correction = 1.0 + 0.9 * (self.correction - 1.0)
        elif mode == "incremental" and estimate is not None and self.full_seconds and estimate.predicted > 0:
            ratio = seconds / (estimate.predicted * self.full_seconds)
            self.correction = min(4.0, max(0.25, 0.7 * self.correction + 0.3 * ratio))
