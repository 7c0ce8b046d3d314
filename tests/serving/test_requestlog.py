"""The endpoint's log writer: appends from any thread, writes in batches, loses nothing at close."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlml.serving.requestlog import LogWriter


def _request(i: int) -> dict:
    return dict(
        request_id=f"r{i}", received_at=datetime(2026, 1, 1), model="m", version=1, status=200,
        rows=1, latency_ms=1.0, error=None, client="127.0.0.1",
    )


def test_records_from_many_threads_are_all_written_at_close(con):
    writer = LogWriter(con.duckdb.cursor(), flush_seconds=60.0).start()  # no timed flush during the test
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
    assert con.sql("SELECT count(DISTINCT request_id) FROM sqlml.serving_predictions").fetchall() == [(1000,)]
    assert con.sql("SELECT count(*) FROM sqlml.serving_requests").fetchall() == [(1000,)]


def test_the_writer_flushes_without_being_closed(con):
    writer = LogWriter(con.duckdb.cursor(), flush_seconds=0.05).start()
    writer.request(**_request(1))
    for _ in range(200):
        if writer.written["requests"]:
            break
        threading.Event().wait(0.05)
    assert writer.written["requests"] == 1
    writer.close()
