"""The log's segment files: merges never show a row twice, replaced files go after a grace, retention."""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pyarrow.parquet as pq

from sqlml.serving.segments import SegmentWriter, live_files, schemas


def _requests(ids):
    return pa.Table.from_pylist(
        [dict(request_id=str(i), received_at=None, model="m", version=1, status=200, rows=1, latency_ms=1.0, error=None, client=None, server="s")
         for i in ids],
        schema=schemas()["requests"],
    )


def _read(folder):
    return sorted(r["request_id"] for f in live_files(folder, "requests") for r in pq.read_table(f.path).to_pylist())


def test_merges_keep_every_row_once_and_replaced_files_go_after_the_grace(tmp_path):
    writer = SegmentWriter(tmp_path, "a", fanout=3, levels=2, grace_seconds=60)
    other = SegmentWriter(tmp_path, "b", fanout=3)
    for n in range(10):
        writer.write({"requests": _requests([f"a{n}"])})
        writer.maintain()
        assert _read(tmp_path) == sorted(f"a{k}" for k in range(n + 1))  # whatever a reader lists, at any moment
    other.write({"requests": _requests(["b0"])})
    assert len(_read(tmp_path)) == 11
    on_disk = len(os.listdir(tmp_path / "requests"))
    assert on_disk > len(live_files(tmp_path, "requests"))  # replaced files wait for their grace
    assert writer.clean(now=time.time() + 61) > 0
    assert len(os.listdir(tmp_path / "requests")) == len(live_files(tmp_path, "requests"))
    writer.maintain(final=True)
    writer.clean(now=time.time() + 61)
    assert [f.server for f in live_files(tmp_path, "requests")].count("a") == 1
    assert len(_read(tmp_path)) == 11


def test_retention_and_the_size_cap(tmp_path):
    writer = SegmentWriter(tmp_path, "a", retention_seconds=3600)
    writer.write({"requests": _requests(["old"])})
    old = live_files(tmp_path, "requests")[0].path
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    writer.write({"requests": _requests(["new"])})
    writer.clean()
    assert _read(tmp_path) == ["new"]
    capped = SegmentWriter(tmp_path / "capped", "c", max_bytes=2 * 2 * 4096)
    for n in range(20):
        capped.write({"requests": _requests([f"{n}-{k}" for k in range(50)])})
    capped.clean()
    total = sum(f.path.stat().st_size for f in live_files(tmp_path / "capped", "requests"))
    kept = _read(tmp_path / "capped")
    assert total <= 2 * 4096 and any(r.startswith("19-") for r in kept) and not any(r.startswith("0-") for r in kept)
