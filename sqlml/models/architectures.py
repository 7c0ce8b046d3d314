"""Model architectures by name: the built-ins and ``sqlml.register_architecture``.

An architecture is a factory ``factory(input_shape, n_outputs, options) -> nn.Module``:
``input_shape`` is the shape of one example (``(16,)`` for 16 features, ``(3, 32, 32)``
for an image), ``n_outputs`` the number of classes (or 1 for regression), and
``options`` the statement's options that the architecture declares. The module maps a
batch ``[n, *input_shape]`` to ``[n, n_outputs]``.

    >>> import sqlml, torch.nn as nn
    >>> @sqlml.register_architecture("tiny", options={"width": 8})
    ... def tiny(input_shape, n_outputs, options):
    ...     return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], n_outputs))

``ARCHITECTURES`` is a plain dict (name -> ``Architecture``); print it to see what exists.
Registration is per Python process: a database stores the architecture's name and the
weights, so a process that loads a model with a user architecture registers it first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlml import bounds
from sqlml.errors import InvalidOptionError, TrainingError, UnknownObjectError

if TYPE_CHECKING:
    from torch import nn

#: factory(input_shape, n_outputs, options) -> nn.Module
Factory = Callable[[tuple[int, ...], int, dict[str, Any]], Any]


@dataclass
class Architecture:
    name: str
    factory: Factory
    #: option name -> default; None means the factory accepts any option
    options: dict[str, Any] | None = field(default_factory=dict)
    doc: str = ""
    builtin: bool = False

    def __repr__(self) -> str:
        opts = "any" if self.options is None else ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"<architecture {self.name!r} options: {opts or 'none'}>"


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(
    name: str, factory: Factory | None = None, *, options: dict[str, Any] | None = None, doc: str = ""
) -> Callable[[Factory], Factory] | Factory:
    """Make ``factory`` available as ``architecture := 'name'`` in this process.

    ``options`` names the statement options the factory reads, with their defaults
    (unknown options are then refused with a suggestion); leave it None to pass every
    option the training core does not know itself. Usable as a decorator. Registering a
    name again replaces it (built-ins included).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"architecture name must be a non-empty string, not {name!r}")

    def decorate(fn: Factory) -> Factory:
        if not callable(fn):
            raise TypeError(f"architecture {name!r}: factory must be callable, not {type(fn).__name__}")
        ARCHITECTURES[name] = Architecture(name, fn, None if options is None else dict(options), doc or (fn.__doc__ or "").strip())
        return fn

    return decorate if factory is None else decorate(factory)


def get_architecture(name: str) -> Architecture:
    found = ARCHITECTURES.get(name)
    if found is None:
        raise UnknownObjectError(
            "architecture",
            name,
            ARCHITECTURES,
            "Built-in: " + ", ".join(sorted(a for a, v in ARCHITECTURES.items() if v.builtin))
            + ". Register your own with sqlml.register_architecture(name, factory).",
        )
    return found


def build(name: str, input_shape: tuple[int, ...], n_outputs: int, options: dict[str, Any] | None = None) -> nn.Module:
    """A fresh module of architecture ``name`` with the architecture's defaults filled in."""
    arch = get_architecture(name)
    merged = dict(arch.options or {})
    merged.update(options or {})
    try:
        module = arch.factory(tuple(int(d) for d in input_shape), int(n_outputs), merged)
    except (InvalidOptionError, TrainingError):
        raise
    except Exception as error:  # noqa: BLE001 - a user factory's failure, reported with context
        raise TrainingError(
            f"architecture {name!r} could not build a model for input shape {tuple(input_shape)} "
            f"and {n_outputs} outputs: {type(error).__name__}: {error}"
        ) from error
    import torch.nn as nn

    if not isinstance(module, nn.Module):
        raise TrainingError(f"architecture {name!r}: the factory returned {type(module).__name__}, not a torch.nn.Module")
    return module


# -- built-ins ------------------------------------------------------------------------


def _hidden(options: dict[str, Any], key: str, default: list[int]) -> list[int]:
    value = options.get(key, default)
    bounds.require("CREATE MODEL", key, value, bounds.whole_list(1, bounds.MAX_LAYER_WIDTH, max_items=bounds.MAX_LAYERS, what="layer sizes"))
    return [value] if isinstance(value, int) else value


def _activation(name: str) -> nn.Module:
    import torch.nn as nn

    table = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}
    if name not in table:
        raise InvalidOptionError("CREATE MODEL", "activation", f"unknown activation {name!r}; use one of {', '.join(table)}")
    return table[name]()


def _dropout(options: dict[str, Any]) -> float:
    p = options.get("dropout", 0.0)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p < 1.0:
        raise InvalidOptionError("CREATE MODEL", "dropout", f"expected a number in [0, 1), got {p!r}")
    return float(p)


def logistic(input_shape: tuple[int, ...], n_outputs: int, options: dict[str, Any]) -> nn.Module:
    """One linear layer on the flattened input (logistic / softmax regression; linear regression).

    With text features the layer reads each text's bag of terms sparsely (an EmbeddingBag):
    logistic regression on tf-idf n-grams."""
    import torch.nn as nn

    if options.get("text_layout"):
        from sqlml.models import text_layers

        return text_layers.linear(options["text_layout"], n_outputs)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), n_outputs))


def mlp(input_shape: tuple[int, ...], n_outputs: int, options: dict[str, Any]) -> nn.Module:
    """Fully connected layers ``hidden`` (default [64, 64]) with ``activation`` and ``dropout``.

    With text features the first layer reads each text's bag of terms sparsely."""
    import torch.nn as nn

    if options.get("text_layout"):
        from sqlml.models import text_layers

        name = options.get("activation", "relu")
        _activation(name)  # checked
        return text_layers.mlp(options["text_layout"], n_outputs, _hidden(options, "hidden", [64, 64]),
                               lambda: _activation(name), _dropout(options))
    layers: list = [nn.Flatten()]
    width = math.prod(input_shape)
    dropout = _dropout(options)
    for h in _hidden(options, "hidden", [64, 64]):
        layers += [nn.Linear(width, h), _activation(options.get("activation", "relu"))]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def cnn(input_shape: tuple[int, ...], n_outputs: int, options: dict[str, Any]) -> nn.Module:
    """Conv blocks (conv ``kernel_size``, ReLU, 2x2 max-pool) of ``channels``, global average pool, linear head.

    Input ``[C, H, W]`` (``[H, W]`` is one channel). Only layers the incremental
    inference engine supports: conv, (batch norm), ReLU, max-pool, global pool, linear.
    """
    import torch.nn as nn

    if options.get("text_layout"):
        raise TrainingError("architecture 'cnn' does not read text features; use 'fasttext', 'logistic' or 'mlp'")
    layers: list = []
    if len(input_shape) == 2:  # [H, W]: one channel
        layers.append(nn.Unflatten(1, (1, input_shape[0])))
        input_shape = (1, *input_shape)
    if len(input_shape) != 3:
        raise TrainingError(
            f"architecture 'cnn' needs image input [channels, height, width]; got input shape {list(input_shape)}. "
            "Give input_shape := [C, H, W] for a FLOAT[n] column, or use a FLOAT[C][H][W] column."
        )
    kernel = options.get("kernel_size", 3)
    if not isinstance(kernel, int) or isinstance(kernel, bool) or not 1 <= kernel <= 63 or kernel % 2 == 0:
        raise InvalidOptionError("CREATE MODEL", "kernel_size", f"expected an odd whole number from 1 to 63, got {kernel!r}")
    channels_in, height, width = input_shape
    for c in _hidden(options, "channels", [16, 32]):
        layers.append(nn.Conv2d(channels_in, c, kernel, padding=kernel // 2))
        if options.get("batch_norm", False):
            layers.append(nn.BatchNorm2d(c))
        layers.append(nn.ReLU())
        if min(height, width) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        channels_in = c
    dropout = _dropout(options)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(channels_in, n_outputs))
    return nn.Sequential(*layers)


def fasttext(input_shape: tuple[int, ...], n_outputs: int, options: dict[str, Any]) -> nn.Module:
    """fastText-style (Joulin et al. 2017): the weighted mean of ``dim``-wide n-gram vectors of each
    text feature (EmbeddingBag), plus a linear map of the other features, then a linear classifier.
    Needs text := [...]."""
    from sqlml.models import text_layers

    if not options.get("text_layout"):
        raise TrainingError("architecture 'fasttext' needs text features: name them with text := ['column']")
    dim = options.get("dim", 64)
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 4096:
        raise InvalidOptionError("CREATE MODEL", "dim", f"expected an integer in 1 .. 4096, got {dim!r}")
    return text_layers.fasttext(options["text_layout"], n_outputs, dim, _dropout(options))


for _name, _factory, _options in (
    ("logistic", logistic, {}),
    ("mlp", mlp, {"hidden": [64, 64], "activation": "relu", "dropout": 0.0}),
    ("cnn", cnn, {"channels": [16, 32], "kernel_size": 3, "batch_norm": False, "dropout": 0.0}),
    ("fasttext", fasttext, {"dim": 64, "dropout": 0.0}),
):
    ARCHITECTURES[_name] = Architecture(_name, _factory, _options, (_factory.__doc__ or "").strip(), builtin=True)
