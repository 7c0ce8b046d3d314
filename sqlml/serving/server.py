"""The online endpoint: HTTP/JSON predictions on aiohttp.

    POST /predict   {"inputs": [{feature: value, ...}, ...]}
                    -> {"model", "version", "request_id", "predictions": [...]}
    GET  /ready     200 {"status": "ready", ...} once the model is loaded and warmed, else 503
    GET  /health    {"status": "starting" | "ok" | "degraded" | "stopping", "versions", ...}
    GET  /metrics   Prometheus text: requests by version and status, predictions, cache, batches, latency

The server never opens the database read-write: models come from the serving folder
beside it (``sqlml.serving.source``), and the request log goes to Parquet segment files
this server alone writes (``sqlml.serving.segments``), so notebooks, the shell and other
replicas use the database while it serves. A reference that can move (an alias, latest,
a traffic split) is followed: a new version is loaded and warmed beside the old one,
then requests switch to it and the old one's queue drains (no request is dropped).

Requests are validated row by row (4xx JSON errors naming the field), looked up in an
in-memory answer cache keyed by (model version token, input), and the misses go through
the version's adaptive batcher; a full queue answers 503. Bodies are capped in size and
nesting; connections in number and in how long they take to send a request
(``sqlml.serving.guard``). Stopping is graceful: no new connections, in-flight requests
finish, the batchers drain, the log is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from sqlml.serving.batcher import AdaptiveBatcher, BatchPolicy, Overloaded
from sqlml.serving.guard import ConnectionGuard, json_depth
from sqlml.serving.predictor import Predictor, RequestError, parse_inputs
from sqlml.serving.requestlog import LogPolicy, LogWriter

#: one line per HTTP request at INFO (``sqlml serve`` prints them; embedders configure logging)
access_log = logging.getLogger("sqlml.serving.access")


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
    read_timeout: float = 10.0  # seconds a connection has to send a request's headers and body
    max_connections: int = 1024
    max_depth: int = 16  # nesting of a request body
    reload_seconds: float = 1.0  # how often a moving reference (alias, latest, split) is looked up
    open_timeout: float = 30.0  # how long to retry a database held by another process
    log: LogPolicy = field(default_factory=LogPolicy)


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


@dataclass
class Deployment:
    """One served model version: its predictor, its batcher, its share of the requests."""

    label: str
    predictor: Predictor
    batcher: AdaptiveBatcher
    weight: float = 1.0

    @property
    def key(self) -> tuple[str, int]:
        return (self.predictor.model, self.predictor.version)


class Endpoint:
    """The aiohttp application around the deployments being served."""

    def __init__(self, log: LogWriter, policy: BatchPolicy, config: ServerConfig):
        self.log = log
        self.policy = policy
        self.config = config
        self.deployments: list[Deployment] = []
        self.guard = ConnectionGuard(config.read_timeout, config.max_connections)
        self.cache = AnswerCache(config.cache_entries)
        self.by_status: dict[tuple[int | None, int], int] = {}
        self.predictions: dict[int, int] = {}
        self.latencies: dict[int | None, deque[float]] = {}
        self.stopping = False
        self.ready = False
        self.reloads = 0
        self.reload_error: str | None = None
        self._random = random.Random()

    # -- what is served ----------------------------------------------------------------
    def deployment(self, predictor: Predictor, label: str = "", weight: float = 1.0) -> Deployment:
        return Deployment(label or str(predictor.version), predictor, AdaptiveBatcher(predictor.predict, self.policy), weight)

    async def install(self, deployments: list[Deployment]) -> None:
        """Switch requests to ``deployments`` (started here); retire the ones no longer served."""
        keep = {id(d.batcher) for d in deployments}
        for d in deployments:
            if d.batcher._task is None:
                d.batcher.start()
        old, self.deployments = self.deployments, deployments
        self.ready = bool(deployments)
        for d in old:
            if id(d.batcher) not in keep:
                await d.batcher.close()  # finishes what it holds; new requests already go elsewhere

    def pick(self) -> Deployment:
        deployments = self.deployments
        if len(deployments) == 1:
            return deployments[0]
        return self._random.choices(deployments, weights=[d.weight for d in deployments])[0]

    @property
    def predictor(self) -> Predictor:
        """The first served version's predictor (the only one without a traffic split)."""
        return self.deployments[0].predictor

    def app(self):
        from aiohttp import web

        @web.middleware
        async def middleware(request, handler):
            return await self._middleware(request, handler)

        app = web.Application(client_max_size=self.config.max_body_bytes, middlewares=[middleware])
        app.router.add_post("/predict", self.handle_predict)
        app.router.add_get("/health", self.handle_health)
        app.router.add_get("/ready", self.handle_ready)
        app.router.add_get("/metrics", self.handle_metrics)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, app) -> None:
        self.stopping = True

    async def close(self) -> None:
        await self.guard.close()
        for d in self.deployments:
            await d.batcher.close()

    # -- handlers -----------------------------------------------------------------------
    async def _middleware(self, request, handler):
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except Exception as problem:  # aiohttp's HTTPException is a response too
            status = getattr(problem, "status", 500)
            raise
        finally:
            self.guard.answered(request.protocol)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    '%s "%s %s" %d %.2fms', request.remote, request.method, request.path_qs, status,
                    (time.perf_counter() - started) * 1000,
                )

    async def handle_predict(self, request):
        from aiohttp import web

        started = time.perf_counter()
        received = _utcnow()
        request_id = uuid.uuid4().hex[:16]
        rows: list[dict[str, Any]] = []
        status, payload, error = 200, None, None
        model, version = None, None
        try:
            body = await self._body(request)
            self.guard.request_read(request.protocol)
            if not self.ready:
                raise Overloaded("the model is still loading (GET /ready says when it is served)")
            deployment = self.pick()
            model, version = deployment.predictor.model, deployment.predictor.version
            rows = parse_inputs(body, deployment.predictor.fields, self.config.max_rows)
            predictions, cached = await self._predict(deployment, rows)
            payload = {"model": model, "version": version, "request_id": request_id, "predictions": predictions}
            self.log.predictions(request_id, model, version, rows, predictions, cached)
            self.predictions[version] = self.predictions.get(version, 0) + len(rows)
        except RequestError as problem:
            status, payload, error = problem.status, problem.payload(), str(problem)
        except Overloaded as problem:
            status, error = 503, f"overloaded: {problem}"
            payload = {"error": {"type": "overloaded", "message": error, "field": None}}
        except Exception as problem:  # noqa: BLE001 - a model failure is a 500 with its message
            status, error = 500, f"{type(problem).__name__}: {problem}"
            payload = {"error": {"type": "model_error", "message": error, "field": None}}
        latency_ms = (time.perf_counter() - started) * 1000
        self.by_status[(version, status)] = self.by_status.get((version, status), 0) + 1
        if status == 200:
            self.latencies.setdefault(version, deque(maxlen=10_000)).append(latency_ms)
        self.log.request(
            request_id=request_id,
            received_at=received,
            model=model,
            version=version,
            status=status,
            rows=len(rows) if status == 200 else 0,
            latency_ms=latency_ms,
            error=error[:1000] if error else None,
            client=request.remote,
        )
        headers = {"X-Request-Id": request_id}
        if status == 503:
            headers["Retry-After"] = "1"
        return web.Response(body=_dumps(payload), status=status, headers=headers, content_type="application/json")

    async def _body(self, request) -> Any:
        from aiohttp import web

        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as problem:
            raise RequestError(
                413, "body_too_large", f"the body is larger than {self.config.max_body_bytes} bytes", None
            ) from problem
        except (ConnectionError, OSError) as problem:
            # the client went away, or was closed for sending too slowly (--read-timeout)
            raise RequestError(408, "incomplete_body", f"the connection closed before the body arrived: {type(problem).__name__}", None) from None
        if json_depth(raw, self.config.max_depth) > self.config.max_depth:
            raise RequestError(400, "too_deep", f"the body nests arrays/objects deeper than {self.config.max_depth} levels", None)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as problem:
            raise RequestError(400, "invalid_json", f"the body is not valid JSON: {str(problem)[:200]}", None) from None

    async def _predict(self, deployment: Deployment, rows):
        if self.cache.capacity <= 0:  # no cache: no keys to hash per row
            self.cache.misses += len(rows)
            return await self._submit(deployment, rows), [False] * len(rows)
        token = deployment.predictor.cache_token
        keys = [AnswerCache.key(token, row) for row in rows]
        found = [self.cache.get(k) for k in keys]
        cached = [f is not None for f in found]
        missing = [i for i, hit in enumerate(cached) if not hit]
        if missing:
            computed = await self._submit(deployment, [rows[i] for i in missing])
            for i, value in zip(missing, computed, strict=True):
                found[i] = value
                self.cache.put(keys[i], value)
        return found, cached

    async def _submit(self, deployment: Deployment, rows):
        return await deployment.batcher.submit(rows)

    def _state(self) -> str:
        if self.stopping:
            return "stopping"
        if not self.ready:
            return "starting"
        return "degraded" if (self.log.error or self.reload_error) else "ok"

    async def handle_health(self, request):
        from aiohttp import web

        first = self.deployments[0] if self.deployments else None
        return web.json_response(
            {
                "status": self._state(),
                "ready": self.ready and not self.stopping,
                "model": first.predictor.model if first else None,
                "version": first.predictor.version if first else None,
                "versions": [{"label": d.label, "version": d.predictor.version, "share": round(d.weight, 6)} for d in self.deployments],
                "reloads": self.reloads,
                "reload_error": self.reload_error,
                "queue_rows": sum(d.batcher.queued_rows for d in self.deployments),
                "batch_size": first.batcher.batch_size if first else None,
                "connections": self.guard.open_connections,
                "log_pending": self.log.pending,
                "log_dropped": self.log.dropped,
                "log_error": str(self.log.error) if self.log.error else None,
            },
            dumps=_dumps_text,
        )

    async def handle_ready(self, request):
        from aiohttp import web

        ready = self.ready and not self.stopping
        body = {"status": "ready" if ready else self._state(), "versions": [d.predictor.version for d in self.deployments]}
        return web.json_response(body, status=200 if ready else 503, dumps=_dumps_text)

    async def handle_metrics(self, request):
        from aiohttp import web

        lines = []

        def metric(name, kind, help_text, samples):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value}")

        def version_label(version) -> str:
            return "none" if version is None else str(version)

        metric("sqlml_requests_total", "counter", "Prediction requests by model version and HTTP status.",
               [(f'{{version="{version_label(v)}",status="{s}"}}', n)
                for (v, s), n in sorted(self.by_status.items(), key=lambda item: (version_label(item[0][0]), item[0][1]))] or [("", 0)])
        metric("sqlml_predictions_total", "counter", "Predictions returned, by model version.",
               [(f'{{version="{v}"}}', n) for v, n in sorted(self.predictions.items())] or [("", 0)])
        metric("sqlml_cache_hits_total", "counter", "Inputs answered from the endpoint's answer cache.", [("", self.cache.hits)])
        metric("sqlml_cache_misses_total", "counter", "Inputs sent to the model.", [("", self.cache.misses)])
        served = [(f'{{version="{d.predictor.version}"}}', d) for d in self.deployments]
        metric("sqlml_batches_total", "counter", "Model batches run (served versions).", [(lab, d.batcher.stats.batches) for lab, d in served])
        metric("sqlml_batch_rows_total", "counter", "Rows in model batches.", [(lab, d.batcher.stats.rows) for lab, d in served])
        metric("sqlml_model_seconds_total", "counter", "Time spent in the model.", [(lab, round(d.batcher.stats.model_seconds, 6)) for lab, d in served])
        metric("sqlml_batch_size", "gauge", "Current adaptive batch size (rows).", [(lab, d.batcher.batch_size) for lab, d in served])
        metric("sqlml_queue_rows", "gauge", "Rows waiting for the model.", [(lab, d.batcher.queued_rows) for lab, d in served])
        metric("sqlml_traffic_share", "gauge", "Share of requests sent to each version.", [(lab, round(d.weight, 6)) for lab, d in served])
        metric("sqlml_reloads_total", "counter", "Times the served versions changed while running.", [("", self.reloads)])
        metric("sqlml_connections", "gauge", "Open client connections.", [("", self.guard.open_connections)])
        metric("sqlml_connections_closed_slow_total", "counter", "Connections closed for sending too slowly or idling.", [("", self.guard.closed_slow)])
        metric("sqlml_connections_refused_total", "counter", "Connections refused at the cap.", [("", self.guard.refused)])
        metric("sqlml_log_pending", "gauge", "Log records not yet written.", [("", self.log.pending)])
        metric("sqlml_log_dropped_total", "counter", "Log records dropped because too many were waiting.", [("", self.log.dropped)])
        samples = []
        for v, window in sorted(self.latencies.items(), key=lambda item: version_label(item[0])):
            ordered = sorted(window)
            samples += [(f'{{version="{version_label(v)}",quantile="{q}"}}', round(_quantile(ordered, q), 3)) for q in (0.5, 0.9, 0.99)]
        metric("sqlml_request_latency_ms", "summary", "Latency of successful requests (last 10k per version).", samples)
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps_text(payload: Any) -> str:
    try:
        return json.dumps(payload, allow_nan=False)
    except ValueError:  # a NaN or inf somewhere: answer NULL there, never invalid JSON
        return json.dumps(_finite(payload), allow_nan=False)


def _dumps(payload: Any) -> bytes:
    return _dumps_text(payload).encode()


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
    """An endpoint on a database's models: the log writer thread, the event loop, reloads.

    ``Server(database, 'm@production')`` serves a registered model (read from the serving
    folder beside ``database``); ``Server(database, predictor=...)`` serves any Predictor
    (tests). ``start()`` serves from a background thread (tests, benchmarks, the tour) and
    returns once the model is loaded and warmed (``port`` is then the bound port);
    ``serve_forever()`` blocks until SIGINT/SIGTERM. Either way ``stop()`` (or the signal)
    shuts down gracefully. ``connection``: a sqlml Connection of this process that holds
    the database (a notebook, the tour), used only to publish a model not yet published.
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
        from sqlml.errors import ServingError
        from sqlml.models.published import folder_of
        from sqlml.serving.segments import SegmentWriter, log_folder

        if predictor is None and model is None:
            raise ValueError("a model name (or a predictor) is needed")
        self.config = config or ServerConfig()
        if database is None and connection is not None:
            database = connection.database
        folder = folder_of(database or "")
        if folder is None:
            raise ServingError("the server needs a database file: its log and models live in a folder beside it")
        self.source = None
        if predictor is None:
            from sqlml.serving.source import ModelSource

            self.source = ModelSource(database, model, open_timeout=self.config.open_timeout, connection=connection)
            self.source.targets()  # fail now, not after listening, when the reference names nothing
        self._fixed = predictor
        policy_log = self.config.log
        segments = SegmentWriter(log_folder(folder), retention_seconds=policy_log.retention_seconds, max_bytes=policy_log.max_bytes)
        self.log = LogWriter(segments, policy_log)
        self.endpoint = Endpoint(self.log, policy or BatchPolicy(), self.config)
        self.port = self.config.port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listening = threading.Event()
        self._ready = threading.Event()
        self._stop_requested: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._closed = False

    # -- lifetime ------------------------------------------------------------------------
    def start(self, timeout: float = 60.0, *, wait_ready: bool = True) -> Server:
        self._thread = threading.Thread(target=self._thread_main, name="sqlml-server", daemon=True)
        self._thread.start()
        event = self._ready if wait_ready else self._listening
        if not event.wait(timeout):
            raise TimeoutError("the server did not start" + (" serving" if wait_ready else " listening"))
        if self._failure is not None:
            raise self._failure
        return self

    def serve_forever(self, on_listening=None, on_ready=None) -> None:
        import signal

        with asyncio.Runner(loop_factory=_loop_factory(self.config.event_loop)) as runner:
            runner.run(self._main(on_listening, on_ready, signals=(signal.SIGINT, signal.SIGTERM)))
        if self._failure is not None:
            raise self._failure

    def stop(self, timeout: float = 60.0) -> None:
        if self._loop is not None and self._stop_requested is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop_requested.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def _thread_main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory(self.config.event_loop)) as runner:
                runner.run(self._main(None, None, signals=()))
        except BaseException as error:  # noqa: BLE001 - reported to start()
            self._failure = error
        finally:
            self._listening.set()
            self._ready.set()

    async def _main(self, on_listening, on_ready, signals) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        for sig in signals:
            self._loop.add_signal_handler(sig, self._stop_requested.set)
        self.log.start()
        runner = web.AppRunner(self.endpoint.app(), shutdown_timeout=self.config.shutdown_timeout, access_log=None)
        reloader = None
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
            self.endpoint.guard.attach(runner.server)
            if runner.addresses:
                self.port = runner.addresses[0][1]
            self._listening.set()
            if on_listening is not None:
                on_listening(self)
            try:
                await self._load_initial()
            except BaseException as error:
                self._failure = error
                return
            self._ready.set()
            if on_ready is not None:
                on_ready(self)
            if self.source is not None and self.source.follows:
                reloader = asyncio.get_running_loop().create_task(self._follow(), name="sqlml-reloader")
            await self._stop_requested.wait()
        finally:
            self.endpoint.stopping = True
            if reloader is not None:
                reloader.cancel()
            await runner.cleanup()  # stop accepting; wait for in-flight requests
            await self.endpoint.close()  # the batchers finish what they hold
            self.log.close()  # everything logged is written
            self._closed = True

    # -- what is served, and following it ---------------------------------------------------
    async def _load_initial(self) -> None:
        if self._fixed is not None:
            await self.endpoint.install([self.endpoint.deployment(self._fixed)])
            return
        targets = await asyncio.to_thread(self.source.targets)
        await self.endpoint.install(await self._deployments(targets))

    async def _deployments(self, targets) -> list[Deployment]:
        """Deployments for ``targets``: served ones reused, new versions loaded and warmed off the loop."""
        current = {d.predictor.version: d for d in self.endpoint.deployments}
        out = []
        for target in targets:
            existing = current.get(target.version)
            if existing is not None:
                out.append(Deployment(target.label, existing.predictor, existing.batcher, target.weight))
                continue
            predictor = await asyncio.to_thread(self._load_version, target.version)
            out.append(self.endpoint.deployment(predictor, target.label, target.weight))
        return out

    def _load_version(self, version: int):
        from sqlml.serving.predictor import ModelPredictor

        record, state, token = self.source.load(version)
        predictor = ModelPredictor(record, state, token)
        predictor.warm()
        return predictor

    async def _follow(self) -> None:
        """Look the reference up every ``reload_seconds``; switch when it names other versions."""
        while True:
            await asyncio.sleep(self.config.reload_seconds)
            try:
                targets = await asyncio.to_thread(self.source.targets)
                wanted = [(t.label, t.version, round(t.weight, 9)) for t in targets]
                served = [(d.label, d.predictor.version, round(d.weight, 9)) for d in self.endpoint.deployments]
                if wanted != served:
                    await self.endpoint.install(await self._deployments(targets))
                    self.endpoint.reloads += 1
                    access_log.info("serving %s", ", ".join(f"{self.source.model}@{v} ({label}, {w:.0%})" for label, v, w in wanted))
                self.endpoint.reload_error = None
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - keep serving what is loaded; /health says why
                self.endpoint.reload_error = f"{type(error).__name__}: {error}"
