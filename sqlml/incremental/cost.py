"""Per-frame choice between reusing the last result, an incremental update, and full inference.

Costs are in seconds of this machine. Every layer's full cost is *measured*: the
engine times each node of its first full passes (the minimum over them, so a busy
moment does not stick), and until then a layer costs its multiply-adds at an assumed
rate. The cells recomputed on a layer cost their share of the layer's area times the
layer's cost, plus a fixed ``call_seconds`` per operator call (slicing the read-in
window, the call's set-up, the write-back). Per-cell costs differ a lot between
layers of equal MACs (a max pool costs as much per cell as a small conv on CPU), so
measuring them is what keeps the fallback honest. The dense tail
(global pooling, linear layers) is paid in full by both modes.

The ratio ``update / full`` predicts the time of an update relative to a full pass;
measured times of both modes then correct the prediction as the query runs (small
cells one by one run at fewer MACs/s than whole maps), so a net or machine where updates are
slow falls back to full inference by itself, and a correction that alone forces full
passes fades so updates get tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: one batched operator call of an update: index arithmetic, the call's set-up (measured, 1 CPU thread)
CALL_SECONDS = 40e-6
#: what recomputing a layer's cells one by one costs per cell, in multiples of the whole layer's
#: cost per cell, before any update was timed (gathering windows, small matrix products: about 2x
#: on one CPU thread); learned from the updates timed after that
CELL_FACTOR = 2.0
#: the rate assumed for a layer not timed yet (multiply-adds per second)
ASSUMED_RATE = 2e10
#: full passes timed layer by layer (their minimum is the calibration)
CALIBRATION_PASSES = 3


@dataclass
class Estimate:
    """What an update plan would cost: its arithmetic and its operator calls, against a full pass."""

    recomputed: float  # fraction of the model's compute (MACs) the update recomputes
    predicted: float  # predicted time of the update relative to a full pass, as planned (uncorrected)
    arithmetic: float = 0.0  # the plan's arithmetic, in the unit of ``total`` (the dense tail included)
    calls: int = 0  # operator calls of the plan
    total: float = 1.0  # a full pass


@dataclass
class CostModel:
    """Decides per frame; ``observe`` feeds it the times measured (``adaptive``).

    Two numbers are learned from the updates it times, by least squares over recent
    updates (``seconds ~ correction * arithmetic + call_seconds * calls``): how much
    slower a layer's cells run one by one than the same share of the whole layer
    (``correction``), and what one operator call costs (``call_seconds``). The call
    price is what a layer with few dirty cells costs at least.
    """

    margin: float = 0.85  # update only when predicted < margin x full
    adaptive: bool = True
    correction: float = CELL_FACTOR  # measured arithmetic time / planned arithmetic time
    full_seconds: float | None = None  # EMA of measured full-pass times
    call_seconds: float = CALL_SECONDS
    #: measured seconds of each node on a whole map (minimum over the timed passes)
    layer_seconds: dict[str, float] = field(default_factory=dict)
    passes_timed: int = 0
    _sums: list[float] = field(default_factory=lambda: [0.0] * 5)  # decayed uu, uc, cc, uy, cy

    @property
    def calibrating(self) -> bool:
        return self.adaptive and self.passes_timed < CALIBRATION_PASSES

    def calibrate(self, seconds: dict[str, float]) -> None:
        """Take one full pass's per-node times (the minimum per node is kept)."""
        for name, s in seconds.items():
            self.layer_seconds[name] = min(s, self.layer_seconds.get(name, s))
        self.passes_timed += 1

    def adopt(self, seconds: dict[str, float]) -> None:
        """Take layer times measured before (by another engine of this process): no timing passes."""
        self.layer_seconds = dict(seconds)
        self.passes_timed = CALIBRATION_PASSES

    def layer_costs(self, program) -> dict[str, float]:
        """Seconds of every node on a whole map: measured, else its MACs at ``ASSUMED_RATE``."""
        measured = self.layer_seconds
        return {n.name: measured.get(n.name, n.full_macs / ASSUMED_RATE) for n in program.nodes}

    def estimate(self, total: float, recomputed: float, arithmetic: float, calls: int = 0) -> Estimate:
        """An update recomputing ``recomputed`` of the MACs, with ``arithmetic`` (same unit as
        ``total``, a full pass) and ``calls`` operator calls."""
        total = total or 1.0
        predicted = (arithmetic + calls * self.call_seconds) / total
        return Estimate(min(1.0, recomputed), predicted, arithmetic, calls, total)

    def corrected(self, estimate: Estimate) -> float:
        """The predicted update time relative to a full pass, with what was learned."""
        full = self.full_seconds or estimate.total
        return self.correction * estimate.arithmetic / estimate.total + self.call_seconds * estimate.calls / full

    def budget(self, total: float) -> float:
        """The most an update's planned cost may reach (unit of ``total``) and still be chosen."""
        return self.margin / self.correction * total

    def choose(self, estimate: Estimate) -> str:
        """'incremental' when the corrected prediction beats a full pass, else 'full'."""
        return "incremental" if self.corrected(estimate) < self.margin else "full"

    def observe(self, mode: str, seconds: float, estimate: Estimate | None = None) -> None:
        if not self.adaptive or seconds <= 0:
            return
        if mode == "full":
            self.full_seconds = seconds if self.full_seconds is None else 0.7 * self.full_seconds + 0.3 * seconds
            if estimate is not None and estimate.predicted < self.margin:
                # chose full only because of what was learned: let it fade, so updates get retried
                self.correction = CELL_FACTOR + 0.9 * (self.correction - CELL_FACTOR)
                self.call_seconds = CALL_SECONDS + 0.9 * (self.call_seconds - CALL_SECONDS)
        elif mode == "incremental" and estimate is not None and self.full_seconds:
            self._learn(estimate, seconds)

    def _learn(self, estimate: Estimate, seconds: float) -> None:
        """One more timed update in the decayed least squares; ridge toward the current values."""
        # the arithmetic in seconds of a full pass as measured now (layer times are minima)
        u = estimate.arithmetic / estimate.total * self.full_seconds
        c = float(estimate.calls)
        s = self._sums
        for k, v in enumerate((u * u, u * c, c * c, u * seconds, c * seconds)):
            s[k] = 0.7 * s[k] + v
        ridge = 0.2
        a11, a12, a22 = s[0] * (1 + ridge), s[1], s[2] * (1 + ridge)
        b1 = s[3] + ridge * s[0] * self.correction
        b2 = s[4] + ridge * s[2] * self.call_seconds
        det = a11 * a22 - a12 * a12
        if det <= 0:
            return
        correction = (b1 * a22 - a12 * b2) / det
        call = (a11 * b2 - a12 * b1) / det
        if call < 0:  # all of it is arithmetic
            call, correction = 0.0, s[3] / max(s[0], 1e-30)
        elif correction < 0:  # all of it is calls
            correction, call = 0.0, s[4] / max(s[2], 1e-30)
        self.correction = min(8.0, max(0.25, correction))
        self.call_seconds = min(2e-3, max(0.0, call))
