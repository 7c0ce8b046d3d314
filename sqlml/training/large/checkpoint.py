"""Per-shard checkpoints: weights, optimizer state, data cursor and RNG, written atomically.

A checkpoint is a directory:

    meta.json          {"format": 1, "step": ..., "shards": S, "cursor": {...}, "extra": {...}}
    rng.pt             torch (and CUDA) RNG states
    shard_0000.pt      {"weights": state_dict, "optimizer": optimizer state_dict}
    ...

Shards are saved one at a time (never the whole model in memory at once: the point of
spilling), into ``<dir>.partial`` which replaces ``<dir>`` only when complete, so an
interruption mid-save leaves the previous checkpoint intact. Files load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

FORMAT = 1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save(obj, path: Path) -> None:
    import torch

    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def rng_state(device=None) -> dict:
    import torch

    state = {"torch": torch.get_rng_state()}
    if device is not None and torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device=None) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def save_shards(directory, shard_states, *, step: int, cursor: dict | None = None, extra: dict | None = None, rng: dict | None = None) -> Path:
    """Write a checkpoint; ``shard_states`` yields one ``{"weights", "optimizer"}`` dict per shard."""
    directory = Path(directory)
    partial = directory.with_name(directory.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    count = 0
    for k, state in enumerate(shard_states):
        _save(state, partial / f"shard_{k:04d}.pt")
        count += 1
    if rng is not None:
        _save(rng, partial / "rng.pt")
    meta = {"format": FORMAT, "step": step, "shards": count, "cursor": cursor or {}, "extra": extra or {}}
    (partial / "meta.json").write_text(json.dumps(meta))
    _fsync_dir(partial)
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        if old.exists():
            shutil.rmtree(old)
        directory.rename(old)
    partial.rename(directory)
    _fsync_dir(directory.parent)
    if old.exists():
        shutil.rmtree(old)
    return directory


def latest(directory) -> Path | None:
    """The checkpoint directory if a complete one exists (falls back to ``.old`` after a crash mid-swap)."""
    directory = Path(directory)
    for candidate in (directory, directory.with_name(directory.name + ".old")):
        if (candidate / "meta.json").exists():
            return candidate
    return None


def read_meta(directory) -> dict:
    return json.loads((Path(directory) / "meta.json").read_text())


def load_shard(directory, k: int) -> dict:
    import torch

    return torch.load(Path(directory) / f"shard_{k:04d}.pt", weights_only=True)


def load_rng(directory) -> dict | None:
    import torch

    path = Path(directory) / "rng.pt"
    return torch.load(path, weights_only=True) if path.exists() else None
