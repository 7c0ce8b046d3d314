"""The endpoint's request log: a thread that writes what handlers hand it to segment files.

Request handlers call ``LogWriter.request(...)`` / ``.predictions(...)`` (a deque append,
no I/O on the event loop); the writer thread turns what arrived into Arrow tables every
``flush_seconds`` and writes them as one flush of the server's Parquet segments
(``sqlml.serving.segments``), so readers in other processes see a request at most about
``flush_seconds`` after it was answered. ``close()`` writes everything still queued
before it returns: a graceful stop loses nothing. A SIGKILL loses what arrived since the
last flush: at most ``flush_seconds`` of requests, and never more than ``max_pending``
records.

Bounds: at most ``max_pending`` records wait (more are dropped and counted); the inputs
of a fraction ``sample`` of requests are logged (every request's row is); a request's
inputs longer than ``max_request_bytes`` of JSON are logged with NULL features.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlml.serving.segments import SegmentWriter, schemas


@dataclass
class LogPolicy:
    flush_seconds: float = 1.0
    max_pending: int = 100_000  # records waiting at most
    sample: float = 1.0  # fraction of requests whose inputs are logged
    max_request_bytes: int = 65_536  # JSON of one request's inputs, at most
    maintain_seconds: float = 5.0  # merges and clean-up, at most this often
    retention_seconds: float | None = 30 * 86400.0  # segment files older than this are deleted
    max_bytes: int | None = 1 << 30  # this server's segment files, at most (oldest deleted first)


class LogWriter:
    def __init__(self, segments: SegmentWriter, policy: LogPolicy | None = None, *, seed: int | None = None):
        self.segments = segments
        self.policy = policy or LogPolicy()
        # a deque, not a queue.Queue: appending takes no lock and wakes no thread, so a
        # request costs the event loop no hand-over of the GIL to the writer
        self._items: deque = deque()
        self._stop = threading.Event()
        self._random = random.Random(seed)
        self.written = {"requests": 0, "predictions": 0}
        self.dropped = 0
        self.unsampled = 0
        self.oversized = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sqlml-log-writer", daemon=True)

    def start(self) -> LogWriter:
        self.segments.clean()
        self._thread.start()
        return self

    @property
    def pending(self) -> int:
        return len(self._items)

    def _room(self) -> bool:
        if len(self._items) >= self.policy.max_pending:
            self.dropped += 1
            return False
        return True

    def request(self, **record: Any) -> None:
        if self._room():
            self._items.append(("request", record))

    def predictions(self, request_id: str, model: str, version: int, rows, predictions, cached) -> None:
        if self.policy.sample < 1.0 and self._random.random() >= self.policy.sample:
            self.unsampled += 1
            return
        if self._room():
            self._items.append(("predictions", (request_id, model, version, rows, predictions, cached)))

    def close(self) -> None:
        """Write what is queued, merge this server's files, then stop the thread."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        """Every ``flush_seconds`` (and once more at close), write what has arrived."""
        maintained = time.monotonic()
        while True:
            stopping = self._stop.wait(self.policy.flush_seconds)
            while self._items:
                items = []
                while self._items and len(items) < 50_000:
                    items.append(self._items.popleft())
                self._guarded(lambda items=items: self._write(items))
            if stopping or time.monotonic() - maintained >= self.policy.maintain_seconds:
                self._guarded(lambda: self.segments.maintain(final=stopping))
                maintained = time.monotonic()
            if stopping:
                return

    def _guarded(self, work) -> None:
        try:
            work()
        except Exception as error:  # noqa: BLE001 - keep serving; /health reports it
            self.error = error

    def _write(self, items) -> None:
        import pyarrow as pa

        server = self.segments.server
        requests = [{**record, "server": server} for kind, record in items if kind == "request"]
        predictions: dict[str, list] = {name: [] for name in schemas()["predictions"].names}
        now = datetime.now(UTC).replace(tzinfo=None)
        for kind, record in items:
            if kind != "predictions":
                continue
            request_id, model, version, rows, values, cached = record
            texts = [json.dumps(row, allow_nan=False) for row in rows]
            if sum(len(t) for t in texts) > self.policy.max_request_bytes:
                texts = [None] * len(rows)
                self.oversized += 1
            for i, (text, value, hit) in enumerate(zip(texts, values, cached, strict=True)):
                predictions["request_id"].append(request_id)
                predictions["row_index"].append(i)
                predictions["model"].append(model)
                predictions["version"].append(version)
                predictions["logged_at"].append(now)
                predictions["features"].append(text)
                predictions["prediction"].append(json.dumps(value, allow_nan=False))
                predictions["cached"].append(hit)
                predictions["server"].append(server)
        shapes = schemas()
        tables = {
            "requests": pa.Table.from_pylist(requests, schema=shapes["requests"]) if requests else None,
            "predictions": pa.table(predictions, schema=shapes["predictions"]) if predictions["request_id"] else None,
        }
        self.segments.write(tables)
        self.written["requests"] += len(requests)
        self.written["predictions"] += len(predictions["request_id"])
