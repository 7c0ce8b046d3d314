"""The endpoint serving a trained model, in-process and as ``sqlml serve`` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import pytest

import sqlml
from sqlml.serving.server import Server, ServerConfig
from tests.trained import TRAIN_ROWS, train_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_db(db_path):
    with sqlml.connect(db_path) as con:
        con.sql(TRAIN_ROWS)
        train_model(con)
        rows = con.sql("SELECT a, b, color, ml_predict('delay', a, b, color) FROM train ORDER BY id LIMIT 40").fetchall()
    return db_path, rows


def test_served_predictions_equal_sql_predictions(model_db):
    db_path, rows = model_db
    server = Server(db_path, "delay", config=ServerConfig(port=0)).start()
    try:
        inputs = [{"a": a, "b": b, "color": color} for a, b, color, _ in rows]

        async def go():
            async with aiohttp.ClientSession() as s:
                async with s.post(server.url + "/predict", json={"inputs": inputs}) as r:
                    first = r.status, await r.json()
                async with s.post(server.url + "/predict", json={"inputs": [{"a": 0.5, "b": 0.1, "color": 4}]}) as r:
                    bad = r.status, await r.json()
                return first, bad

        (status, body), bad = asyncio.run(go())
    finally:
        server.stop()
    assert status == 200 and body["model"] == "delay" and body["version"] == 1
    assert [p["label"] for p in body["predictions"]] == [r[3] for r in rows]
    assert all(abs(sum(p["probabilities"].values()) - 1) < 1e-4 for p in body["predictions"])
    assert bad[0] == 422 and bad[1]["error"]["field"] == "inputs[0].color"
    with sqlml.connect(db_path, read_only=True) as con:
        assert con.sql("SELECT count(*) FROM ml_serving_predictions(model := 'delay')").fetchall() == [(40,)]


def test_a_huge_integer_is_scored_and_its_batch_mates_too(model_db):
    """Issue 15: a JSON integer of 1e30 made pyarrow fail the whole batch (500 for 12-15 of 40 good requests)."""
    db_path, rows = model_db
    server = Server(db_path, "delay", config=ServerConfig(port=0)).start()
    try:
        inputs = [{"a": a, "b": b, "color": color} for a, b, color, _ in rows]

        async def go():
            async with aiohttp.ClientSession() as s:
                async def one(body):
                    async with s.post(server.url + "/predict", data=body) as r:
                        return r.status, await r.json()

                good = [asyncio.create_task(one(json.dumps({"inputs": [x]}))) for x in inputs]
                huge = await one('{"inputs": [{"a": 1000000000000000000000000000000, "b": 0.5, "color": "red"}]}')
                return huge, await asyncio.gather(*good)

        huge, good = asyncio.run(go())
    finally:
        server.stop()
    assert huge[0] == 200 and huge[1]["predictions"][0]["label"] in ("late", "on_time")
    assert [status for status, _ in good] == [200] * len(inputs)
    assert [b["predictions"][0]["label"] for _, b in good] == [r[3] for r in rows]


def test_unknown_model_fails_to_start(model_db):
    db_path, _ = model_db
    with pytest.raises(sqlml.UnknownObjectError, match="delay"):
        Server(db_path, "dealy", config=ServerConfig(port=0))


@pytest.mark.slow  # a fresh interpreter imports torch: 10-20 s on a busy machine
def test_sqlml_serve_command_serves_and_stops_on_sigterm(model_db):
    db_path, rows = model_db
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from sqlml.cli import main; sys.exit(main())",
         "serve", db_path, "--model", "delay", "--port", "0", "--max-wait-ms", "1"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        line = process.stderr.readline()
        while line and not line.startswith("serving "):
            line = process.stderr.readline()
        url = re.search(r"on (http://\S+) ", line)
        assert url, line
        inputs = [{"a": a, "b": b, "color": color} for a, b, color, _ in rows[:5]]
        request = urllib.request.Request(
            url.group(1) + "/predict", data=json.dumps({"inputs": inputs}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert [p["label"] for p in body["predictions"]] == [r[3] for r in rows[:5]]
        with urllib.request.urlopen(url.group(1) + "/health", timeout=30) as response:
            assert json.load(response)["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        access = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert re.search(r'127\.0\.0\.1 "POST /predict" 200 ', access), access  # the access log, on stdout
    with sqlml.connect(db_path, read_only=True) as con:
        assert con.sql("SELECT status, rows FROM ml_serving_requests()").fetchall() == [(200, 5)]


def test_sqlml_serve_reports_an_unknown_model(model_db):
    from sqlml.serving.cli import serve_main

    db_path, _ = model_db
    assert serve_main([db_path, "--model", "nope", "--port", "0"]) == 1
