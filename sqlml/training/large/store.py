"""Where spilled shards live: host RAM or memory-mapped files.

Each shard owns one flat byte buffer laid out by ``layers.ShardLayout``. The RAM tier
pins it when CUDA is present (page-locked memory is what lets host-to-device copies
run asynchronously; Hydra's own code called ``pin_memory()`` and dropped the pinned
copy). The disk tier maps one file per shard into memory, so a model larger than RAM
pages in and out under the kernel's control, and a checkpoint of a shard is the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TIERS = ("ram", "disk")


class HostStore:
    def __init__(self, sizes: list[int], *, tier: str = "ram", directory: str | None = None, pin: bool = False):
        import torch

        if tier not in TIERS:
            raise ValueError(f"unknown spill tier {tier!r}; known: {', '.join(TIERS)}")
        self.tier = tier
        self.sizes = list(sizes)
        self._tempdir = None
        self.buffers = []
        if tier == "disk":
            if directory is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="sqlml_spill_")
                directory = self._tempdir.name
            self.directory = Path(directory)
            self.directory.mkdir(parents=True, exist_ok=True)
            for i, size in enumerate(self.sizes):
                path = self.path(i)
                with open(path, "wb") as f:
                    f.truncate(max(size, 1))
                self.buffers.append(torch.from_file(str(path), shared=True, size=max(size, 1), dtype=torch.uint8))
        else:
            self.directory = None
            self.pinned = bool(pin)
            for size in self.sizes:
                self.buffers.append(torch.empty(max(size, 1), dtype=torch.uint8, pin_memory=self.pinned))

    def path(self, i: int) -> Path:
        return self.directory / f"shard_{i:04d}.bin"

    def __getitem__(self, i: int):
        return self.buffers[i]

    @property
    def nbytes(self) -> int:
        return sum(self.sizes)

    def sync(self) -> None:
        """Make the disk tier durable (dirty mapped pages reach the files)."""
        if self.tier != "disk":
            return
        for i in range(len(self.sizes)):
            fd = os.open(self.path(i), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        """Drop the buffers; the disk tier deletes its shard files (the folder stays if it was given)."""
        self.buffers = []
        if self.tier == "disk" and self._tempdir is None:
            for i in range(len(self.sizes)):
                self.path(i).unlink(missing_ok=True)
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
