"""Training strategies by name: ``strategy := 'single' | 'data_parallel' | ...``.

``STRATEGIES`` maps a name to ``"module:function"``; the function is imported when a
statement asks for it and is called as ``train(job: TrainJob) -> TrainResult`` (see
``sqlml.training.job``). A strategy that reads options of its own lists them, with their
defaults, in a ``options`` attribute on the function (``train.options = {"workers": 2}``);
the statement then accepts those names and refuses others with a suggestion.

Adding a strategy is adding a line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sqlml.errors import UnknownObjectError

STRATEGIES: dict[str, str] = {
    "single": "sqlml.training.single:train",
    "data_parallel": "sqlml.training.ddp:train",
    "spill": "sqlml.training.large.strategy:train_spill",
    "pipeline": "sqlml.training.large.strategy:train_pipeline",
}


def resolve(name: str) -> Callable[..., Any]:
    """The ``train`` function of strategy ``name`` (``UnknownObjectError`` with near names)."""
    target = STRATEGIES.get(name)
    if target is None:
        raise UnknownObjectError("strategy", str(name), STRATEGIES, "Known strategies: " + ", ".join(STRATEGIES) + ".")
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


def strategy_options(name: str) -> dict[str, Any]:
    """The options strategy ``name`` declares (name -> default)."""
    return dict(getattr(resolve(name), "options", {}) or {})
