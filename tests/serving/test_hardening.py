"""Bad clients cannot hurt good ones (issue 15, rows 4-6 and the serve options of row 8).

Each test here failed on main before the endpoint validated rows on their own, answered
only valid JSON, capped nesting, connections and read time, bounded its log and checked
its command-line ranges.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import aiohttp
import pyarrow.parquet as pq
import pytest

from sqlml.serving.cli import build_parser, serve_main
from sqlml.serving.requestlog import LogPolicy
from sqlml.serving.segments import live_files

from .fakes import FakePredictor, row
from .test_server import post, run, serve  # noqa: F401 (fixture)


@pytest.mark.parametrize(
    "bad, kind",
    [
        ('{"inputs": [{"a": 10000000000000000000000000000000000000000, "b": "x", "v": [0, 1]}]}', "invalid_type"),  # 1e40 as an integer
        ('{"inputs": [{"a": 1, "b": "\\ud800", "v": [0, 1]}]}', "invalid_value"),  # a lone surrogate
        ('{"inputs": [{"a": 1e308, "b": "x", "v": [0, 1]}]}', "invalid_type"),  # finite, but inf as float32
        ('{"inputs": [{"a": 1, "b": "x", "v": [0, 1e39]}]}', "invalid_type"),
    ],
)
def test_one_bad_request_fails_alone_and_its_batch_mates_are_answered(serve, bad, kind):  # noqa: F811
    server, predictor = serve(FakePredictor(delay=0.01))

    async def go():
        async with aiohttp.ClientSession() as s:
            good = [asyncio.create_task(post(s, server, {"inputs": [row(i)]})) for i in range(40)]
            wrong = await post(s, server, None, raw=bad.encode())
            return wrong, await asyncio.gather(*good)

    wrong, good = run(go())
    assert wrong[0] == 422 and wrong[1]["error"]["type"] == kind
    assert [status for status, _, _ in good] == [200] * 40


def test_answers_are_always_valid_json(serve):  # noqa: F811
    class NaNPredictor(FakePredictor):
        def predict(self, rows):
            return [{"value": float("nan"), "probabilities": [float("inf"), 0.5]} for _ in rows]

    server, _ = serve(NaNPredictor())

    async def go():
        async with aiohttp.ClientSession() as s:
            async with s.post(server.url + "/predict", json={"inputs": [row(1)]}) as r:
                return r.status, await r.text()

    status, text = run(go())
    assert status == 200
    body = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the body"))
    assert body["predictions"] == [{"value": None, "probabilities": [None, 0.5]}]


def test_deep_nesting_is_refused_before_parsing(serve):  # noqa: F811
    server, _ = serve(max_body_bytes=1 << 20)
    deep = b"[" * 100_000 + b"]" * 100_000

    async def go():
        async with aiohttp.ClientSession() as s:
            return await post(s, server, None, raw=b'{"inputs": ' + deep + b"}"), await post(s, server, {"inputs": [row(1)]})

    (status, body, _), after = run(go())
    assert status == 400 and body["error"]["type"] == "too_deep"
    assert after[0] == 200


def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def _closed(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""  # the server closed it
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_slow_headers_and_slow_bodies_are_closed_after_the_read_timeout(serve):  # noqa: F811
    server, _ = serve(read_timeout=0.3)
    slow_header = _connect(server)
    slow_header.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    slow_body = _connect(server)
    slow_body.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\"")
    idle = _connect(server)
    started = time.monotonic()
    assert _closed(slow_header, 5) and _closed(slow_body, 5) and _closed(idle, 5)
    assert time.monotonic() - started < 4
    for sock in (slow_header, slow_body, idle):
        sock.close()


def test_a_flood_of_slow_connections_does_not_starve_real_clients(serve):  # noqa: F811
    server, _ = serve(read_timeout=30.0, max_connections=50)
    flood = []
    for _ in range(200):  # four times the cap, each holding a connection with a half-sent body
        sock = _connect(server)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        flood.append(sock)

    async def go():
        async with aiohttp.ClientSession() as s:
            return await asyncio.gather(*(post(s, server, {"inputs": [row(i)]}) for i in range(40)))

    try:
        answers = run(go())
    finally:
        for sock in flood:
            sock.close()
    assert [status for status, _, _ in answers] == [200] * 40
    assert server.endpoint.guard.open_connections <= 50


def test_the_log_is_bounded_per_request_and_sampled(serve, db_path):  # noqa: F811
    server, _ = serve(log=LogPolicy(flush_seconds=0.05, max_request_bytes=200))
    big = {**row(1), "b": "x" * 1000}

    async def go():
        async with aiohttp.ClientSession() as s:
            return await post(s, server, {"inputs": [big]}), await post(s, server, {"inputs": [row(2)]})

    (big_status, _, _), (small_status, _, _) = run(go())
    server.stop()
    assert big_status == small_status == 200
    folder = server.log.segments.folder
    logged = [r for f in live_files(folder, "predictions") for r in pq.read_table(f.path).to_pylist()]
    features = sorted((r["features"] is None, r["features"]) for r in logged)
    assert [none for none, _ in features] == [False, True]  # the big request is logged without its inputs
    assert len(features[0][1]) < 200


def test_log_sampling_and_the_pending_cap(serve):  # noqa: F811
    server, _ = serve(log=LogPolicy(flush_seconds=60, sample=0.0, max_pending=3))

    async def go():
        async with aiohttp.ClientSession() as s:
            return [await post(s, server, {"inputs": [row(i)]}) for i in range(6)]

    assert [a[0] for a in run(go())] == [200] * 6
    assert server.log.unsampled == 6 and server.log.pending == 3 and server.log.dropped == 3


@pytest.mark.parametrize(
    "option, value",
    [("--port", "99999"), ("--port", "-1"), ("--max-queue", "-1"), ("--max-queue", "0"), ("--max-batch", "0"),
     ("--read-timeout", "0"), ("--log-sample", "1.5"), ("--target-ms", "nan"), ("--max-connections", "x")],
)
def test_every_option_is_checked_against_its_range(option, value, capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["db.duckdb", "--model", "m", option, value])
    assert stopped.value.code == 2
    assert option in capsys.readouterr().err


def test_serving_a_mistyped_path_creates_nothing(tmp_path, capsys):
    missing = tmp_path / "typo.duckdb"
    assert serve_main([str(missing), "--model", "m", "--port", "0"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not missing.exists() and not os.path.exists(str(missing) + ".serving")
    assert serve_main([str(tmp_path / "no" / "such" / "dir.duckdb"), "--model", "m", "--port", "0"]) == 1
    assert "nor does its folder" in capsys.readouterr().err
