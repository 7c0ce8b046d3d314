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
        return int(sum(len(ix) for ix in self._block_rows()))

    def n_batches(self) -> int:
        """Global batches per epoch (windows cut separately, so partial ones at window ends)."""
        total, sizes = 0, [len(ix) for ix in self._block_rows()]
        for start in range(0, len(sizes), max(1, self.window)):
            total += -(-sum(sizes[start : start + self.window]) // self.batch_size)
        return total

    def _block_rows(self) -> list[np.ndarray]:
        """Per block: positions (within the block) of the rows this part keeps."""
        cached = getattr(self, "_kept", None)
        if cached is None:
            reader = _open(self.path)
            cached, first = [], 0
            for i in range(reader.num_record_batches):
                n = reader.get_batch(i).num_rows
                cached.append(self._keep(first, n))
                first += n
            self._kept = cached
        return cached

    def _keep(self, first: int, n: int) -> np.ndarray:
        fraction = self.training.validation_fraction
        if not fraction or self.path != self.training.path:
            return np.arange(n)
        held_out = unit_hash(np.arange(first, first + n, dtype=np.uint64), self.training.seed) < fraction
        return np.flatnonzero(held_out if self.part == "validation" else ~held_out)

    # -- producing ---------------------------------------------------------------------
    def _windows(self, epoch: int) -> Iterator[tuple]:
        """The epoch's shuffle windows, each encoded whole (this runs on the prefetch thread)."""
        import pyarrow as pa

        reader = _open(self.path)
        kept = self._block_rows()
        rng = np.random.default_rng([self.training.seed, epoch, 0x5EED])
        order = rng.permutation(len(kept)) if self.shuffle else np.arange(len(kept))
        step = max(1, self.window)
        for start in range(0, len(order), step):
            blocks = order[start : start + step]
            tables = [pa.Table.from_batches([reader.get_batch(int(b))]).take(pa.array(kept[b])) for b in blocks]
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            if table.num_rows == 0:
                continue
            index = rng.permutation(table.num_rows) if self.shuffle else np.arange(table.num_rows)
            yield from self._cut(table, index)

    def _cut(self, table, index: np.ndarray) -> Iterator[tuple]:
        """Global batches of ``index``; this rank's slice of each, encoded in one go."""
        import pyarrow as pa

        spec = self.training.spec
        weights = table.column("weight").to_numpy() if spec.target.weight else None
        bounds = list(range(0, len(index), self.batch_size)) + [len(index)]
        mine, sizes, totals = [], [], []
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            glob = index[a:b]
            totals.append(float(weights[glob].sum()) if weights is not None else float(len(glob)))
            part = np.array_split(glob, self.world)[self.rank] if self.world > 1 else glob
            mine.append(part)
            sizes.append(len(part))
        chosen = table.take(pa.array(np.concatenate(mine))) if mine else table.slice(0, 0)
        yield (*encode_rows(spec, chosen), sizes, totals)


def encode_rows(spec, table):
    """A staged table (columns f0.., label, weight, soft) -> tensors (x, y, weight, soft)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import torch

    n = table.num_rows
    matrix, _ = spec.encode([table.column(f"f{i}") for i in range(len(spec.features))])
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
