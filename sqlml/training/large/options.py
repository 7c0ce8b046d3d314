"""The options of ``strategy := 'spill'`` and ``strategy := 'pipeline'``: defaults, checks, meaning.

Each strategy's ``train`` function carries its defaults (``train.options``), which is how
``CREATE MODEL`` learns which extra names it accepts; the checks here turn a bad value
into an ``InvalidOptionError`` naming the option and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlml import bounds
from sqlml.errors import InvalidOptionError
from sqlml.training.large.sizes import parse_bytes

WHERE = "CREATE MODEL"


@dataclass(frozen=True)
class Option:
    default: Any
    doc: str


SPILL_OPTIONS: dict[str, Option] = {
    "device_memory": Option(None, "device bytes for weights, gradients and optimizer state, e.g. '64MB' (required)"),
    "shards": Option(None, "number of shards (default: the fewest that fit device_memory)"),
    "boundaries": Option(None, "first layer of each shard after the first, e.g. [3, 6]"),
    "balance": Option("bytes", "balance shards by parameter 'bytes' or by measured 'time'"),
    "spill_tier": Option("ram", "where inactive shards live: 'ram' (pinned under CUDA) or 'disk' (memory-mapped files)"),
    "spill_dir": Option(None, "folder for the disk tier's shard files (default: a temporary folder)"),
    "spill_prefetch": Option(False, "copy the next shard in while the current one computes (needs room for two)"),
    "checkpoint_activations": Option(True, "recompute each shard's forward in backward (Hydra); false keeps activations"),
    "checkpoint_every": Option(None, "also checkpoint every N batches (data cursor and RNG included)"),
}

PIPELINE_OPTIONS: dict[str, Option] = {
    "stages": Option(2, "pipeline stages, one worker process each (one GPU each under CUDA)"),
    "boundaries": Option(None, "first layer of each stage after the first, e.g. [4]"),
    "balance": Option("bytes", "balance stages by parameter 'bytes' or by measured 'time'"),
    "micro_batches": Option(4, "micro-batches each batch is split into"),
    "schedule": Option("gpipe", "'gpipe' (all forwards, then all backwards) or '1f1b'"),
    "checkpoint_activations": Option(False, "stages keep only layer inputs and recompute in backward"),
    "checkpoint_every": Option(None, "also checkpoint every N batches (data cursor and RNG included)"),
}


def defaults(table: dict[str, Option]) -> dict[str, Any]:
    return {name: option.default for name, option in table.items()}


def _positive_int(options, key, *, optional=True, minimum=1, maximum=bounds.MAX_COUNT):
    value = options.get(key)
    if value is None and optional:
        return None
    return bounds.require(WHERE, key, value, bounds.whole(minimum, maximum))


def _boolean(options, key):
    value = options.get(key)
    if not isinstance(value, bool):
        raise InvalidOptionError(WHERE, key, f"expected true or false, got {value!r}")
    return value


def _choice(options, key, choices):
    value = options.get(key)
    if value not in choices:
        raise InvalidOptionError(WHERE, key, "expected one of " + ", ".join(repr(c) for c in choices) + f", got {value!r}")
    return value


def _boundaries(options):
    value = options.get("boundaries")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(b, int) and not isinstance(b, bool) for b in value):
        raise InvalidOptionError(WHERE, "boundaries", f"expected a list of layer numbers such as [3, 6], got {value!r}")
    return value


def spill_options(options: dict[str, Any]) -> dict[str, Any]:
    """The spill options, checked; ``device_memory`` in bytes."""
    if options.get("device_memory") is None:
        raise InvalidOptionError(WHERE, "device_memory", "strategy 'spill' needs device_memory := '64MB' (or another size)")
    out = {
        "device_memory": parse_bytes(options["device_memory"], where=WHERE, option="device_memory"),
        "shards": _positive_int(options, "shards", maximum=bounds.MAX_LAYERS),
        "boundaries": _boundaries(options),
        "balance": _choice(options, "balance", ("bytes", "time")),
        "spill_tier": _choice(options, "spill_tier", ("ram", "disk")),
        "spill_dir": options.get("spill_dir"),
        "spill_prefetch": _boolean(options, "spill_prefetch"),
        "checkpoint_activations": _boolean(options, "checkpoint_activations"),
        "checkpoint_every": _positive_int(options, "checkpoint_every"),
    }
    if out["shards"] is not None and out["boundaries"] is not None:
        raise InvalidOptionError(WHERE, "boundaries", "give shards or boundaries, not both")
    if out["spill_dir"] is not None and not (isinstance(out["spill_dir"], str) and out["spill_dir"]):
        raise InvalidOptionError(WHERE, "spill_dir", f"expected a folder path, got {out['spill_dir']!r}")
    return out


def pipeline_options(options: dict[str, Any]) -> dict[str, Any]:
    out = {
        "stages": _positive_int(options, "stages", optional=False, minimum=2, maximum=bounds.MAX_PROCESSES),
        "boundaries": _boundaries(options),
        "balance": _choice(options, "balance", ("bytes", "time")),
        "micro_batches": _positive_int(options, "micro_batches", optional=False, maximum=bounds.MAX_MICRO_BATCHES),
        "schedule": _choice(options, "schedule", ("gpipe", "1f1b")),
        "checkpoint_activations": _boolean(options, "checkpoint_activations"),
        "checkpoint_every": _positive_int(options, "checkpoint_every"),
    }
    if out["boundaries"] is not None:
        if options.get("stages", 2) != 2 and options.get("stages") != len(out["boundaries"]) + 1:
            raise InvalidOptionError(
                WHERE, "boundaries",
                f"{len(out['boundaries'])} boundaries make {len(out['boundaries']) + 1} stages, but stages := {options['stages']}",
            )
        out["stages"] = len(out["boundaries"]) + 1
    if out["schedule"] == "1f1b" and out["micro_batches"] < out["stages"]:
        raise InvalidOptionError(
            WHERE, "micro_batches",
            f"the 1F1B schedule needs at least as many micro-batches as stages ({out['stages']}), got {out['micro_batches']}",
        )
    return out
