"""What data-parallel ranks tell the owning process, through files in the job folder.

    rank 0 -> owner    Resumed | Checkpoint | EpochEnded | Finished
    any rank -> owner  Failed

The owner writes the job (``job.pt``: the ``TrainJob`` itself, without its hooks) and
starts the ranks, or waits while ``torchrun`` starts them on other machines; so the
ranks answer through the folder, which every machine sees: rank r appends messages to
``events-r.bin``. Each message is one frame: an 8-byte length, then the message
pickled by ``torch.save`` as plain data (its class name and fields; tensors, lists,
dicts, numbers, strings). The owner reads frames with ``torch.load(weights_only=True)``,
which builds no objects but those, then makes the message from the known classes here:
a file in a shared folder is never trusted to run code in the process that owns the
database.
"""

from __future__ import annotations

import dataclasses
import io
import numbers
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlml.training.job import EpochReport, FinishedRun

HEADER = struct.Struct("<Q")
STREAMS = "events-*.bin"  # one per rank


@dataclass(frozen=True)
class Resumed:
    """The run continues from a checkpoint: the epochs it had finished."""

    history: list[EpochReport]


@dataclass(frozen=True)
class Checkpoint:
    state: dict  # the epoch loop's checkpoint, for the owner to store


@dataclass(frozen=True)
class EpochEnded:
    report: EpochReport


@dataclass(frozen=True)
class Finished:
    world: int
    run: FinishedRun


@dataclass(frozen=True)
class Failed:
    rank: int
    message: str  # an sqlml error's message as is (a diverged loss, ...), else the traceback


Message = Resumed | Checkpoint | EpochEnded | Finished | Failed
KINDS = {cls.__name__: cls for cls in (Resumed, Checkpoint, EpochEnded, Finished, Failed, EpochReport, FinishedRun)}


def stream_path(folder: Path, rank: int) -> Path:
    return Path(folder) / f"events-{rank}.bin"


def send(folder: Path, rank: int, message: Message) -> None:
    """Append ``message`` to rank ``rank``'s stream as one frame (one write, then flushed)."""
    import torch

    buffer = io.BytesIO()
    torch.save(_plain(message), buffer)
    body = buffer.getvalue()
    with open(stream_path(folder, rank), "ab") as f:
        f.write(HEADER.pack(len(body)) + body)
        f.flush()
        os.fsync(f.fileno())


class Reader:
    """The complete frames appended to one stream (a file) since the last read."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0

    def new(self) -> list[Message]:
        import torch

        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        messages, at = [], 0
        while at + HEADER.size <= len(data):
            (size,) = HEADER.unpack_from(data, at)
            if at + HEADER.size + size > len(data):
                break  # a frame still being written
            body = data[at + HEADER.size : at + HEADER.size + size]
            messages.append(_built(torch.load(io.BytesIO(body), weights_only=True, map_location="cpu")))
            at += HEADER.size + size
        self.offset += at
        return messages


def _plain(value: Any) -> Any:
    """A message as plain data: dataclasses become ``{"__kind__": name, **fields}``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__kind__": type(value).__name__, **{f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):  # numpy integers too: plain data only
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _built(value: Any) -> Any:
    if isinstance(value, dict):
        fields = {k: _built(v) for k, v in value.items() if k != "__kind__"}
        kind = value.get("__kind__")
        if kind is None:
            return fields
        if kind not in KINDS:
            raise ValueError(f"unknown data-parallel message {kind!r}")
        return KINDS[kind](**fields)
    if isinstance(value, list):
        return [_built(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_built(v) for v in value)
    return value
