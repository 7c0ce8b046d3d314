"""The feed: staged blocks -> shuffled, encoded training batches, prepared on a background thread.

Each epoch visits the staged blocks (Arrow record batches, memory-mapped) in an order
drawn from ``(seed, epoch)``; ``window`` consecutive blocks of that order are pooled and
their rows permuted, then cut into batches. The permutation and the cut depend only on
the seed and the epoch, never on timing, so an epoch is the same every time it runs: a
resumed run sees exactly the data the interrupted one would have seen, and
data-parallel ranks can each take their slice of the same global batch.

Blocks are read zero-copy; the only copies are the row gather of the shuffle and packing
columns into the row-major matrix the model reads. Memory stays bounded by ``prefetch``
windows in flight, whatever the size of the data.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sqlml.training.features import as_tensor
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
        """The epoch's shuffle windows, each encoded whole (this runs on the prefetch thread).

        A window's blocks are encoded in block order into one matrix (zero-copy views when
        nothing needs gathering); one row gather then applies the validation split, the
        permutation and this rank's slices at once.
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
            x, y, w, soft = encode_batches(self.training.spec, [reader.get_batch(b) for b in blocks])
            index = None
            if any(kept[b] is not None for b in blocks):
                offsets = np.cumsum([0] + [sizes[b] for b in blocks])
                index = np.concatenate(
                    [o + (np.arange(sizes[b]) if kept[b] is None else kept[b]) for o, b in zip(offsets, blocks, strict=False)]
                )
            if self.shuffle:
                permutation = rng.permutation(n)
                index = permutation if index is None else index[permutation]
            yield self._cut(x, y, w, soft, index, n)

    def _cut(self, x, y, w, soft, index: np.ndarray | None, n: int) -> tuple:
        """This rank's rows of each global batch of ``index`` (None: rows in order), gathered once."""
        import torch

        starts = np.arange(0, n, self.batch_size)
        ends = np.minimum(starts + self.batch_size, n)
        if self.training.spec.target.weight:
            ordered = w.numpy() if index is None else w.numpy()[index]
            totals = np.add.reduceat(ordered.astype(np.float64), starts).tolist()
        else:
            totals = (ends - starts).astype(np.float64).tolist()
        if self.world == 1:
            sizes = (ends - starts).tolist()
            if index is None:
                return x[:n], y[:n], w[:n], None if soft is None else soft[:n], sizes, totals
            mine = index
        else:
            length = ends - starts
            q, r = np.divmod(length, self.world)
            first = starts + self.rank * q + np.minimum(self.rank, r)
            sizes = (q + (self.rank < r)).tolist()
            positions = np.concatenate([np.arange(a, a + k) for a, k in zip(first.tolist(), sizes, strict=True)])
            mine = positions if index is None else index[positions]
        select = torch.from_numpy(np.ascontiguousarray(mine, dtype=np.int64))
        pick = lambda t: None if t is None else t.index_select(0, select)  # noqa: E731
        return pick(x), pick(y), pick(w), pick(soft), sizes, totals


def encode_batches(spec, batches):
    """Staged record batches -> tensors (x, y, weight, soft), rows in batch order."""
    import torch

    if len(batches) == 1:
        return encode_rows(spec, batches[0])
    n = sum(b.num_rows for b in batches)
    matrix = np.empty((n, spec.width), dtype=np.float32)
    parts, at = [], 0
    for batch in batches:
        parts.append(encode_rows(spec, batch, out=matrix[at : at + batch.num_rows]))
        at += batch.num_rows
    x = as_tensor(matrix.reshape((n, *spec.input_shape)))
    y = torch.cat([p[1] for p in parts])
    w = torch.cat([p[2] for p in parts])
    soft = None if parts[0][3] is None else torch.cat([p[3] for p in parts])
    return x, y, w, soft


def encode_rows(spec, table, out=None):
    """A staged table or batch (columns f0.., label, weight, soft) -> tensors (x, y, weight, soft).

    ``out``: a float32 ``[n, width]`` array to write the inputs into.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import torch

    n = table.num_rows
    matrix, _ = spec.encode([table.column(f"f{i}") for i in range(len(spec.features))], out=out)
    x = as_tensor(matrix)
    target = spec.target
    names = table.schema.names
    soft = None
    if target.task == "classification":
        k = len(target.classes)
        if "label" in names:
            index = pc.index_in(table.column("label"), value_set=pa.array(target.classes, pa.string()))
            labels = pc.fill_null(index, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            labels = np.full(n, -1, dtype=np.int64)
        if "soft" in names:
            probs, has = _soft_matrix(table.column("soft"), k)
            missing = ~has
            if missing.any():
                probs[missing] = 0.0
                probs[missing, labels[missing]] = 1.0
            labels = np.where(labels < 0, probs.argmax(axis=1), labels)
            soft = torch.from_numpy(probs)
        y = torch.from_numpy(labels)
    else:
        values = table.column("label").to_numpy().astype(np.float32)
        y = torch.from_numpy((values - np.float32(target.mean)) / np.float32(target.std))
    if "weight" in names:
        w = torch.from_numpy(table.column("weight").to_numpy().astype(np.float32))
    else:
        w = torch.ones(n, dtype=torch.float32)
    return x, y, w, soft


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
