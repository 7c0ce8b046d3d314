"""The options of ``CREATE MODEL``: names, defaults, checks, and what they mean.

``TRAINING_OPTIONS`` and ``IMPORT_OPTIONS`` are plain dicts (name -> ``Option``); the
chosen architecture and strategy add the options they declare. Unknown names are
refused with the nearest known ones; bad values are refused with what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlml import bounds
from sqlml.bounds import number, optional, whole
from sqlml.errors import InvalidOptionError

WHERE = "CREATE MODEL"


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def boolean(v):
    return None if isinstance(v, bool) else "expected true or false"


def text(v):
    return None if isinstance(v, str) and v else "expected a non-empty string"


def optional_text(v):
    return None if v is None else text(v)


def one_of(*choices, optional: bool = False):
    def check(v):
        if optional and v is None:
            return None
        return None if v in choices else "expected one of " + ", ".join(repr(c) for c in choices)

    return check


def fraction(v):
    return None if _is_number(v) and 0 <= v < 1 else "expected a fraction in [0, 1)"


def names_list(v):
    if v is None:
        return None
    if isinstance(v, list) and v and all(isinstance(x, str) and x for x in v):
        return None
    return "expected a list of column names, e.g. ['a', 'b']"


def class_list(v):
    from sqlml.training.staging import MAX_CLASSES

    if v is None:
        return None
    if isinstance(v, list) and 2 <= len(v) <= MAX_CLASSES and all(isinstance(x, (str, int, bool)) for x in v):
        return None
    return f"expected a list of 2 to {MAX_CLASSES:,} class names, e.g. ['ham', 'spam']"


def shape(v):
    if v is None:
        return None
    if isinstance(v, list) and 0 < len(v) <= 8 and all(_is_int(d) and d > 0 for d in v):
        size = 1
        for d in v:
            size *= d
        if size <= bounds.MAX_INPUT_VALUES:
            return None
    return f"expected a list of at most 8 positive integers whose product is at most {bounds.MAX_INPUT_VALUES:,}, e.g. [3, 32, 32]"


def device(v):
    if isinstance(v, str) and (v in ("auto", "cpu", "cuda", "mps") or v.startswith("cuda:")):
        return None
    return "expected 'auto', 'cpu', 'cuda' or 'cuda:N'"


def early_stopping(v):
    if v is None or v is False or (_is_int(v) and 0 < v <= bounds.MAX_EPOCHS) or v is True:
        return None
    return f"expected a patience in epochs from 1 to {bounds.MAX_EPOCHS:,} (e.g. 3), true (patience 3) or false"


def progress(v):
    return None if v in (True, False, "auto") else "expected 'auto', true or false"


@dataclass(frozen=True)
class Option:
    default: Any
    check: Callable[[Any], str | None]
    doc: str


TRAINING_OPTIONS: dict[str, Option] = {
    "architecture": Option("mlp", text, "network: 'logistic', 'mlp', 'cnn' or a registered name"),
    "task": Option(None, one_of("classification", "regression", optional=True), "default: regression for FLOAT/DOUBLE/DECIMAL labels, else classification"),
    "label": Option("label", optional_text, "label column"),
    "weight": Option(None, optional_text, "per-row weight column (e.g. a label model's weight); rows count in proportion"),
    "soft_label": Option(None, optional_text, "FLOAT[k] column of class probabilities (a label model's probs); the loss is cross-entropy against them"),
    "classes": Option(None, class_list, "class names in order (default: the label's distinct values, sorted); the order of soft-label probabilities"),
    "features": Option(None, names_list, "feature columns (default: every column but label, weight and soft label)"),
    "input_shape": Option(None, shape, "shape of one example, e.g. [3, 32, 32] for a FLOAT[3072] image column"),
    "normalize": Option(True, boolean, "standardise numeric features with the training mean and standard deviation"),
    "max_categories": Option(1000, whole(1, bounds.MAX_CATEGORIES), "most distinct values a categorical (VARCHAR) feature may have"),
    "text": Option(None, names_list, "VARCHAR columns that are text features: bags of word n-grams (see the text options)"),
    "epochs": Option(10, whole(1, bounds.MAX_EPOCHS), "passes over the training data"),
    "batch_size": Option(256, whole(1, bounds.MAX_BATCH_ROWS), "rows per optimizer step"),
    "optimizer": Option("adam", one_of("adam", "adamw", "sgd"), "'adam', 'adamw' or 'sgd'"),
    "lr": Option(None, optional(number(0, bounds.MAX_LR, low_open=True)), "learning rate (default 1e-3 for adam/adamw, 1e-2 for sgd)"),
    "weight_decay": Option(0.0, number(0, 100), "L2 penalty / decoupled weight decay"),
    "momentum": Option(0.9, number(0, 1), "sgd momentum"),
    "seed": Option(0, whole(0, bounds.MAX_SEED), "seed for initialisation, shuffling, dropout and the validation split"),
    "device": Option("auto", device, "'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:N'"),
    "validation_split": Option(0.0, fraction, "fraction of rows held out (by a seeded hash of row position) for validation"),
    "validation_query": Option(None, optional_text, "a query with the same columns, used for validation instead of a split"),
    "early_stopping": Option(False, early_stopping, "stop after this many epochs without validation-loss improvement; keeps the best weights"),
    "min_delta": Option(0.0, number(0, 1e300), "smallest validation-loss decrease that counts as improvement"),
    "strategy": Option("single", text, "'single' or 'data_parallel' (and strategies other modules register)"),
    "shuffle": Option(True, boolean, "block shuffle each epoch (false: staged row order)"),
    "block_rows": Option(None, optional(whole(1, bounds.MAX_BATCH_ROWS)), "rows per staged block (default: about 8 MB a block, at most 65536 rows)"),
    "shuffle_window": Option(4, whole(1, bounds.MAX_SHUFFLE_WINDOW), "blocks pooled and permuted together"),
    "prefetch": Option(2, whole(0, bounds.MAX_PREFETCH), "shuffle windows prepared ahead on the feed's thread (0: none)"),
    "validate": Option(None, optional_text, "data schema the training query must pass (error-level anomalies stop training)"),
    "checkpoint": Option(True, boolean, "save a checkpoint each epoch; an interrupted identical statement resumes from it"),
    "progress": Option("auto", progress, "progress per epoch: 'auto' (as SQLML_PROGRESS says: widget, bar or log lines), true, false"),
    "threads": Option(None, optional(whole(1, bounds.max_threads)), "torch CPU threads while training (at most 4 per CPU core, 1024)"),
    "scratch_dir": Option(None, optional_text, "folder for the staged training data (default: the system temp folder)"),
}

def _text_options() -> dict[str, Option]:
    from sqlml.models.text import TEXT_OPTIONS

    # values are checked by text.check_options (they need text := [...]); here: name, default, doc
    return {name: Option(default, lambda v: None, doc) for name, (default, _, doc) in TEXT_OPTIONS.items()}


TRAINING_OPTIONS.update(_text_options())

IMPORT_OPTIONS: dict[str, Option] = {
    "architecture": Option(None, text, "a registered architecture whose module the weights fit"),
    "weights": Option(None, text, "path of a state dict saved with torch.save (loaded with weights_only=True)"),
    "input_shape": Option(None, shape, "shape of one example, e.g. [3, 12, 12]"),
    "task": Option("classification", one_of("classification", "regression"), "what the outputs mean"),
    "classes": Option(None, class_list, "class names of the outputs, in order"),
    "n_outputs": Option(None, optional(whole(1, bounds.MAX_LAYER_WIDTH)), "number of outputs when there are no class names"),
    "features": Option(None, names_list, "names of the input columns (default: one array column 'input')"),
    "strict": Option(True, boolean, "state dict keys must match the module exactly"),
}


def settle(given: dict[str, Any], *, importing: bool = False) -> dict[str, Any]:
    """Every option with defaults filled in; unknown names and bad values refused."""
    from sqlml.models.architectures import get_architecture
    from sqlml.models.text import check_options
    from sqlml.training.strategies import strategy_options

    if not importing:
        check_options(given)

    table = dict(IMPORT_OPTIONS if importing else TRAINING_OPTIONS)
    if importing and "architecture" not in given:
        raise InvalidOptionError(WHERE, "architecture", "importing weights needs architecture := 'name'")
    name = given.get("architecture", table["architecture"].default)
    error = text(name)
    if error:
        raise InvalidOptionError(WHERE, "architecture", f"{error}, got {name!r}")
    arch = get_architecture(name)
    extra: dict[str, Any] = dict(arch.options or {})
    if not importing:
        strategy = given.get("strategy", "single")
        if text(strategy):
            raise InvalidOptionError(WHERE, "strategy", f"expected a strategy name, got {strategy!r}")
        extra.update(strategy_options(strategy))
    settled: dict[str, Any] = {}
    for key, value in given.items():
        if key in table:
            problem = table[key].check(value)
            if problem:
                raise InvalidOptionError(WHERE, key, f"{problem}, got {value!r}")
        elif key not in extra and arch.options is not None:
            owner = None if importing else _strategy_owning(key)
            if owner:
                raise InvalidOptionError(WHERE, key, f"belongs to strategy {owner!r}; add strategy := '{owner}'")
            raise InvalidOptionError(WHERE, key, allowed=[*table, *extra])
        settled[key] = value
    for key, option in table.items():
        settled.setdefault(key, option.default)
    for key, default in extra.items():
        settled.setdefault(key, default)
    if importing:
        for required in ("weights", "input_shape"):
            if settled.get(required) is None:
                raise InvalidOptionError(WHERE, required, f"importing weights needs {required} := ...")
        return settled
    if settled["lr"] is None:
        from sqlml.training.job import OPTIMIZERS

        settled["lr"] = OPTIMIZERS[settled["optimizer"]]
    if settled["early_stopping"] is True:
        settled["early_stopping"] = 3
    if settled["early_stopping"] and not (settled["validation_split"] or settled["validation_query"]):
        raise InvalidOptionError(
            WHERE, "early_stopping", "needs validation data: add validation_split := 0.1 or validation_query := '...'"
        )
    if settled["validation_split"] and settled["validation_query"]:
        raise InvalidOptionError(WHERE, "validation_split", "give validation_split or validation_query, not both")
    return settled


def _strategy_owning(key: str) -> str | None:
    """The strategy that declares option ``key``, if any (for a helpful error)."""
    from sqlml.training.strategies import STRATEGIES, strategy_options

    for name in STRATEGIES:
        try:
            if key in strategy_options(name):
                return name
        except Exception:  # noqa: BLE001 - a strategy that fails to import declares nothing
            continue
    return None


#: options that change nothing about the trained weights (left out of the resume fingerprint)
NOT_IN_FINGERPRINT = frozenset({"progress", "device", "prefetch", "scratch_dir", "checkpoint", "epochs", "threads", "validate", "workers"})
