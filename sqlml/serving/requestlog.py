"""The endpoint's log writer: one thread, the server's only writing DuckDB connection.

Request handlers hand records to ``LogWriter.request(...)`` / ``.prediction(...)``
(a queue put, no database work on the event loop); the writer thread appends them to
``sqlml.serving_requests`` and ``sqlml.serving_predictions`` in batches (Arrow inserts,
at most ``flush_seconds`` apart). ``close()`` writes everything still queued before it
returns, so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import datetime, timezone
from typing import Any

_STOP = object()


class LogWriter:
    def __init__(self, duck, *, flush_seconds: float = 0.2, max_batch: int = 10_000):
        self._duck = duck
        self._queue: queue.Queue = queue.Queue()
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.written = {"requests": 0, "predictions": 0}
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sqlml-log-writer", daemon=True)

    def start(self) -> LogWriter:
        self._thread.start()
        return self

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def request(self, **record: Any) -> None:
        self._queue.put(("request", record))

    def predictions(self, request_id: str, model: str, version: int, rows, predictions, cached) -> None:
        self._queue.put(("predictions", (request_id, model, version, rows, predictions, cached)))

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = []
            deadline = time.monotonic() + self.flush_seconds
            while len(items) < self.max_batch:
                timeout = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=max(timeout, 0)) if timeout > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    while True:  # whatever arrived before the stop marker
                        try:
                            rest = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if rest is not _STOP:
                            items.append(rest)
                    break
                items.append(item)
            if items:
                try:
                    self._write(items)
                except Exception as error:  # noqa: BLE001 - keep serving; /health reports it
                    self.error = error

    def _write(self, items) -> None:
        import pyarrow as pa

        requests = [record for kind, record in items if kind == "request"]
        predictions = {
            "request_id": [],
            "row_index": [],
            "model": [],
            "version": [],
            "logged_at": [],
            "features": [],
            "prediction": [],
            "cached": [],
        }
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        for kind, record in items:
            if kind != "predictions":
                continue
            request_id, model, version, rows, values, cached = record
            for i, (row, value, hit) in enumerate(zip(rows, values, cached, strict=True)):
                predictions["request_id"].append(request_id)
                predictions["row_index"].append(i)
                predictions["model"].append(model)
                predictions["version"].append(version)
                predictions["logged_at"].append(now)
                predictions["features"].append(json.dumps(row))
                predictions["prediction"].append(json.dumps(value))
                predictions["cached"].append(hit)
        self._duck.begin()
        try:
            if requests:
                table = pa.Table.from_pylist(requests)
                self._insert("sqlml.serving_requests", table)
            if predictions["request_id"]:
                self._insert("sqlml.serving_predictions", pa.table(predictions))
            self._duck.commit()
        except BaseException:
            self._duck.rollback()
            raise
        self.written["requests"] += len(requests)
        self.written["predictions"] += len(predictions["request_id"])

    def _insert(self, table_name: str, table) -> None:
        self._duck.register("__sqlml_log_batch", table)
        try:
            columns = ", ".join(table.column_names)
            self._duck.execute(f"INSERT INTO {table_name} ({columns}) SELECT {columns} FROM __sqlml_log_batch")
        finally:
            self._duck.unregister("__sqlml_log_batch")
