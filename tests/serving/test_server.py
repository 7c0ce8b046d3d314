"""The online endpoint: valid, malformed, oversized and concurrent requests, overload,
the answer cache, metrics, and a graceful shutdown that loses nothing from the log."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

import sqlml
from sqlml.serving.batcher import BatchPolicy
from sqlml.serving.server import Server, ServerConfig

from .fakes import FakePredictor, row


@pytest.fixture
def serve(db_path):
    started = []

    def start(predictor=None, policy=None, **config):
        predictor = predictor or FakePredictor()
        server = Server(db_path, predictor=predictor, policy=policy, config=ServerConfig(port=0, **config)).start()
        started.append(server)
        return server, predictor

    yield start
    for server in started:
        server.stop()


def run(coro):
    return asyncio.run(coro)


async def post(session, server, body, *, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    async with session.post(server.url + "/predict", data=data) as response:
        return response.status, await response.json(), response.headers


def log_rows(db_path, sql):
    """The servers' log as any process reads it: through sqlml's functions (the server holds no database)."""
    with sqlml.connect(db_path) as con:
        return con.sql(sql).fetchall()


def test_valid_request_is_answered_and_logged(serve, db_path):
    server, predictor = serve()

    async def go():
        async with aiohttp.ClientSession() as s:
            return await post(s, server, {"inputs": [row(1), row(2.5, "plus"), row(None)]})

    status, body, headers = run(go())
    assert status == 200
    assert body["model"] == "fake" and body["version"] == 1
    assert [p["value"] for p in body["predictions"]] == [2, 6.0, None]
    assert headers["X-Request-Id"] == body["request_id"]
    server.stop()
    requests = log_rows(db_path, "SELECT request_id, status, rows, error FROM ml_serving_requests()")
    assert requests == [(body["request_id"], 200, 3, None)]
    logged = log_rows(
        db_path,
        "SELECT row_index, features->>'b', CAST(features->'a' AS DOUBLE), prediction->>'value', cached "
        "FROM ml_serving_predictions() ORDER BY row_index",
    )
    assert logged == [(0, "x", 1.0, "2", False), (1, "plus", 2.5, "6.0", False), (2, "x", None, None, False)]


@pytest.mark.parametrize(
    "body, status, kind, field",
    [
        ({"rows": []}, 422, "unknown_field", "rows"),
        ({}, 422, "missing_field", "inputs"),
        ({"inputs": []}, 422, "invalid_value", "inputs"),
        ({"inputs": [5]}, 422, "invalid_value", "inputs[0]"),
        ({"inputs": [{"a": 1, "b": "x"}]}, 422, "missing_field", "inputs[0].v"),
        ({"inputs": [row(1), {**row(1), "c": 2}]}, 422, "unknown_field", "inputs[1].c"),
        ({"inputs": [row("7")]}, 422, "invalid_type", "inputs[0].a"),
        ({"inputs": [row(True)]}, 422, "invalid_type", "inputs[0].a"),
        ({"inputs": [row(1, b=3)]}, 422, "invalid_type", "inputs[0].b"),
        ({"inputs": [row(1, v=[1.0])]}, 422, "invalid_type", "inputs[0].v"),
        ({"inputs": [row(1, v=[1.0, "x"])]}, 422, "invalid_type", "inputs[0].v[1]"),
        ({"inputs": [row(1)] * 11}, 413, "too_many_inputs", "inputs"),
        ([1, 2], 422, "invalid_body", None),
    ],
)
def test_bad_requests_get_4xx_json_naming_the_field(serve, body, status, kind, field):
    server, predictor = serve(max_rows=10)

    async def go():
        async with aiohttp.ClientSession() as s:
            return await post(s, server, body)

    got_status, got, _ = run(go())
    assert (got_status, got["error"]["type"], got["error"]["field"]) == (status, kind, field)
    assert got["error"]["message"]
    assert predictor.batches == []


def test_malformed_and_oversized_bodies(serve, db_path):
    server, predictor = serve(max_body_bytes=2000)

    async def go():
        async with aiohttp.ClientSession() as s:
            bad = await post(s, server, None, raw=b'{"inputs": [')
            binary = await post(s, server, None, raw=b"\xff\xfe\x00")
            big = await post(s, server, {"inputs": [row(i) for i in range(200)]})
            return bad, binary, big

    bad, binary, big = run(go())
    assert bad[0] == 400 and bad[1]["error"]["type"] == "invalid_json"
    assert binary[0] == 400
    assert big[0] == 413 and big[1]["error"]["type"] == "body_too_large"
    server.stop()
    assert log_rows(db_path, "SELECT status FROM ml_serving_requests() ORDER BY status") == [(400,), (400,), (413,)]


def test_concurrent_requests_are_batched_and_each_gets_its_answer(serve, db_path):
    server, predictor = serve(FakePredictor(delay=0.005))

    async def go():
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as s:
            return await asyncio.gather(*[post(s, server, {"inputs": [row(i)]}) for i in range(200)])

    answers = run(go())
    assert [a[0] for a in answers] == [200] * 200
    assert [a[1]["predictions"][0]["value"] for a in answers] == [2 * i for i in range(200)]
    assert sum(predictor.batches) == 200
    assert len(predictor.batches) < 100 and max(predictor.batches) > 1
    server.stop()
    assert log_rows(db_path, "SELECT count(*), sum(rows) FROM ml_serving_requests()") == [(200, 200)]


def test_unbatched_policy_runs_one_request_per_model_call(serve):
    server, predictor = serve(policy=BatchPolicy.unbatched())

    async def go():
        async with aiohttp.ClientSession() as s:
            return await asyncio.gather(*[post(s, server, {"inputs": [row(i)]}) for i in range(30)])

    assert all(a[0] == 200 for a in run(go()))
    assert predictor.batches == [1] * 30


def test_overload_answers_503_instead_of_queueing_forever(serve, db_path):
    policy = BatchPolicy(max_batch=1, initial_batch=1, max_queue=4)
    server, predictor = serve(FakePredictor(delay=0.05), policy=policy)

    async def go():
        async with aiohttp.ClientSession() as s:
            return await asyncio.gather(*[post(s, server, {"inputs": [row(i)]}) for i in range(20)])

    answers = run(go())
    statuses = [a[0] for a in answers]
    assert statuses.count(503) > 0 and statuses.count(200) >= 4
    rejected = [a for a in answers if a[0] == 503][0]
    assert rejected[1]["error"]["type"] == "overloaded" and rejected[2]["Retry-After"] == "1"
    server.stop()
    logged = dict(log_rows(db_path, "SELECT status, count(*) FROM ml_serving_requests() GROUP BY status"))
    assert logged == {s: statuses.count(s) for s in set(statuses)}


def test_model_errors_are_500_json(serve):
    server, predictor = serve(FakePredictor(fail_on=13.0))

    async def go():
        async with aiohttp.ClientSession() as s:
            return await post(s, server, {"inputs": [row(13.0)]})

    status, body, _ = run(go())
    assert status == 500 and "cannot score" in body["error"]["message"]


def test_prediction_cache_answers_repeated_inputs(serve, db_path):
    server, predictor = serve()

    async def go():
        async with aiohttp.ClientSession() as s:
            first = await post(s, server, {"inputs": [row(4), row(5)]})
            second = await post(s, server, {"inputs": [row(5), row(6)]})
            async with s.get(server.url + "/metrics") as r:
                return first, second, await r.text()

    first, second, metrics = run(go())
    assert [p["value"] for p in second[1]["predictions"]] == [10, 12]
    assert sum(predictor.batches) == 3
    assert "sqlml_cache_hits_total 1" in metrics and "sqlml_cache_misses_total 3" in metrics
    server.stop()
    cached = log_rows(db_path, "SELECT cached FROM ml_serving_predictions() ORDER BY logged_at, request_id, row_index")
    assert sorted(c for (c,) in cached) == [False, False, False, True]


def test_health_and_metrics(serve):
    server, predictor = serve()

    async def go():
        async with aiohttp.ClientSession() as s:
            await post(s, server, {"inputs": [row(1)]})
            await post(s, server, {"nope": 1})
            async with s.get(server.url + "/health") as r:
                health = await r.json()
            async with s.get(server.url + "/metrics") as r:
                return health, r.status, await r.text()

    health, status, metrics = run(go())
    assert health["status"] == "ok" and health["model"] == "fake" and health["queue_rows"] == 0
    assert status == 200
    assert 'sqlml_requests_total{version="1",status="200"} 1' in metrics
    assert 'sqlml_requests_total{version="1",status="422"} 1' in metrics
    assert 'sqlml_request_latency_ms{version="1",quantile="0.99"}' in metrics


def test_graceful_shutdown_finishes_in_flight_requests_and_loses_nothing(serve, db_path):
    server, predictor = serve(FakePredictor(delay=0.02), policy=BatchPolicy(max_batch=4, initial_batch=4))

    async def go():
        async with aiohttp.ClientSession() as s:
            tasks = [asyncio.create_task(post(s, server, {"inputs": [row(i)]})) for i in range(40)]
            while not predictor.batches:  # requests are in flight
                await asyncio.sleep(0.005)
            stopping = asyncio.get_running_loop().run_in_executor(None, server.stop)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await stopping
            return results

    results = run(go())
    answered = [r for r in results if isinstance(r, tuple)]
    assert answered and all(r[0] == 200 for r in answered)
    ok_ids = {r[1]["request_id"] for r in answered}
    logged = log_rows(db_path, "SELECT request_id FROM ml_serving_requests() WHERE status = 200")
    assert {r for (r,) in logged} == ok_ids
    predictions = log_rows(db_path, "SELECT count(*) FROM ml_serving_predictions()")
    assert predictions == [(len(ok_ids),)]


def test_event_loop_choice():
    import asyncio

    from sqlml.serving.server import _loop_factory

    assert _loop_factory("asyncio") is asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        assert _loop_factory("auto") is asyncio.new_event_loop
    else:
        assert _loop_factory("auto") is uvloop.new_event_loop
    with pytest.raises(ValueError, match="event_loop"):
        _loop_factory("trio")
