"""Training benchmark: the sqlml feed vs pandas + DataLoader, and data-parallel vs single process.

Part 1, the feed: a DuckDB table of ROWS x 16 FLOAT columns is read into torch batches
by (a) sqlml's feed (staging through ``to_arrow_reader`` into a memory-mapped Arrow
file, then block-shuffled, encoded batches from a prefetch thread), (b) the usual
pandas route (``.df()`` from DuckDB, a TensorDataset, a batched sampler), and (c) the
per-sample DataLoader most tutorials show (``batch_size=1024``, default collate; timed
on its first 1M rows). Each method runs in a fresh process, touches every value
(``x.sum()``) and reports rows/s and peak memory (resident anonymous memory, sampled,
plus the high-water mark that also counts memory-mapped pages).

Part 2, training: the same CREATE MODEL with ``strategy := 'single'`` and
``'data_parallel'`` (2 gloo worker processes), epoch time and the largest weight
difference (SGD, so equal weights mean equal gradients).

    python bench/training.py [--rows 10000000] [--device cpu|cuda] [--out bench/results/training.json]

With ``--device cuda`` every feed batch is also copied to the GPU and the training runs
use the GPU. Numbers from a shared 2-vCPU machine swing by tens of percent: compare the
ratios printed, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = 16
PER_SAMPLE_ROWS = 1_000_000


# -- measuring one method in this process -----------------------------------------------------


class MemoryWatch:
    """Peak resident anonymous memory (RssAnon), sampled every 20 ms, in MB; ``phase()`` starts a new peak."""

    def __init__(self):
        self.peak = 0.0
        self.phases: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _status("RssAnon"))
            time.sleep(0.02)

    def phase(self, name: str) -> None:
        """Close the current phase under ``name`` and start measuring the next from now."""
        self.phases[name] = round(max(self.peak, _status("RssAnon")), 1)
        self.peak = _status("RssAnon")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status("RssAnon"))


def _status(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def consume(batches, device) -> tuple[int, float]:
    import torch

    rows, total = 0, 0.0
    for x in batches:
        if device != "cpu":
            x = x.to(device, non_blocking=True)
        total += float(x.sum())
        rows += x.shape[0]
    if device != "cpu":
        torch.cuda.synchronize()
    return rows, total


def run_method(args) -> dict:
    import duckdb
    import numpy as np
    import pandas  # noqa: F401 - imported before any clock starts, for every method alike
    import pyarrow.compute  # noqa: F401
    import torch
    import torch.utils.data  # noqa: F401

    torch.set_num_threads(1)
    db = os.path.join(args.work_dir, "feed.duckdb")
    columns = ", ".join(f"c{i}" for i in range(COLUMNS))
    query = f"SELECT {columns}, label FROM t"
    result: dict = {"method": args.method}
    with MemoryWatch() as memory:
        if args.method.startswith("sqlml"):
            import sqlml
            from sqlml.training.feed import Feed
            from sqlml.training.options import settle
            from sqlml.training.staging import stage

            con = sqlml.connect(db, read_only=True)
            con.sql("SET threads = 1")
            started, used = time.perf_counter(), time.process_time()
            training = stage(con.duckdb, query, settle({"normalize": False}), directory=tempfile.mkdtemp(dir=args.work_dir))
            result["staging_s"] = time.perf_counter() - started
            result["staging_cpu_s"] = time.process_time() - used
            con.close()  # the feed reads the staged file, not the database
            memory.phase("staging")
            result["anon_mb_before_epochs"] = round(_status("RssAnon"), 1)
            feed = Feed(training, batch_size=args.batch, shuffle=args.method == "sqlml_shuffled")
            epochs, cpu = [], []
            for epoch in range(2):
                started, used = time.perf_counter(), time.process_time()
                rows, _ = consume((b.x for b in feed(epoch)), args.device)
                epochs.append(time.perf_counter() - started)
                cpu.append(time.process_time() - used)
            result.update(rows=rows, epoch_s=epochs, epoch_cpu_s=cpu, first_epoch_with_staging_s=result["staging_s"] + epochs[0])
            result["rows_per_s"] = rows / min(epochs)
            result["rows_per_s_first_epoch_with_staging"] = rows / result["first_epoch_with_staging_s"]
            memory.phase("epochs")
            training.cleanup()
        elif args.method == "duckdb_arrow_stream":
            con = duckdb.connect(db, read_only=True)
            con.execute("SET threads = 1")
            packed = f"SELECT [{columns}]::FLOAT[{COLUMNS}] AS x FROM t"
            started = time.perf_counter()

            def batches():
                for rb in con.sql(packed).to_arrow_reader(args.batch):
                    values = rb.column(0).values.to_numpy(zero_copy_only=True)
                    yield torch.from_numpy(values.reshape(-1, COLUMNS))

            rows, _ = consume(batches(), args.device)
            elapsed = time.perf_counter() - started
            result.update(rows=rows, epoch_s=[elapsed], rows_per_s=rows / elapsed)
        else:
            from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

            con = duckdb.connect(db, read_only=True)
            con.execute("SET threads = 1")
            started, used = time.perf_counter(), time.process_time()
            frame = con.sql(query).df()
            x = torch.from_numpy(frame[[f"c{i}" for i in range(COLUMNS)]].to_numpy(dtype=np.float32))
            y = torch.from_numpy(frame["label"].to_numpy())
            del frame
            result["load_s"] = time.perf_counter() - started
            result["load_cpu_s"] = time.process_time() - used
            con.close()
            memory.phase("load")
            result["anon_mb_before_epochs"] = round(_status("RssAnon"), 1)
            dataset = TensorDataset(x, y)
            if args.method.startswith("pandas_batched"):
                sampler_cls = RandomSampler if args.method.endswith("shuffled") else SequentialSampler
                sampler = BatchSampler(sampler_cls(dataset), args.batch, drop_last=False)
                epochs, cpu = [], []
                for _ in range(2):
                    begun, used = time.perf_counter(), time.process_time()
                    rows, _ = consume((b[0] for b in DataLoader(dataset, batch_size=None, sampler=sampler)), args.device)
                    epochs.append(time.perf_counter() - begun)
                    cpu.append(time.process_time() - used)
                result.update(rows=rows, epoch_s=epochs, epoch_cpu_s=cpu, rows_per_s=rows / min(epochs))
                result["rows_per_s_first_epoch_with_load"] = rows / (result["load_s"] + epochs[0])
                memory.phase("epochs")
            else:  # per-sample indexing + default collate, on the first rows only
                subset = TensorDataset(x[:PER_SAMPLE_ROWS], y[:PER_SAMPLE_ROWS])
                begun, used = time.perf_counter(), time.process_time()
                rows, _ = consume((b[0] for b in DataLoader(subset, batch_size=1024, shuffle=True)), args.device)
                elapsed = time.perf_counter() - begun
                result.update(
                    rows=rows, epoch_s=[elapsed], epoch_cpu_s=[time.process_time() - used], rows_per_s=rows / elapsed,
                    note=f"iteration over the first {rows:,} rows",
                )
    if "epoch_cpu_s" in result:
        result["rows_per_cpu_s"] = result["rows"] / min(result["epoch_cpu_s"])
    result["peak_anon_mb"] = max([round(memory.peak, 1), *memory.phases.values()])
    result["peak_anon_mb_by_phase"] = memory.phases
    result["peak_rss_incl_mapped_mb"] = round(_status("VmHWM"), 1)
    return result


# -- orchestrating -------------------------------------------------------------------------------


def make_table(work_dir: str, rows: int) -> None:
    import duckdb

    db = os.path.join(work_dir, "feed.duckdb")
    if os.path.exists(db):
        con = duckdb.connect(db, read_only=True)
        if con.execute("SELECT count(*) FROM t").fetchall()[0][0] == rows:
            return
        con.close()
        os.remove(db)
    con = duckdb.connect(db)
    cols = ", ".join(f"random()::FLOAT AS c{i}" for i in range(COLUMNS))
    con.execute(f"CREATE TABLE t AS SELECT {cols}, (range % 2)::INTEGER AS label FROM range({rows})")
    con.close()


def in_fresh_process(args, method: str) -> dict:
    cmd = [sys.executable, __file__, "--method", method, "--work-dir", args.work_dir]
    cmd += ["--rows", str(args.rows), "--batch", str(args.batch), "--device", args.device]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def training_runs(args) -> dict:
    """single vs data_parallel on the same CREATE MODEL, same process."""
    import torch

    import sqlml

    torch.set_num_threads(1)
    con = sqlml.connect()
    cols = ", ".join(f"(hash(i, {k}) % 1000) / 1000.0 AS f{k}" for k in range(COLUMNS))
    con.sql(f"CREATE TABLE d AS SELECT {cols}, (f0 + f1 > 1)::INT AS label FROM range({args.train_rows}) r(i)")
    if args.device == "cuda" and torch.cuda.device_count() < 2:
        return {"skipped": "data_parallel on CUDA needs 2 GPUs; this machine has " + str(torch.cuda.device_count())}
    options = (
        f"epochs := {args.epochs}, batch_size := 512, optimizer := 'sgd', lr := 0.1, momentum := 0.0, "
        f"hidden := [256, 256], device := '{args.device}', progress := false, threads := 1"
    )
    query = "SELECT * FROM d"
    out = {"rows": args.train_rows, "epochs": args.epochs, "features": COLUMNS, "model": "mlp [256, 256]"}
    for strategy in ("single", "data_parallel"):
        extra = ", strategy := 'data_parallel', workers := 2" if strategy == "data_parallel" else ""
        started = time.perf_counter()
        con.sql(f"CREATE MODEL {strategy} WITH ({options}{extra}) AS {query}")
        total = time.perf_counter() - started
        epochs = [r[0] for r in con.sql("SELECT seconds FROM sqlml.training_runs WHERE model = ? ORDER BY epoch", [strategy]).fetchall()]
        out[strategy] = {"total_s": total, "epoch_s": epochs, "median_epoch_s": sorted(epochs)[len(epochs) // 2]}
    out["max_abs_weight_difference_after_training"] = _weight_difference(con, "single", "data_parallel")
    # one global batch, SGD with lr 1: the weight difference is the gradient difference
    check = "epochs := 1, batch_size := 4096, optimizer := 'sgd', lr := 1.0, momentum := 0.0, hidden := [256, 256], progress := false"
    gradient_query = "SELECT * FROM d LIMIT 4096"
    con.sql(f"CREATE MODEL grad_single WITH ({check}) AS {gradient_query}")
    con.sql(f"CREATE MODEL grad_ddp WITH ({check}, strategy := 'data_parallel', workers := 2) AS {gradient_query}")
    out["max_abs_gradient_difference_one_step"] = _weight_difference(con, "grad_single", "grad_ddp")
    out["ddp_over_single_epoch"] = out["data_parallel"]["median_epoch_s"] / out["single"]["median_epoch_s"]
    out["ddp_over_single_total"] = out["data_parallel"]["total_s"] / out["single"]["total_s"]
    return out


def _weight_difference(con, a: str, b: str) -> float:
    import io

    import torch

    weights = {}
    for name in (a, b):
        blob = con.sql("SELECT weights FROM sqlml.models WHERE name = ?", [name]).fetchall()[0][0]
        weights[name] = torch.load(io.BytesIO(blob), weights_only=True)
    return max((weights[a][k] - weights[b][k]).abs().max().item() for k in weights[a])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the feed table")
    parser.add_argument("--batch", type=int, default=65_536, help="feed batch size")
    parser.add_argument("--train-rows", type=int, default=200_000, help="rows for the single vs data-parallel runs")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--work-dir", default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--only", choices=["feed", "training"], help="run one part, keeping the other's results in --out")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "training.json"))
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_method(args)))
        return
    out = Path(args.out)
    results = json.loads(out.read_text()) if args.only and out.exists() else {}
    if args.only != "training":
        results.update(feed_runs(args))
    if args.only != "feed":
        print(f"training: single vs data_parallel, {args.train_rows:,} rows, {args.epochs} epochs", flush=True)
        results["training"] = t = training_runs(args)
        if "skipped" in t:
            print("  " + t["skipped"])
        else:
            print(
                f"  single {t['single']['median_epoch_s']:.2f} s/epoch, data_parallel {t['data_parallel']['median_epoch_s']:.2f} s/epoch "
                f"({t['ddp_over_single_epoch']:.2f}x), total {t['ddp_over_single_total']:.2f}x; max gradient difference "
                f"{t['max_abs_gradient_difference_one_step']:.1e}, weights after training {t['max_abs_weight_difference_after_training']:.1e}"
            )
    results["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


def feed_runs(args) -> dict:
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix="sqlml-bench-training-")
    os.makedirs(args.work_dir, exist_ok=True)
    print(f"feed table: {args.rows:,} rows x {COLUMNS} FLOAT in {args.work_dir}", flush=True)
    make_table(args.work_dir, args.rows)
    methods = ["sqlml_shuffled", "sqlml_sequential", "duckdb_arrow_stream", "pandas_batched", "pandas_batched_shuffled", "per_sample_dataloader"]
    feed = {}
    for method in methods:
        feed[method] = r = in_fresh_process(args, method)
        phases = ", ".join(f"{k} {v:.0f}" for k, v in r["peak_anon_mb_by_phase"].items())
        print(
            f"  {method:<26} {r['rows_per_s'] / 1e6:6.2f} M rows/s   peak anon {r['peak_anon_mb']:6.0f} MB ({phases or 'one phase'})",
            flush=True,
        )
    ratio = lambda a, b, key="rows_per_s": feed[a][key] / feed[b][key]  # noqa: E731
    ratios = {
        "sqlml_shuffled_vs_pandas_batched_shuffled": ratio("sqlml_shuffled", "pandas_batched_shuffled"),
        "sqlml_sequential_vs_pandas_batched": ratio("sqlml_sequential", "pandas_batched"),
        "sqlml_shuffled_vs_per_sample": ratio("sqlml_shuffled", "per_sample_dataloader"),
        "sqlml_first_epoch_with_staging_vs_pandas_first_epoch_with_load": feed["sqlml_shuffled"]["rows_per_s_first_epoch_with_staging"]
        / feed["pandas_batched_shuffled"]["rows_per_s_first_epoch_with_load"],
        "cpu_time_sqlml_shuffled_vs_pandas_batched_shuffled": ratio("sqlml_shuffled", "pandas_batched_shuffled", "rows_per_cpu_s"),
        "cpu_time_sqlml_sequential_vs_pandas_batched": ratio("sqlml_sequential", "pandas_batched", "rows_per_cpu_s"),
        "cpu_time_sqlml_shuffled_vs_per_sample": ratio("sqlml_shuffled", "per_sample_dataloader", "rows_per_cpu_s"),
    }
    for name, value in ratios.items():
        print(f"  {name}: {value:.2f}x")
    return {"device": args.device, "rows": args.rows, "columns": COLUMNS, "batch": args.batch, "feed": feed, "ratios": ratios}


if __name__ == "__main__":
    main()
