"""The endpoint's log writer: one thread, the server's only writing DuckDB connection.

Request handlers hand records to ``LogWriter.request(...)`` / ``.prediction(...)``
(a deque append, no database work on the event loop); the writer thread appends them to
``sqlml.serving_requests`` and ``sqlml.serving_predictions`` in batches (Arrow inserts,
at most ``flush_seconds`` apart). ``close()`` writes everything still queued before it
returns, so a graceful shutdown loses nothing.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any


class LogWriter:
    def __init__(self, duck, *, flush_seconds: float = 0.2, max_batch: int = 10_000):
        self._duck = duck
        # a deque, not a queue.Queue: appending takes no lock and wakes no thread, so a
        # request costs the event loop no hand-over of the GIL to the writer
        self._items: deque = deque()
        self._stop = threading.Event()
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
        return len(self._items)

    def request(self, **record: Any) -> None:
        self._items.append(("request", record))

    def predictions(self, request_id: str, model: str, version: int, rows, predictions, cached) -> None:
        self._items.append(("predictions", (request_id, model, version, rows, predictions, cached)))

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        """Every ``flush_seconds`` (and once more at close), write what has arrived."""
        while True:
            stopping = self._stop.wait(self.flush_seconds)
            while self._items:
                items = []
                while self._items and len(items) < self.max_batch:
                    items.append(self._items.popleft())
                try:
                    self._write(items)
                except Exception as error:  # noqa: BLE001 - keep serving; /health reports it
                    self.error = error
            if stopping:
                return

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
        now = datetime.now(UTC).replace(tzinfo=None)
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
