"""The endpoint's log writer: appends from any thread, writes segment files, loses nothing at close."""

from __future__ import annotations

import threading
from datetime import datetime

import pyarrow.parquet as pq

from sqlml.serving.requestlog import LogPolicy, LogWriter
from sqlml.serving.segments import SegmentWriter, live_files


def _request(i: int) -> dict:
    return dict(
        request_id=f"r{i}", received_at=datetime(2026, 1, 1), model="m", version=1, status=200,
        rows=1, latency_ms=1.0, error=None, client="127.0.0.1",
    )


def _rows(folder, kind) -> int:
    return sum(pq.read_metadata(f.path).num_rows for f in live_files(folder, kind))


def test_records_from_many_threads_are_all_written_at_close(tmp_path):
    writer = LogWriter(SegmentWriter(tmp_path), LogPolicy(flush_seconds=60.0)).start()  # no timed flush during the test

    def produce(start):
        for i in range(start, start + 250):
            writer.request(**_request(i))
            writer.predictions(f"r{i}", "m", 1, [{"x": i}], [{"value": i}], [False])

    threads = [threading.Thread(target=produce, args=(k * 250,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.pending == 2000  # appending wrote nothing yet: the writer flushes on its own schedule
    writer.close()
    assert writer.error is None and writer.pending == 0
    assert writer.written == {"requests": 1000, "predictions": 1000}
    assert _rows(tmp_path, "requests") == 1000 and _rows(tmp_path, "predictions") == 1000


def test_the_writer_flushes_without_being_closed(tmp_path):
    writer = LogWriter(SegmentWriter(tmp_path), LogPolicy(flush_seconds=0.05)).start()
    writer.request(**_request(1))
    for _ in range(200):
        if writer.written["requests"]:
            break
        threading.Event().wait(0.05)
    assert writer.written["requests"] == 1
    assert _rows(tmp_path, "requests") == 1  # readable by anyone, while the writer runs
    writer.close()
