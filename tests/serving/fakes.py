"""A predictor for endpoint tests: y = 2a (+ 1 when b == 'plus'), optionally slow or failing."""

from __future__ import annotations

import threading
import time

from sqlml.serving.predictor import InputField


class FakePredictor:
    model = "fake"
    version = 1
    cache_token = "fake@1"
    fields = [InputField("a", "number"), InputField("b", "string"), InputField("v", "array", 2)]

    def __init__(self, delay: float = 0.0, fail_on: float | None = None):
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def predict(self, rows):
        with self.lock:
            self.batches.append(len(rows))
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on is not None and any(r["a"] == self.fail_on for r in rows):
            raise RuntimeError(f"the model cannot score a == {self.fail_on}")
        return [{"value": None if r["a"] is None else 2 * r["a"] + (r["b"] == "plus")} for r in rows]


def row(a, b="x", v=(0.0, 1.0)):
    return {"a": a, "b": b, "v": list(v)}
