"""The feed: staged blocks, block shuffle, determinism, validation split, rank slices, prefetch."""

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
import torch

from sqlml.errors import DataError
from sqlml.training.feed import Feed, prefetched, unit_hash
from sqlml.training.options import settle
from sqlml.training.staging import stage


@pytest.fixture
def staged(con, tmp_path):
    con.sql("CREATE TABLE t AS SELECT i::DOUBLE AS x, (i % 2)::VARCHAR AS label, 1.0 + (i % 3) AS w FROM range(5000) r(i)")
    options = settle({"weight": "w", "block_rows": 700, "normalize": False})
    return stage(con.duckdb, "SELECT x, label, w FROM t", options, directory=str(tmp_path))


def rows_of(feed, epoch):
    return [b.x[:, 0].tolist() for b in feed(epoch)]


def test_blocks_are_fixed_size_record_batches(staged):
    reader = pa.ipc.open_file(pa.memory_map(staged.path))
    sizes = [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
    assert sizes == [700] * 7 + [100]
    assert staged.n_rows == 5000


def test_every_row_once_per_epoch_in_a_seeded_order(staged):
    feed = Feed(staged, batch_size=128, window=2)
    first = rows_of(feed, 0)
    seen = sorted(v for batch in first for v in batch)
    assert seen == [float(i) for i in range(5000)]
    assert rows_of(feed, 0) == first  # same epoch, same order
    assert rows_of(feed, 1) != first  # next epoch, new order
    assert rows_of(Feed(replace(staged, seed=9), batch_size=128, window=2), 0) != first
    flat = [v for batch in first for v in batch]
    assert flat != sorted(flat)


def test_no_shuffle_keeps_the_query_order(staged):
    feed = Feed(staged, batch_size=1000, shuffle=False)
    flat = [v for batch in rows_of(feed, 3) for v in batch]
    assert flat == [float(i) for i in range(5000)]


def test_batches_are_full_except_at_window_ends(staged):
    feed = Feed(staged, batch_size=300, window=4)
    sizes = [len(b) for b in feed(0)]
    assert sum(sizes) == 5000 and len(sizes) == feed.n_batches()
    assert sizes.count(300) >= len(sizes) - 2


def test_prefetch_does_not_change_the_data(staged):
    a = rows_of(Feed(staged, batch_size=256, prefetch=0), 2)
    b = rows_of(Feed(staged, batch_size=256, prefetch=3), 2)
    assert a == b


def test_validation_split_is_disjoint_seeded_and_sized(staged):
    split = replace(staged, validation_fraction=0.2)
    train = {v for b in rows_of(Feed(split, batch_size=512), 0) for v in b}
    held = {v for b in rows_of(Feed(split, batch_size=512, part="validation", shuffle=False), 0) for v in b}
    assert not train & held and len(train | held) == 5000
    assert 900 < len(held) < 1100
    again = {v for b in rows_of(Feed(split, batch_size=64, part="validation"), 5) for v in b}
    assert again == held  # the same rows every epoch and any batch size
    other = {v for b in rows_of(Feed(replace(split, seed=1), batch_size=512, part="validation"), 0) for v in b}
    assert other != held


def test_rank_slices_partition_each_global_batch(staged):
    single = list(Feed(staged, batch_size=250)(4))
    ranks = [list(Feed(staged, batch_size=250, rank=r, world=3)(4)) for r in range(3)]
    assert all(len(r) == len(single) for r in ranks)
    for k, batch in enumerate(single):
        parts = torch.cat([ranks[r][k].x for r in range(3)])
        assert torch.equal(parts, batch.x)
        assert all(ranks[r][k].weight_total == batch.weight_total for r in range(3))
        assert batch.weight_total == pytest.approx(float(batch.weight.sum()))


def test_weights_and_labels_travel_with_their_rows(staged):
    for batch in Feed(staged, batch_size=333)(1):
        x = batch.x[:, 0].numpy().astype(int)
        assert np.array_equal(batch.y.numpy(), x % 2)
        assert np.array_equal(batch.weight.numpy(), 1.0 + x % 3)


def test_unit_hash_is_uniform_and_seeded():
    h = unit_hash(np.arange(100_000, dtype=np.uint64), 0)
    assert 0.0 <= h.min() and h.max() < 1.0
    assert abs((h < 0.3).mean() - 0.3) < 0.01
    assert not np.array_equal(h, unit_hash(np.arange(100_000, dtype=np.uint64), 1))


def test_prefetch_errors_reach_the_consumer():
    def broken():
        yield 1
        raise DataError("bad block")

    got = []
    with pytest.raises(DataError, match="bad block"):
        for item in prefetched(broken(), 2):
            got.append(item)
    assert got == [1]


def test_leaving_early_stops_the_thread():
    import threading

    before = threading.active_count()
    stream = prefetched(iter(range(10_000)), 2)
    assert next(stream) == 0
    stream.close()
    assert threading.active_count() == before


def test_larger_than_a_block_images_stream_in_bounded_batches(con, tmp_path):
    con.sql("CREATE TABLE imgs AS SELECT i % 2 AS label, list_transform(range(3072), lambda p: (p % 7)::FLOAT)::FLOAT[3072] AS img FROM range(3000) r(i)")
    training = stage(con.duckdb, "SELECT img, label FROM imgs", settle({"input_shape": [3, 32, 32]}), directory=str(tmp_path))
    reader = pa.ipc.open_file(pa.memory_map(training.path))
    block_rows = reader.get_batch(0).num_rows
    assert block_rows < 3000  # ~8 MB blocks: 3072 floats a row
    shapes = {tuple(b.x.shape[1:]) for b in Feed(training, batch_size=500)(0)}
    assert shapes == {(3, 32, 32)}


@pytest.mark.parametrize("world", [1, 2, 3])
def test_rows_in_order_are_cut_from_the_blocks_as_the_gather_would_cut_them(staged, world):
    """The sequential path slices staged blocks (views, joined only across a block edge); it must
    give exactly the batches gathering every row in order gives, labels and weights included."""
    for rank in range(world):
        feed = Feed(staged, batch_size=300, shuffle=False, window=3, rank=rank, world=world)
        fast = list(feed(0))
        reader = pa.ipc.open_file(pa.memory_map(staged.path))
        blocks = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        slow = []
        for start in range(0, len(blocks), 3):  # the same windows, through the gathering path
            window = blocks[start : start + 3]
            n = sum(b.num_rows for b in window)
            slow += feed._cut(list(range(start, start + len(window))), window, np.arange(n), n)
        assert len(fast) == len(slow) == feed.n_batches()
        for a, b in zip(fast, slow):
            assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.weight, b.weight)
            assert a.weight_total == b.weight_total


def test_class_codes_are_staged_once_and_match_the_labels(staged):
    from sqlml.training.staging import class_codes_path

    codes = np.load(class_codes_path(staged.path))
    labels = pa.ipc.open_file(pa.memory_map(staged.path)).read_all().column("label").to_pylist()
    assert codes.tolist() == [staged.spec.target.classes.index(v) for v in labels]
    batch = next(iter(Feed(staged, batch_size=700, shuffle=False)(0)))
    assert batch.y.tolist() == codes[:700].tolist() and batch.y.dtype == torch.int64
