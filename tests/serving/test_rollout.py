"""Serving without owning the database (issue 16): aliases, hot reload, traffic splits,
readiness, a database held by another process, and the log read while servers run."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import aiohttp
import duckdb
import pytest

import sqlml
from sqlml.serving.server import Server, ServerConfig
from sqlml.serving.source import DatabaseBusy
from tests.trained import TRAIN_ROWS, train_model


@pytest.fixture
def two_versions(db_path):
    """A database file with model delay at versions 1 and 2 (closed: no process holds it)."""
    with sqlml.connect(db_path) as con:
        con.sql(TRAIN_ROWS)
        train_model(con, epochs=1, seed=0)
        train_model(con, epochs=2, seed=1, replace=True)
    return db_path


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def predict(server, inputs=None):
    inputs = inputs or [{"a": 0.5, "b": 0.5, "color": "red"}]
    request = urllib.request.Request(server.url + "/predict", data=json.dumps({"inputs": inputs}).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_for(condition, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_aliases_from_sql(two_versions):
    with sqlml.connect(two_versions) as con:
        con.sql("ALTER MODEL delay SET ALIAS production = 1")
        con.sql("ALTER MODEL delay SET ALIAS candidate = 2")
        row = "0.9, 0.9, 'red'"
        assert con.sql(f"SELECT ml_predict_proba('delay@production', {row}) = ml_predict_proba('delay@1', {row})").fetchall() == [(True,)]
        assert con.sql(f"SELECT ml_predict_proba('delay@candidate', {row}) = ml_predict_proba('delay', {row})").fetchall() == [(True,)]
        with pytest.raises(sqlml.UnknownObjectError, match="delay@staging"):
            con.sql(f"SELECT ml_predict('delay@staging', {row})").fetchall()
        with pytest.raises(sqlml.DataError, match="alias production"):
            con.sql("DROP MODEL delay VERSION 1")
        with pytest.raises(sqlml.SqlmlSyntaxError):
            con.sql("ALTER MODEL delay SET ALIAS 9lives = 1")
        with pytest.raises(sqlml.UnknownObjectError):
            con.sql("ALTER MODEL delay SET ALIAS production = 7")
        con.sql("ALTER MODEL delay SET ALIAS production = 2")  # the rollout
        assert con.sql("SELECT ml_predict_proba('delay@production', 0.9, 0.9, 'red') = ml_predict_proba('delay@2', 0.9, 0.9, 'red')").fetchall() == [(True,)]
        con.sql("ALTER MODEL delay DROP ALIAS candidate")
        con.sql("ALTER MODEL delay DROP ALIAS IF EXISTS candidate")
        con.sql("DROP MODEL delay VERSION 1")  # nothing points at it any more


def test_the_server_holds_no_database_and_follows_an_alias(two_versions):
    with sqlml.connect(two_versions) as con:
        con.sql("ALTER MODEL delay SET ALIAS production = 1")
    server = Server(two_versions, "delay@production", config=ServerConfig(port=0, reload_seconds=0.1)).start()
    try:
        assert predict(server)[1]["version"] == 1
        # the database is free: another connection writes while the server serves
        with sqlml.connect(two_versions) as con:
            con.sql("ALTER MODEL delay SET ALIAS production = 2")
        assert wait_for(lambda: predict(server)[1]["version"] == 2)
        status, health = get(server.url + "/health")
        assert health["reloads"] == 1 and health["versions"] == [{"label": "production", "version": 2, "share": 1.0}]
    finally:
        server.stop()


def test_no_request_fails_during_a_hot_reload(two_versions):
    with sqlml.connect(two_versions) as con:
        con.sql("ALTER MODEL delay SET ALIAS production = 1")
    server = Server(two_versions, "delay@production", config=ServerConfig(port=0, reload_seconds=0.05, cache_entries=0)).start()
    try:
        async def load(stop):
            results = []
            async with aiohttp.ClientSession() as s:
                async def client():
                    while not stop.is_set():
                        async with s.post(server.url + "/predict", json={"inputs": [{"a": 0.5, "b": 0.1, "color": "blue"}]}) as r:
                            results.append((r.status, (await r.json()).get("version")))
                await asyncio.gather(*(client() for _ in range(16)))
            return results

        async def go():
            stop = asyncio.Event()
            task = asyncio.create_task(load(stop))
            await asyncio.sleep(0.3)
            with sqlml.connect(two_versions) as con:
                con.sql("ALTER MODEL delay SET ALIAS production = 2")
            await asyncio.sleep(1.5)
            stop.set()
            return await task

        results = asyncio.run(go())
    finally:
        server.stop()
    assert {status for status, _ in results} == {200}
    versions = [v for _, v in results]
    assert versions[0] == 1 and versions[-1] == 2
    switch = versions.index(2)
    assert 1 not in versions[switch + 16 :]  # once switched, old answers only from requests already in flight


def test_a_traffic_split_serves_both_versions_with_per_version_metrics_and_log(two_versions):
    with sqlml.connect(two_versions) as con:
        con.sql("ALTER MODEL delay SET ALIAS production = 1")
        con.sql("ALTER MODEL delay SET ALIAS candidate = 2")
        con.sql("ALTER MODEL delay SET TRAFFIC production = 70, candidate = 30")
        with pytest.raises(sqlml.DataError, match="traffic split"):
            con.sql("ALTER MODEL delay DROP ALIAS candidate")
    server = Server(two_versions, "delay", config=ServerConfig(port=0, cache_entries=0)).start()
    try:
        versions = [predict(server)[1]["version"] for _ in range(200)]
        with urllib.request.urlopen(server.url + "/metrics", timeout=30) as r:
            metrics = r.read().decode()
    finally:
        server.stop()
    share = versions.count(1) / len(versions)
    assert 0.55 < share < 0.85, share
    assert f'sqlml_requests_total{{version="1",status="200"}} {versions.count(1)}' in metrics
    assert f'sqlml_requests_total{{version="2",status="200"}} {versions.count(2)}' in metrics
    assert 'sqlml_traffic_share{version="2"} 0.3' in metrics
    with sqlml.connect(two_versions, read_only=True) as con:
        logged = dict(con.sql("SELECT version, count(*) FROM ml_serving_predictions() GROUP BY version").fetchall())
    assert logged == {1: versions.count(1), 2: versions.count(2)}


def test_ready_only_after_the_model_is_loaded_and_warmed(two_versions, monkeypatch):
    from sqlml.serving import predictor as predictor_module

    warmed = []
    original = predictor_module.ModelPredictor.warm

    def slow_warm(self, rounds=3):
        time.sleep(1.0)
        original(self, rounds)
        warmed.append(self.version)

    monkeypatch.setattr(predictor_module.ModelPredictor, "warm", slow_warm)
    server = Server(two_versions, "delay", config=ServerConfig(port=0)).start(wait_ready=False)
    try:
        assert get(server.url + "/ready")[0] == 503
        assert get(server.url + "/health")[1]["status"] == "starting"
        assert predict(server)[0] == 503
        assert wait_for(lambda: get(server.url + "/ready")[0] == 200)
        assert warmed == [2] and predict(server)[0] == 200
    finally:
        server.stop()


HOLD = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)"


@pytest.fixture
def held(two_versions):
    """Another process holding the database read-write (as a notebook would)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, two_versions], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    with pytest.raises(duckdb.IOException):
        duckdb.connect(two_versions, read_only=True)  # DuckDB's rule: not even read-only
    yield two_versions
    process.kill()
    process.wait()


def test_an_unpublished_model_on_a_held_database_is_refused_clearly(held):
    with pytest.raises(DatabaseBusy, match=r"held by another process \(pid \d+\).*ALTER MODEL delay SET ALIAS"):
        Server(held, "delay", config=ServerConfig(port=0, open_timeout=0.3))


def test_a_published_model_serves_while_another_process_holds_the_database(tmp_path):
    db_path = str(tmp_path / "held.duckdb")
    with sqlml.connect(db_path) as con:
        con.sql(TRAIN_ROWS)
        train_model(con, epochs=1)
        con.sql("ALTER MODEL delay SET ALIAS production = 1")  # publishes it
    process = subprocess.Popen([sys.executable, "-c", HOLD, db_path], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        server = Server(db_path, "delay@production", config=ServerConfig(port=0, open_timeout=0)).start()
        try:
            assert predict(server)[0] == 200
        finally:
            server.stop()
    finally:
        process.kill()
        process.wait()


def test_the_log_is_readable_within_seconds_while_the_server_runs(two_versions):
    server = Server(two_versions, "delay", config=ServerConfig(port=0)).start()
    try:
        answered = [predict(server, [{"a": i / 10, "b": 0.5, "color": "green"}])[1]["request_id"] for i in range(5)]
        started = time.monotonic()
        with sqlml.connect(two_versions, read_only=True) as con:
            def seen():
                query = con.sql("SELECT ml_serving_log_query('delay')").fetchall()[0][0]
                return len(con.sql(query).fetchall()) == 5

            assert wait_for(seen, 5.0)
            assert time.monotonic() - started < 2.5
            ids = {r[0] for r in con.sql("SELECT request_id FROM ml_serving_requests(model := 'delay')").fetchall()}
        assert set(answered) <= ids
    finally:
        server.stop()
