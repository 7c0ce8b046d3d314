"""`sqlml serve` processes under bad clients and beside each other (``make test-all``).

Bounded and loopback only: malformed, oversized, slow and bursty clients against one
server process, which must keep answering good clients and stop cleanly; and two
replicas on one database, each writing its own log, read by a third process meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

import sqlml
from tests.trained import TRAIN_ROWS, train_model

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # fresh interpreters import torch; hundreds of connections


@pytest.fixture
def model_db(db_path):
    with sqlml.connect(db_path) as con:
        con.sql(TRAIN_ROWS)
        train_model(con)
    return db_path


def serve(db_path, *options):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sqlml", "serve", db_path, "--model", "delay", "--port", "0", "--no-access-log", *options],
        stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    for line in process.stderr:
        found = re.search(r"^serving .* on (http://\S+) ", line)
        if found:
            return process, found.group(1)
    raise AssertionError(f"sqlml serve exited with {process.wait()}")


def stop(process):
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


GOOD = {"inputs": [{"a": 0.5, "b": 0.25, "color": "red"}]}


async def good_requests(url, n=40):
    async with aiohttp.ClientSession() as s:
        async def one():
            async with s.post(url + "/predict", json=GOOD) as r:
                return r.status
        return await asyncio.gather(*(one() for _ in range(n)))


def test_bad_clients_do_not_take_the_server_down(model_db):
    process, url = serve(model_db, "--max-connections", "100", "--read-timeout", "1", "--max-body-bytes", "65536", "--max-queue", "64")
    port = int(url.rsplit(":", 1)[1])
    try:
        rng = random.Random(7)
        malformed = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(150)]
        malformed += [b'{"inputs": [' * 50, b'{"inputs": [{"a": 1e999, "b": 0, "color": "red"}]}', b'{"inputs": "x"}',
                      b'{"inputs": [{"a": "1", "b": 0, "color": "red"}]}', b'\xff\xfe{}', b"[" * 10_000]

        async def bad():
            async with aiohttp.ClientSession() as s:
                async def one(body):
                    async with s.post(url + "/predict", data=body) as r:
                        return r.status
                statuses = [await one(body) for body in malformed]
                big = await one(b'{"inputs": [' + b'{"a": 1, "b": 1, "color": "red"},' * 3000 + b"]}")
                return statuses, big

        statuses, big = asyncio.run(bad())
        assert all(400 <= s < 500 for s in statuses), sorted(set(statuses))
        assert big == 413
        # slow clients: half-sent headers and bodies, four times the connection cap
        slow = []
        for k in range(400):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n" + (b"Content-Length: 500\r\n\r\n{" if k % 2 else b""))
            slow.append(sock)
        try:
            assert asyncio.run(good_requests(url)) == [200] * 40
        finally:
            for sock in slow:
                sock.close()

        async def burst():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=90)) as s:
                async def one():
                    async with s.post(url + "/predict", json=GOOD) as r:
                        return r.status
                return await asyncio.gather(*(one() for _ in range(1500)))

        statuses = asyncio.run(burst())
        assert set(statuses) <= {200, 503} and statuses.count(200) > 0
        assert asyncio.run(good_requests(url)) == [200] * 40  # and it recovers
        assert process.poll() is None
    finally:
        stop(process)
    with sqlml.connect(model_db, read_only=True) as con:
        by_status = dict(con.sql("SELECT status, count(*) FROM ml_serving_requests() GROUP BY status").fetchall())
        errors = con.sql("SELECT DISTINCT error FROM ml_serving_requests() WHERE status = 500 LIMIT 3").fetchall()
    assert by_status.get(500, 0) == 0 and by_status[200] >= 80, (by_status, errors)


def test_two_replicas_serve_one_database_each_with_its_own_log(model_db):
    first, url1 = serve(model_db)
    second, url2 = serve(model_db)
    try:
        answers = asyncio.run(good_requests(url1, 30)) + asyncio.run(good_requests(url2, 30))
        assert answers == [200] * 60
        with sqlml.connect(model_db) as con:  # a third process-like reader: the database is free
            assert con.sql("SELECT count(*) FROM ml_serving_requests()").fetchall()[0][0] <= 60
    finally:
        stop(first)
        stop(second)
    with sqlml.connect(model_db, read_only=True) as con:
        rows = con.sql("SELECT server, count(*) FROM ml_serving_requests() GROUP BY server ORDER BY server").fetchall()
    assert [count for _, count in rows] == [30, 30] and rows[0][0] != rows[1][0]
    assert json.loads(json.dumps(rows))  # plain values
