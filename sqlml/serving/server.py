"""The online endpoint: HTTP/JSON predictions on aiohttp.

    POST /predict   {"inputs": [{feature: value, ...}, ...]}
                    -> {"model", "version", "request_id", "predictions": [...]}
    GET  /health    {"status": "ok", "model", "version", "queue_rows", "batch_size", ...}
    GET  /metrics   Prometheus text: requests by status, predictions, cache hits, batches, latency

Requests are validated (4xx JSON errors naming the field), looked up in an in-memory
answer cache keyed by (model version token, input), and the misses go through the
adaptive batcher; a full queue answers 503. Every request and every prediction is
logged to DuckDB by the log writer thread, the only thread that writes. Stopping is
graceful: no new connections, in-flight requests finish, the batcher drains, the log
is written, then the database closes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlml.serving.batcher import AdaptiveBatcher, BatchPolicy, Overloaded
from sqlml.serving.predictor import Predictor, RequestError, parse_inputs
from sqlml.serving.requestlog import LogWriter


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1 << 20
    max_rows: int = 1024  # inputs per request
    cache_entries: int = 100_000  # in-memory answer cache (0: off)
    shutdown_timeout: float = 10.0
    #: "auto": uvloop when it is installed (less event-loop work per request), else asyncio's
    event_loop: str = "auto"


class AnswerCache:
    """The endpoint's answer cache: an LRU of predictions keyed by (model version token,
    canonical input JSON). Not the prediction cache table queries use (sqlml.prediction_cache)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(token: str, row: dict[str, Any]) -> str:
        text = token + "\x00" + json.dumps(row, sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def get(self, key: str):
        if self.capacity <= 0 or key not in self._entries:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return self._entries[key]

    def put(self, key: str, value: Any) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


class Endpoint:
    """The aiohttp application around one predictor."""

    def __init__(self, predictor: Predictor, log: LogWriter, policy: BatchPolicy, config: ServerConfig):
        self.predictor = predictor
        self.log = log
        self.config = config
        self.batcher = AdaptiveBatcher(predictor.predict, policy)
        self.cache = AnswerCache(config.cache_entries)
        self.by_status: dict[int, int] = {}
        self.predictions = 0
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.stopping = False

    def app(self):
        from aiohttp import web

        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_post("/predict", self.handle_predict)
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/metrics", self.handle_metrics)
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _startup(self, app) -> None:
        self.batcher.start()

    async def _shutdown(self, app) -> None:
        self.stopping = True

    async def close(self) -> None:
        await self.batcher.close()

    # -- handlers -----------------------------------------------------------------------
    async def handle_predict(self, request):
        from aiohttp import web

        started = time.perf_counter()
        received = _utcnow()
        request_id = uuid.uuid4().hex[:16]
        rows: list[dict[str, Any]] = []
        status, payload, error = 200, None, None
        try:
            body = await self._body(request)
            rows = parse_inputs(body, self.predictor.fields, self.config.max_rows)
            predictions, cached = await self._predict(rows)
            payload = {
                "model": self.predictor.model,
                "version": self.predictor.version,
                "request_id": request_id,
                "predictions": predictions,
            }
            self.log.predictions(request_id, self.predictor.model, self.predictor.version, rows, predictions, cached)
            self.predictions += len(rows)
        except RequestError as problem:
            status, payload, error = problem.status, problem.payload(), str(problem)
        except Overloaded as problem:
            status, error = 503, f"overloaded: {problem}"
            payload = {"error": {"type": "overloaded", "message": error, "field": None}}
        except Exception as problem:  # noqa: BLE001 - a model failure is a 500 with its message
            status, error = 500, f"{type(problem).__name__}: {problem}"
            payload = {"error": {"type": "model_error", "message": error, "field": None}}
        latency_ms = (time.perf_counter() - started) * 1000
        self.by_status[status] = self.by_status.get(status, 0) + 1
        if status == 200:
            self.latencies.append(latency_ms)
        self.log.request(
            request_id=request_id,
            received_at=received,
            model=self.predictor.model,
            version=self.predictor.version,
            status=status,
            rows=len(rows) if status == 200 else 0,
            latency_ms=latency_ms,
            error=error,
            client=request.remote,
        )
        headers = {"X-Request-Id": request_id}
        if status == 503:
            headers["Retry-After"] = "1"
        return web.json_response(payload, status=status, headers=headers)

    async def _body(self, request) -> Any:
        from aiohttp import web

        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as problem:
            raise RequestError(
                413, "body_too_large", f"the body is larger than {self.config.max_body_bytes} bytes", None
            ) from problem
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as problem:
            raise RequestError(400, "invalid_json", f"the body is not valid JSON: {problem}", None) from None

    async def _predict(self, rows):
        if self.cache.capacity <= 0:  # no cache: no keys to hash per row
            self.cache.misses += len(rows)
            return await self.batcher.submit(rows), [False] * len(rows)
        token = self.predictor.cache_token
        keys = [AnswerCache.key(token, row) for row in rows]
        found = [self.cache.get(k) for k in keys]
        cached = [f is not None for f in found]
        missing = [i for i, hit in enumerate(cached) if not hit]
        if missing:
            computed = await self.batcher.submit([rows[i] for i in missing])
            for i, value in zip(missing, computed, strict=True):
                found[i] = value
                self.cache.put(keys[i], value)
        return found, cached

    async def handle_health(self, request):
        from aiohttp import web

        return web.json_response(
            {
                "status": "stopping" if self.stopping else ("degraded" if self.log.error else "ok"),
                "model": self.predictor.model,
                "version": self.predictor.version,
                "queue_rows": self.batcher.queued_rows,
                "batch_size": self.batcher.batch_size,
                "log_pending": self.log.pending,
                "log_error": str(self.log.error) if self.log.error else None,
            }
        )

    async def handle_metrics(self, request):
        from aiohttp import web

        lines = []

        def metric(name, kind, help_text, samples):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value}")

        metric("sqlml_requests_total", "counter", "Prediction requests by HTTP status.",
               [(f'{{status="{s}"}}', n) for s, n in sorted(self.by_status.items())] or [("", 0)])
        metric("sqlml_predictions_total", "counter", "Predictions returned.", [("", self.predictions)])
        metric("sqlml_cache_hits_total", "counter", "Inputs answered from the endpoint's answer cache.", [("", self.cache.hits)])
        metric("sqlml_cache_misses_total", "counter", "Inputs sent to the model.", [("", self.cache.misses)])
        stats = self.batcher.stats
        metric("sqlml_batches_total", "counter", "Model batches run.", [("", stats.batches)])
        metric("sqlml_batch_rows_total", "counter", "Rows in model batches.", [("", stats.rows)])
        metric("sqlml_model_seconds_total", "counter", "Time spent in the model.", [("", round(stats.model_seconds, 6))])
        metric("sqlml_batch_size", "gauge", "Current adaptive batch size (rows).", [("", self.batcher.batch_size)])
        metric("sqlml_queue_rows", "gauge", "Rows waiting for the model.", [("", self.batcher.queued_rows)])
        metric("sqlml_log_pending", "gauge", "Log records not yet written.", [("", self.log.pending)])
        ordered = sorted(self.latencies)
        quantiles = [(f'{{quantile="{q}"}}', round(_quantile(ordered, q), 3)) for q in (0.5, 0.9, 0.99)]
        metric("sqlml_request_latency_ms", "summary", "Latency of successful requests (last 10k).", quantiles)
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def _loop_factory(kind: str):
    """The event loop's constructor: uvloop's when asked for ("uvloop") or, with "auto",
    when it is installed; else asyncio's own."""
    if kind not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"event_loop must be 'auto', 'uvloop' or 'asyncio', not {kind!r}")
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _utcnow():
    from datetime import datetime

    return datetime.now(UTC).replace(tzinfo=None)


class Server:
    """An endpoint on a database: owns the writing connection, the log thread, the loop.

    ``start()`` serves from a background thread (tests, benchmarks, the tour) and returns
    once listening (``port`` is then the bound port); ``serve_forever()`` blocks until
    SIGINT/SIGTERM. Either way ``stop()`` (or the signal) shuts down gracefully.
    """

    def __init__(
        self,
        database: str | None,
        model: str | None = None,
        *,
        predictor: Predictor | None = None,
        policy: BatchPolicy | None = None,
        config: ServerConfig | None = None,
        connection=None,
    ):
        from sqlml.connection import connect

        if predictor is None and model is None:
            raise ValueError("a model name (or a predictor) is needed")
        self.config = config or ServerConfig()
        # In a process that already has the database open (a notebook, the tour), pass its
        # Connection: the server writes through a cursor of it instead of connecting again
        # (a second connect would re-register the SQL functions on the shared instance).
        self.connection = connection.cursor() if connection is not None else connect(database)
        try:
            if predictor is None:
                from sqlml.serving.predictor import ModelPredictor

                predictor = ModelPredictor(self.connection, model)
        except BaseException:
            self.connection.close()
            raise
        self.log = LogWriter(self.connection.duckdb)
        self.endpoint = Endpoint(predictor, self.log, policy or BatchPolicy(), self.config)
        self.port = self.config.port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop_requested: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._closed = False

    # -- lifetime ------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> Server:
        self._thread = threading.Thread(target=self._thread_main, name="sqlml-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the server did not start listening")
        if self._failure is not None:
            raise self._failure
        return self

    def serve_forever(self, on_listening=None) -> None:
        import signal

        with asyncio.Runner(loop_factory=_loop_factory(self.config.event_loop)) as runner:
            runner.run(self._main(on_listening, signals=(signal.SIGINT, signal.SIGTERM)))

    def stop(self, timeout: float = 60.0) -> None:
        if self._loop is not None and self._stop_requested is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop_requested.set)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def _thread_main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory(self.config.event_loop)) as runner:
                runner.run(self._main(None, signals=()))
        except BaseException as error:  # noqa: BLE001 - reported to start()
            self._failure = error
            self._ready.set()

    async def _main(self, on_listening, signals) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        for sig in signals:
            self._loop.add_signal_handler(sig, self._stop_requested.set)
        self.log.start()
        runner = web.AppRunner(self.endpoint.app(), shutdown_timeout=self.config.shutdown_timeout, access_log=None)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
            if runner.addresses:
                self.port = runner.addresses[0][1]
            self._ready.set()
            if on_listening is not None:
                on_listening(self)
            await self._stop_requested.wait()
        finally:
            self.endpoint.stopping = True
            await runner.cleanup()  # stop accepting; wait for in-flight requests
            await self.endpoint.close()  # the batcher finishes what it holds
            self.log.close()  # everything logged is written
            self.connection.close()
            self._closed = True
