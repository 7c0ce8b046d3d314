"""Per-frame choice between reusing the last result, an incremental update, and full inference.

Costs are in seconds of this machine. Every layer's full cost is *measured*: the
engine times each node of its first full passes (the minimum over them, so a busy
moment does not stick), and until then a layer costs its multiply-adds at an assumed
rate. A box recomputed on a layer costs its share of the layer's area times the
layer's cost, plus a fixed ``call_seconds`` per operator call (slicing the read-in
window, the call's set-up, the write-back). Per-cell costs differ a lot between
layers of equal MACs (a max pool costs as much per cell as a small conv on CPU), so
measuring them is what keeps box merging and the fallback honest. The dense tail
(global pooling, linear layers) is paid in full by both modes.

The ratio ``update / full`` predicts the time of an update relative to a full pass;
measured times of both modes then correct the prediction as the query runs (small
boxes run at fewer MACs/s than whole maps), so a net or machine where updates are
slow falls back to full inference by itself, and a correction that alone forces full
passes fades so updates get tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: one operator call on one box: slicing, the call's set-up, the write-back (measured, 1 CPU thread)
CALL_SECONDS = 40e-6
#: the rate assumed for a layer not timed yet (multiply-adds per second)
ASSUMED_RATE = 2e10
#: full passes timed layer by layer (their minimum is the calibration)
CALIBRATION_PASSES = 3


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
    call_seconds: float = CALL_SECONDS
    #: measured seconds of each node on a whole map (minimum over the timed passes)
    layer_seconds: dict[str, float] = field(default_factory=dict)
    passes_timed: int = 0

    @property
    def calibrating(self) -> bool:
        return self.adaptive and self.passes_timed < CALIBRATION_PASSES

    def calibrate(self, seconds: dict[str, float]) -> None:
        """Take one full pass's per-node times (the minimum per node is kept)."""
        for name, s in seconds.items():
            self.layer_seconds[name] = min(s, self.layer_seconds.get(name, s))
        self.passes_timed += 1

    def layer_costs(self, program) -> dict[str, float]:
        """Seconds of every node on a whole map: measured, else its MACs at ``ASSUMED_RATE``."""
        measured = self.layer_seconds
        return {n.name: measured.get(n.name, n.full_macs / ASSUMED_RATE) for n in program.nodes}

    def estimate(self, total: float, recomputed: float, predicted: float) -> Estimate:
        """An update recomputing ``recomputed`` of the MACs and predicted to take ``predicted``
        of the ``total`` (a full pass, same units)."""
        total = total or 1.0
        return Estimate(recomputed=min(1.0, recomputed), predicted=predicted / total)

    def budget(self, total: float) -> float:
        """The most an update may cost (same units as ``total``, a full pass) and still be chosen."""
        return self.margin / self.correction * total

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
