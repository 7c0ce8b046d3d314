"""The feed: staged blocks -> shuffled, encoded training batches, prepared on a background thread.

Each epoch visits the staged blocks (Arrow record batches, memory-mapped) in an order
drawn from ``(seed, epoch)``; ``window`` consecutive blocks of that order are pooled and
their rows permuted, then cut into batches. The permutation and the cut depend only on
the seed and the epoch, never on timing, so an epoch is the same every time it runs: a
resumed run sees exactly the data the interrupted one would have seen, and
data-parallel ranks can each take their slice of the same global batch.

Blocks are read zero-copy (staging already packed the numeric features row-major); the
copies are joining a window's blocks and one row gather. Memory stays bounded by
``prefetch`` windows in flight, whatever the size of the data.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sqlml.models.features import as_tensor, float_matrix, one_hot
from sqlml.models.text import pad
from sqlml.training.staging import TrainingSet


@dataclass
class Batch:
    """One step's rows.

    ``x``: inputs ``[n, *input_shape]`` float32. ``y``: class indices (int64) or
    standardised regression targets (float32). ``weight``: per-row weights (1 without a
    weight column). ``soft``: ``[n, k]`` class probabilities, or None without soft labels.
    ``weight_total``: the weight sum of the whole global batch this one belongs to (on a
    single device the batch itself); losses divide by it so that data-parallel slices add
    up to the single-device gradient.
    """

    x: Any
    y: Any
    weight: Any
    soft: Any
    weight_total: float

    def __iter__(self):
        return iter((self.x, self.y, self.weight, self.soft))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device) -> Batch:
        if str(device) == "cpu":
            return self
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.x), move(self.y), move(self.weight), move(self.soft), self.weight_total)


@dataclass
class Feed:
    """``feed(epoch)`` yields that epoch's batches; picklable, so worker processes rebuild it."""

    training: TrainingSet
    batch_size: int = 256
    part: str = "train"  # 'train' | 'validation'
    shuffle: bool = True
    window: int = 4  # blocks pooled per shuffle window
    rank: int = 0
    world: int = 1
    prefetch: int = 2  # windows prepared ahead on the background thread

    def __call__(self, epoch: int) -> Iterator[Batch]:
        for x, y, w, soft, sizes, totals in prefetched(self._windows(epoch), self.prefetch):
            at = 0
            for size, total in zip(sizes, totals, strict=True):
                end = at + size
                yield Batch(x[at:end], y[at:end], w[at:end], None if soft is None else soft[at:end], total)
                at = end

    # -- planning ------------------------------------------------------------------------
    @property
    def path(self) -> str:
        if self.part == "validation" and self.training.validation_path:
            return self.training.validation_path
        return self.training.path

    def rows(self) -> int:
        """Rows this feed visits per epoch (all ranks together)."""
        return int(sum(self._plan()[1]))

    def n_batches(self) -> int:
        """Global batches per epoch (windows cut separately, so partial ones at window ends)."""
        counts, step = self._plan()[1], max(1, self.window)
        return sum(-(-sum(counts[i : i + step]) // self.batch_size) for i in range(0, len(counts), step))

    def _plan(self) -> tuple[list[np.ndarray | None], list[int], list[int]]:
        """Per block: the kept row positions (None: all), the kept count, the block size."""
        cached = getattr(self, "_planned", None)
        if cached is None:
            reader = _open(self.path)
            kept, counts, sizes, first = [], [], [], 0
            for i in range(reader.num_record_batches):
                n = reader.get_batch(i).num_rows
                keep = self._keep(first, n)
                kept.append(keep)
                counts.append(n if keep is None else len(keep))
                sizes.append(n)
                first += n
            cached = self._planned = (kept, counts, sizes)
        return cached

    def _keep(self, first: int, n: int) -> np.ndarray | None:
        fraction = self.training.validation_fraction
        if not fraction or self.path != self.training.path:
            return None
        held_out = unit_hash(np.arange(first, first + n, dtype=np.uint64), self.training.seed) < fraction
        return np.flatnonzero(held_out if self.part == "validation" else ~held_out)

    # -- producing ---------------------------------------------------------------------
    def _windows(self, epoch: int) -> Iterator[tuple]:
        """The epoch's shuffle windows, encoded (this runs on the prefetch thread).

        A window is ``window`` blocks of the epoch's block order; its row index combines
        the validation split and a permutation, and ``_cut`` gathers this rank's rows of
        every global batch from it in one go.
        """
        reader = _open(self.path)
        kept, counts, sizes = self._plan()
        rng = np.random.default_rng([self.training.seed, epoch, 0x5EED])
        order = rng.permutation(len(kept)) if self.shuffle else np.arange(len(kept))
        step = max(1, self.window)
        for start in range(0, len(order), step):
            blocks = [int(b) for b in order[start : start + step]]
            n = sum(counts[b] for b in blocks)
            if n == 0:
                continue
            batches = [reader.get_batch(b) for b in blocks]
            index = None
            if any(kept[b] is not None for b in blocks):
                offsets = np.cumsum([0] + [sizes[b] for b in blocks])
                index = np.concatenate(
                    [o + (np.arange(sizes[b]) if kept[b] is None else kept[b]) for o, b in zip(offsets, blocks, strict=False)]
                )
            if self.shuffle:
                permutation = rng.permutation(n)
                index = permutation if index is None else index[permutation]
            yield self._cut(batches, index, n)

    def _cut(self, batches, index: np.ndarray | None, n: int) -> tuple:
        """This rank's rows of each global batch of ``index`` (None: rows in order), gathered once."""
        spec = self.training.spec
        starts = np.arange(0, n, self.batch_size)
        ends = np.minimum(starts + self.batch_size, n)
        if spec.target.weight:
            weights = _concat([b.column("weight").to_numpy() for b in batches])
            ordered = weights if index is None else weights[index]
            totals = np.add.reduceat(ordered.astype(np.float64), starts).tolist()
        else:
            totals = (ends - starts).astype(np.float64).tolist()
        if self.world == 1:
            sizes = (ends - starts).tolist()
            mine = index
        else:
            length = ends - starts
            q, r = np.divmod(length, self.world)
            first = starts + self.rank * q + np.minimum(self.rank, r)
            sizes = (q + (self.rank < r)).tolist()
            positions = np.concatenate([np.arange(a, a + k) for a, k in zip(first.tolist(), sizes, strict=True)])
            mine = positions if index is None else index[positions]
        return (*encode_window(spec, batches, mine), sizes, totals)


def encode_window(spec, batches, index: np.ndarray | None):
    """Staged record batches -> tensors (x, y, weight, soft) of the rows ``index`` picks (None: all).

    Each staged column is concatenated across the window's blocks and gathered once
    (``np.take``); the packed numeric block is then standardised in place, so a table of
    numbers costs one gather and one pass. With nothing to gather from a single block,
    the inputs are a view of the memory-mapped file.
    """
    import torch

    def take(arrays: list[np.ndarray]) -> np.ndarray:
        joined = _concat(arrays)
        return joined if index is None else np.take(joined, index, axis=0)

    n = sum(b.num_rows for b in batches) if index is None else len(index)
    k = len(spec.numeric)
    scaling = spec.scaling()
    numeric = None
    if k:
        numeric = take([_fixed_values(b.column("num"), k) for b in batches])
        if scaling is not None:
            if numeric.flags.writeable:
                numeric -= scaling[0]
            else:  # a view of the staged file: standardise into a new array
                numeric = numeric - scaling[0]
            numeric /= scaling[1]
    if k == spec.width:
        matrix = numeric
    elif k == 0 and len(spec.features) == 1 and spec.features[0].kind == "array":
        feature = spec.features[0]
        matrix = take([float_matrix(b.column("f0"), feature, b.num_rows)[0] for b in batches])
    else:
        matrix = np.empty((n, spec.width), dtype=np.float32)
        if k:
            matrix[:, :k] = numeric
        for i, (feature, at) in enumerate(zip(spec.features, spec.offsets, strict=True)):
            block = matrix[:, at : at + feature.width]
            if feature.kind == "array":
                block[:] = take([float_matrix(b.column(f"f{i}"), feature, b.num_rows)[0] for b in batches])
            elif feature.kind == "categorical":
                one_hot(_take_arrow([b.column(f"f{i}") for b in batches], index), feature, block)
            elif feature.kind == "text":
                ids = _take_arrow([b.column(f"f{i}") for b in batches], index)
                weights = _take_arrow([b.column(f"g{i}") for b in batches], index)
                pad(ids, weights, int(feature.text["max_tokens"]), out=block)
    x = as_tensor(matrix.reshape((n, *spec.input_shape)))
    y, soft = _targets(spec.target, batches, take)
    if spec.target.weight:
        w = torch.from_numpy(take([b.column("weight").to_numpy() for b in batches]).astype(np.float32))
    else:
        w = torch.ones(n, dtype=torch.float32)
    return x, y, w, soft


def _targets(target, batches, take):
    """(y, soft): class indices (and probabilities) or standardised regression targets."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import torch

    names = batches[0].schema.names
    if target.task == "regression":
        values = take([b.column("label").to_numpy() for b in batches]).astype(np.float32)
        return torch.from_numpy((values - np.float32(target.mean)) / np.float32(target.std)), None
    classes = pa.array(target.classes, pa.string())
    if "label" in names:
        labels = take(
            [pc.fill_null(pc.index_in(b.column("label"), value_set=classes), -1).to_numpy(zero_copy_only=False) for b in batches]
        ).astype(np.int64)
    else:
        labels = take([np.full(b.num_rows, -1, dtype=np.int64) for b in batches])
    soft = None
    if "soft" in names:
        parts = [_soft_matrix(b.column("soft"), len(target.classes)) for b in batches]
        probs, has = take([p for p, _ in parts]), take([h for _, h in parts])
        missing = ~has
        if missing.any():
            probs[missing] = 0.0
            probs[missing, labels[missing]] = 1.0
        labels = np.where(labels < 0, probs.argmax(axis=1), labels)
        soft = torch.from_numpy(np.ascontiguousarray(probs))
    return torch.from_numpy(labels), soft


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _fixed_values(column, k: int) -> np.ndarray:
    """A ``FLOAT[k]`` column as a zero-copy float32 ``[n, k]`` view."""
    child = column.values.slice(column.offset * k, len(column) * k)
    return child.to_numpy(zero_copy_only=True).reshape(-1, k)


def _take_arrow(columns: list, index: np.ndarray | None):
    import pyarrow as pa

    joined = pa.chunked_array(columns).combine_chunks() if len(columns) > 1 else columns[0]
    return joined if index is None else joined.take(pa.array(index))


def _soft_matrix(column, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft labels as normalised ``[n, k]`` float32 rows, and which rows had any."""
    import pyarrow.compute as pc

    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    n = len(column)
    has = ~column.is_null().to_numpy(zero_copy_only=False)
    out = np.zeros((n, k), dtype=np.float32)
    if has.any():
        values = pc.fill_null(column.flatten(), 0.0).to_numpy(zero_copy_only=False).astype(np.float32)
        out[has] = np.clip(values.reshape(-1, k), 0.0, None)
        sums = out[has].sum(axis=1, keepdims=True)
        good = sums[:, 0] > 0
        rows = np.flatnonzero(has)
        out[rows[good]] /= sums[good]
        has[rows[~good]] = False
    return out, has


def unit_hash(rows: np.ndarray, seed: int) -> np.ndarray:
    """A seeded hash of row positions into [0, 1) (splitmix64): the validation split."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _open(path: str):
    import pyarrow as pa

    return pa.ipc.open_file(pa.memory_map(path, "r"))


# -- background prefetch ---------------------------------------------------------------

_DONE = object()


def prefetched(iterator: Iterator, depth: int) -> Iterator:
    """Run ``iterator`` on a background thread, ``depth`` items ahead; errors surface here.

    Closing the returned generator (or leaving a ``for`` loop early) stops the thread.
    """
    if depth <= 0:
        yield from iterator
        return
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((_DONE, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            items.put((_DONE, error))

    thread = threading.Thread(target=produce, name="sqlml-feed", daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
