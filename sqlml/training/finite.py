"""No model that computes NaN is ever saved: the loss and the final weights must be finite.

Staging refuses non-finite training values (``staging._Stats``); what is left is a model
that diverges by itself (a learning rate too high, an architecture whose output blows
up). ``LossGuard`` watches every batch's loss in both epoch loops (``loop.fit`` and
``large.run.ModelRun``) and stops training with a ``TrainingError`` naming the epoch and
batch where the loss stopped being a finite number; ``sqlml.models.registry.require_finite_weights``
checks the weights once more before a model is registered (a last step can still blow them up).
"""

from __future__ import annotations

from sqlml.errors import TrainingError

#: batches whose losses an accelerator checks together (one device sync); CPU checks each
CHECK_EVERY_ON_DEVICE = 16


class LossGuard:
    """Raise ``TrainingError`` as soon as a batch's loss is NaN or infinite.

    ``observe(loss, epoch, batch)`` takes the batch's (weighted) loss tensor, epoch and
    batch 1-based. On CPU the check is immediate (before the step that would apply the
    bad gradients, where the caller observes first). On an accelerator losses wait on
    the device and are checked together every ``CHECK_EVERY_ON_DEVICE`` batches and by
    ``check()`` at the end of each epoch, so training never waits on the device per batch.
    """

    def __init__(self, name: str, *, batches_per_epoch: int | None = None, lr: float | None = None, device=None):
        self.name = name
        self.batches_per_epoch = batches_per_epoch
        self.lr = lr
        on_cpu = device is None or getattr(device, "type", str(device)) == "cpu"
        self.every = 1 if on_cpu else CHECK_EVERY_ON_DEVICE
        self.pending: list[tuple[int, int, object]] = []

    def observe(self, loss, epoch: int, batch: int) -> None:
        self.pending.append((epoch, batch, loss.detach().reshape(())))
        if len(self.pending) >= self.every:
            self.check()

    def check(self) -> None:
        import torch

        if not self.pending:
            return
        values = torch.stack([value.to(torch.float64) for _, _, value in self.pending])
        finite = torch.isfinite(values)
        if bool(finite.all()):
            self.pending.clear()
            return
        first = int((~finite).nonzero()[0, 0])
        epoch, batch, _ = self.pending[first]
        value = float(values[first])
        self.pending.clear()
        raise diverged(self.name, value, epoch, batch, self.batches_per_epoch, self.lr)


def diverged(name: str, value: float, epoch: int, batch: int, batches: int | None, lr: float | None) -> TrainingError:
    of = f" of {batches}" if batches else ""
    lower = f"lower the learning rate (lr := {lr:g}; try {lr / 10:g})" if lr else "lower the learning rate (lr := ...)"
    return TrainingError(
        f"model {name!r}: the training loss became {value} at epoch {epoch}, batch {batch}{of}; training stopped "
        f"and no model was saved. Usually the fix is to {lower}; also check the features for extreme values "
        f"(SELECT max(abs(x)) ...) and keep normalize := true."
    )

