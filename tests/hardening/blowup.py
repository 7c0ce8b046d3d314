"""An architecture whose output turns NaN at a known batch (importable: worker processes unpickle it).

``Blowup`` passes its input on, except in training mode for a batch holding a row whose
first input (the raw row number ``t``, with ``normalize := false``) is at least ``at``:
then it returns NaN. With ``shuffle := false`` and ``batch_size := 10`` rows 20..29 are
batch 3 of every epoch, recomputation (spill's activation checkpointing) included.
"""

from __future__ import annotations

import math

from torch import nn


class Blowup(nn.Module):
    def __init__(self, at: float):
        super().__init__()
        self.at = at

    def forward(self, x):
        if self.training and bool((x[:, 0] >= self.at).any()):
            return x * float("nan")
        return x


def blowup_at_row_20(input_shape, n_outputs, options):
    width = math.prod(input_shape)
    return nn.Sequential(Blowup(20.0), nn.Flatten(), nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, n_outputs))
