"""Network layers over text bags (see ``sqlml.models.text``): the input row holds, for each
text feature, ``max_tokens`` term ids then as many weights; the other features are dense.

``BagInput(layout, width)`` maps a batch to ``[n, width]``: each text feature through an
``EmbeddingBag`` (weighted sum of its terms' vectors; the weights are the tf-idf, count or
binary values, padding weighs 0), the dense features through a ``Linear``, summed.
With ``width = n_outputs`` that is a linear model (logistic regression on the bag);
as the first layer of an MLP it is a dense layer over the whole vocabulary, computed
sparsely. ``FastText`` averages term vectors (weights normalised to sum 1) into a
``dim``-wide text vector and classifies it linearly (Joulin et al., 2017).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class BagInput(nn.Module):
    def __init__(self, layout: dict, width: int, *, mean: bool = False, bias: bool = True):
        super().__init__()
        self.blocks = [tuple(int(v) for v in b) for b in layout["blocks"]]
        total = int(layout["width"])
        text_cols: set[int] = set()
        for at, slots, _ in self.blocks:
            text_cols.update(range(at, at + 2 * slots))
        dense = [c for c in range(total) if c not in text_cols]
        self.register_buffer("dense_index", torch.tensor(dense, dtype=torch.long), persistent=False)
        self.mean = mean
        self.bags = nn.ModuleList(nn.EmbeddingBag(vocab, width, mode="sum") for _, _, vocab in self.blocks)
        for bag in self.bags:
            nn.init.normal_(bag.weight, std=0.01 if not mean else 0.1)  # type: ignore[arg-type]
        self.dense = nn.Linear(len(dense), width, bias=False) if dense else None
        self.bias = nn.Parameter(torch.zeros(width)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), -1)
        out: torch.Tensor | None = None
        for (at, slots, _), bag in zip(self.blocks, self.bags, strict=True):
            weights = x[:, at + slots : at + 2 * slots]
            used = int((weights > 0).sum(dim=1).max()) if len(x) else 0  # bags fill their first slots
            used = max(used, 1)
            ids = x[:, at : at + used].long()
            weights = weights[:, :used]
            if self.mean:
                weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
            part = bag(ids, per_sample_weights=weights)
            out = part if out is None else out + part
        assert out is not None  # a layout has at least one text block
        if self.dense is not None:
            out = out + self.dense(x.index_select(1, self.dense_index))  # type: ignore[arg-type]
        return out + self.bias if self.bias is not None else out


def linear(layout: dict, n_outputs: int) -> nn.Module:
    return BagInput(layout, n_outputs)


def mlp(layout: dict, n_outputs: int, hidden: list[int], activation: Callable[[], nn.Module], dropout: float) -> nn.Module:
    layers: list = [BagInput(layout, hidden[0]), activation()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    width = hidden[0]
    for h in hidden[1:]:
        layers += [nn.Linear(width, h), activation()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def fasttext(layout: dict, n_outputs: int, dim: int, dropout: float) -> nn.Module:
    layers: list = [BagInput(layout, dim, mean=True, bias=False)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(dim, n_outputs))
    return nn.Sequential(*layers)
