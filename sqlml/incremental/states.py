"""Materialized states: a model's activations for one video frame, kept hot and in DuckDB.

During a query the state lives in memory as torch tensors (``HotStates``, per
session, so the next query in the same session starts warm). At the end of a query
the last state is written to ``sqlml.incremental_states`` / ``incremental_tensors``
(one BLOB per layer), keyed by (model, version, video, frame): a later query over the
same video and model, even in another process, resumes from it instead of paying a
full pass. Writing every frame would cost about one inference each, so only the
state a query ends with is stored (and the oldest are pruned beyond ``keep``).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from sqlml.incremental.engine import State
from sqlml.incremental.graph import Program


@dataclass(frozen=True)
class StateKey:
    model: str
    version: int
    video: str
    signature: str


@dataclass
class StateIO:
    """Time and bytes spent storing and reading states (reported by the benchmark)."""

    saved: int = 0
    loaded: int = 0
    bytes_written: int = 0
    bytes_read: int = 0
    seconds_writing: float = 0.0
    seconds_reading: float = 0.0
    events: list = field(default_factory=list)


def signature(program: Program) -> str:
    """Fingerprint of the traced graph, its weights and the input shape (cached on the program)."""
    cached = getattr(program, "_signature", None)
    if cached:
        return cached
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(program.input_shape).encode())
    for node in program.nodes:
        digest.update(f"{node.name}|{node.kind}|{node.label}|{node.local};".encode())
    for name, tensor in sorted(program.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    program._signature = digest.hexdigest()
    return program._signature


def save(duck, key: StateKey, state: State, *, keep: int = 4, io: StateIO | None = None) -> int:
    """Write ``state`` (replacing one at the same frame); returns the bytes written."""
    import pyarrow as pa

    from sqlml.transaction import transaction

    started = time.perf_counter()
    frame = int(state.frame if state.frame is not None else -1)
    names, shapes, dtypes, blobs = [], [], [], []
    for layer, tensor in state.tensors.items():
        array = tensor.detach().cpu().contiguous().numpy()
        names.append(layer)
        shapes.append(list(array.shape))
        dtypes.append(str(array.dtype))
        blobs.append(array.tobytes())
    n = len(names)
    table = pa.table(
        {
            "model": [key.model] * n,
            "version": pa.array([key.version] * n, pa.int32()),
            "video": [key.video] * n,
            "frame": pa.array([frame] * n, pa.int64()),
            "layer": names,
            "shape": pa.array(shapes, pa.list_(pa.int32())),
            "dtype": dtypes,
            "data": pa.array(blobs, pa.binary()),
        }
    )
    total = sum(len(b) for b in blobs)
    where = "model = ? AND version = ? AND video = ?"
    params = [key.model, key.version, key.video]
    with transaction(duck):
        _delete(duck, where + " AND frame = ?", [*params, frame])
        duck.register("__sqlml_state_rows", table)
        try:
            duck.execute("INSERT INTO sqlml.incremental_tensors SELECT * FROM __sqlml_state_rows")
        finally:
            duck.unregister("__sqlml_state_rows")
        key_frame = None if state.key_frame is None else int(state.key_frame)
        duck.execute(
            "INSERT INTO sqlml.incremental_states (model, version, video, frame, key_frame, signature, exact, layers, bytes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [*params, frame, key_frame, key.signature, bool(state.exact), n, total],
        )
        stale = duck.execute(
            f"SELECT frame FROM sqlml.incremental_states WHERE {where} ORDER BY created_at DESC, frame DESC OFFSET ?",
            [*params, keep],
        ).fetchall()
        for (old,) in stale:
            _delete(duck, where + " AND frame = ?", [*params, old])
    if io is not None:
        io.saved += 1
        io.bytes_written += total
        io.seconds_writing += time.perf_counter() - started
    return total


def load(duck, key: StateKey, frame=None, *, exact_only: bool = False, io: StateIO | None = None) -> State | None:
    """The stored state for ``key`` nearest before ``frame`` (else the nearest after), or None.

    States stored under another signature (other weights or input shape) are ignored,
    and so are approximate ones when ``exact_only``.
    """
    import numpy as np
    import torch

    started = time.perf_counter()
    order = "frame DESC" if frame is None else "(frame > ?), abs(frame - ?)"
    params = [key.model, key.version, key.video, key.signature]
    if frame is not None:
        params += [int(frame), int(frame)]
    row = duck.execute(
        "SELECT frame, key_frame, exact FROM sqlml.incremental_states "
        f"WHERE model = ? AND version = ? AND video = ? AND signature = ? AND (exact OR NOT ?) ORDER BY {order} LIMIT 1",
        params[:4] + [exact_only] + params[4:],
    ).fetchall()
    if not row:
        return None
    found, key_frame, exact = row[0]
    rows = duck.execute(
        "SELECT layer, shape, dtype, data FROM sqlml.incremental_tensors "
        "WHERE model = ? AND version = ? AND video = ? AND frame = ?",
        [key.model, key.version, key.video, found],
    ).fetchall()
    tensors = {}
    total = 0
    for layer, shape, dtype, data in rows:
        array = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape).copy()
        tensors[layer] = torch.from_numpy(array)
        total += len(data)
    if io is not None:
        io.loaded += 1
        io.bytes_read += total
        io.seconds_reading += time.perf_counter() - started
    return State(tensors, None, found, key_frame, exact=bool(exact))


def drop(duck, model: str, version: int | None = None, video: str | None = None) -> int:
    """Delete stored states of a model (one version, one video); returns how many."""
    where = "model = ? AND (? IS NULL OR version = ?) AND (? IS NULL OR video = ?)"
    params = [model, version, version, video, video]
    count = duck.execute(f"SELECT count(*) FROM sqlml.incremental_states WHERE {where}", params).fetchall()[0][0]
    _delete(duck, where, params)
    return int(count)


def _delete(duck, where: str, params) -> None:
    duck.execute(f"DELETE FROM sqlml.incremental_tensors WHERE {where}", params)
    duck.execute(f"DELETE FROM sqlml.incremental_states WHERE {where}", params)


class HotStates:
    """The last few states in memory, per session (least recently used go first)."""

    def __init__(self, capacity: int = 4):
        self.capacity = capacity
        self._states: OrderedDict[StateKey, State] = OrderedDict()

    def get(self, key: StateKey) -> State | None:
        state = self._states.get(key)
        if state is not None:
            self._states.move_to_end(key)
        return state

    def put(self, key: StateKey, state: State) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)
