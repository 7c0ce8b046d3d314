"""Chapter 5: serving - batch scoring, the optimizer and its cache, the online endpoint,
aliases and export.

Uses chapter 3's ``delay_clf`` and ``delay_features``; when chapter 3 has not run, it
builds the same view and trains a small stand-in model itself.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from sqlml.demo.ch3_training import FEATURE_VIEW, FEATURES

TITLE = "Chapter 5 - serving: batch scoring, the optimizer, the prediction cache, an endpoint"

MODEL = "delay_clf"


def run(tour) -> None:
    con = tour.con
    _ensure_model(tour)
    classes = con.sql(f"SELECT ml_model_classes('{MODEL}')").fetchall()[0][0]
    late = classes.index("late") + 1  # SQL lists count from 1
    later = 12
    facts = tour.facts.setdefault("serving", {})

    tour.say("\n1. Batch scoring. A whole later month goes through the model in one statement;")
    tour.say("   EXPLAIN ML shows what the optimizer does with it before anything runs.")
    score = (
        f"CREATE OR REPLACE TABLE december_scores AS\n"
        f"SELECT flight_id, ml_predict('{MODEL}', {FEATURES}) AS predicted,\n"
        f"       ml_predict_proba('{MODEL}', {FEATURES})[{late}] AS p_late, truth\n"
        f"FROM delay_features WHERE month = {later}"
    )
    explained = con.sql(f"EXPLAIN ML {score}").fetchall()[0]
    tour.say(f"\n  EXPLAIN ML: rules fired: {', '.join(explained[2]) or 'none'}")
    for step in explained[3]:
        tour.say(f"  before it runs: {step.splitlines()[0]}")
    facts["batch_rules"] = explained[2]
    started = time.perf_counter()
    tour.run(score)
    seconds = time.perf_counter() - started
    rows = tour.show(
        "SELECT count(*) AS flights, round(avg((predicted = truth)::INT), 4) AS accuracy,\n"
        "       count(*) FILTER (WHERE predicted = 'late') AS predicted_late FROM december_scores"
    )
    facts["scored_rows"], facts["batch_accuracy"] = rows[0][0], rows[0][1]
    tour.say(f"  ({rows[0][0]:,} flights scored in {seconds:.2f}s)")

    tour.say("\n2. The optimizer. This query calls the model in WHERE and in SELECT, and many of its")
    tour.say("   rows share their inputs with others. DuckDB alone would call the model twice per row;")
    tour.say("   the rewrite runs cheap filters first, calls the model once per distinct input, and")
    tour.say("   keeps the results in the prediction cache (sqlml.prediction_cache):")
    november = (
        f"SELECT carrier, count(*) AS risky_flights,\n"
        f"       round(avg(ml_predict_proba('{MODEL}', {FEATURES})[{late}]), 3) AS avg_p_late\n"
        f"FROM delay_features\n"
        f"WHERE month = 11 AND origin = 'JFK' AND ml_predict_proba('{MODEL}', {FEATURES})[{late}] > 0.25\n"
        f"GROUP BY carrier ORDER BY risky_flights DESC LIMIT 5"
    )
    explained = con.sql(f"EXPLAIN ML {november}").fetchall()[0]
    tour.say(f"\n  rules fired: {', '.join(explained[2])}")
    tour.say("  rewritten SQL:")
    for line in explained[1].splitlines():
        tour.say(f"    {line}")
    _timed_show(tour, november, "first run (every input is a cache miss)")
    _timed_show(tour, november, "same query again (every input is a cache hit)")
    overlapping = november.replace("AND origin = 'JFK' ", "")
    tour.say("\n  An overlapping query (all three airports): only the new inputs reach the model.")
    _timed_show(tour, overlapping, "overlapping query")
    cache = tour.show(
        "SELECT function, model, version, lookups, hits, misses, cached_rows FROM ml_prediction_cache() WHERE model = ?",
        [MODEL],
    )
    facts["cache"] = {r[0]: {"lookups": r[3], "hits": r[4], "misses": r[5]} for r in cache}

    tour.say("\n3. Several queries at once share their model calls (multi-query optimization):")
    queries = [
        f"SELECT {g}, count(*) FILTER (WHERE ml_predict('{MODEL}', {FEATURES}) = 'late') AS predicted_late "
        f"FROM delay_features WHERE month = 10 GROUP BY {g} ORDER BY 2 DESC LIMIT 3"
        for g in ("origin", "carrier", "dep_hour")
    ]
    for q in queries:
        tour.say(f"  sqlml> {q}")
    started = time.perf_counter()
    results = [r.fetchall() for r in con.sql_many(queries)]
    tour.say(f"  con.sql_many([...]) -> {len(results)} results in {time.perf_counter() - started:.2f}s; "
             f"the busiest origin: {results[0][0]}")

    tour.say("\n4. The online endpoint. A version gets a name first: the endpoint serves the alias and")
    tour.say("   follows it (moving it is the rollout; `sqlml serve DB --model delay_clf@production` on the")
    tour.say("   command line; here it runs inside this process for a moment). The server never holds the")
    tour.say("   database: it reads the model from files published beside it and logs to files of its own.")
    version = con.sql("SELECT max(version) FROM ml_models(name := ?)", [MODEL]).fetchall()[0][0]
    tour.run(f"ALTER MODEL {MODEL} SET ALIAS production = {version}")
    tour.say(f"  sqlml> ALTER MODEL {MODEL} SET ALIAS production = {version}")
    _serve(tour, facts)

    tour.say("\n5. Training/serving skew: the log holds what the endpoint was sent, readable as the")
    tour.say("   model's typed features, and ml_validate compares it with the training data.")
    _validate(tour, facts)

    tour.say("\n6. The model leaves sqlml: EXPORT MODEL writes ONNX with the feature encoding (standardisation,")
    tour.say("   one-hot categories) inside the graph, so ONNX Runtime takes the raw columns.")
    _export(tour, facts, late)


def _ensure_model(tour) -> None:
    con = tour.con
    has_view = con.sql("SELECT count(*) FROM duckdb_views() WHERE view_name = 'delay_features'").fetchall()[0][0]
    if not has_view:
        tour.run(FEATURE_VIEW)
    has_model = con.sql(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'sqlml' AND table_name = 'models'"
    ).fetchall()[0][0] and con.sql("SELECT count(*) FROM sqlml.models WHERE name = ?", [MODEL]).fetchall()[0][0]
    if has_model:
        tour.say(f"Serving {MODEL}, the delay classifier chapter 3 trained.")
        return
    months, epochs = ("(1)", 2) if tour.quick else ("(1, 2, 3, 4, 5, 6)", 4)
    tour.say(f"Chapter 3 has not run, so a stand-in {MODEL} is trained here on the true delays:")
    tour.show(
        f"CREATE OR REPLACE MODEL {MODEL} WITH (epochs := {epochs}, hidden := [64, 32], seed := 0, classes := ['late', 'on_time']) AS\n"
        f"SELECT {FEATURES}, truth AS label FROM delay_features WHERE month IN {months}"
    )


def _timed_show(tour, sql: str, label: str) -> None:
    started = time.perf_counter()
    tour.show(sql)
    tour.say(f"  ({label}: {time.perf_counter() - started:.2f}s)")


def _serve(tour, facts) -> None:
    from sqlml.serving.server import Server, ServerConfig

    con = tour.con
    server = Server(tour.db_path, f"{MODEL}@production", config=ServerConfig(port=0), connection=con).start()
    try:
        tour.say(f"  listening on {server.url}")
        names = [n.strip() for n in FEATURES.split(",")]
        rows = con.sql(
            f"SELECT * FROM (SELECT {FEATURES} FROM delay_features WHERE month = 12) USING SAMPLE 400 ROWS (reservoir, 7)"
        ).fetchall()
        inputs = [dict(zip(names, row, strict=True)) for row in rows]
        # one client sends distances in kilometres, not miles: a classic training/serving skew
        skewed = [{**x, "distance": round(x["distance"] * 1.609)} for x in inputs[200:]]
        first = _post(server.url, {"inputs": inputs[:1]})
        tour.say(f"  POST /predict {json.dumps({'inputs': inputs[:1]})}")
        tour.say(f"  -> {json.dumps(first[1])}")
        rest = inputs[1:200] + skewed
        answers = [_post(server.url, {"inputs": rest[i : i + 10]}) for i in range(0, len(rest), 10)]
        bad = _post(server.url, {"inputs": [{**inputs[0], "distance": "far"}]})
        tour.say(f"  POST /predict with distance = \"far\" -> {bad[0]} {json.dumps(bad[1])}")
        with urllib.request.urlopen(server.url + "/health", timeout=30) as response:
            tour.say(f"  GET /health -> {response.read().decode()}")
        tour.say(f"  ... and {len(answers)} more requests of 10 inputs each")
        facts["endpoint_ok"] = 1 + sum(1 for status, _ in answers if status == 200)
        facts["endpoint_bad_status"] = bad[0]
    finally:
        server.stop()
    tour.say("  (stopped gracefully: the log is complete)")
    tour.show(
        "SELECT status, version, count(*) AS requests, sum(rows) AS inputs, round(median(latency_ms), 2) AS median_ms\n"
        "FROM ml_serving_requests() GROUP BY ALL ORDER BY status"
    )
    tour.show(
        "SELECT request_id, row_index, features->>'carrier' AS carrier, features->>'distance' AS distance,\n"
        "       prediction->>'label' AS label FROM ml_serving_predictions() ORDER BY logged_at LIMIT 3"
    )


def _post(url: str, body) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/predict", data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _validate(tour, facts) -> None:
    try:
        from sqlml.validation import api  # noqa: F401 - the validation area is present
    except ImportError:
        tour.say("  (data validation is not installed in this build: skipped)")
        return
    months = "(1)" if tour.quick else "(1, 2, 3, 4, 5, 6)"
    tour.run(f"CREATE OR REPLACE DATA SCHEMA delay_serving FROM (SELECT {FEATURES} FROM delay_features WHERE month IN {months})")
    tour.say("\n  The query reading the log back as typed features:")
    tour.show(f"SELECT ml_serving_log_query('{MODEL}') AS query")
    rows = tour.show(
        f"SELECT column_name, anomaly_type, severity, description\n"
        f"FROM ml_validate(ml_serving_log_query('{MODEL}'), 'delay_serving', environment := 'serving')\n"
        f"ORDER BY severity, column_name"
    )
    facts["skew_columns"] = sorted({r[0] for r in rows if r[0]})
    if "distance" in facts["skew_columns"]:
        tour.say("\n  distance stands out: half the inputs came in kilometres where the model learned miles.")
    tour.say("  (Weather columns may differ too: December is not the months the model trained on.)")


def _export(tour, facts, late: int) -> None:
    import os

    try:
        import onnxruntime
    except ImportError:
        tour.say("  (needs the export extra: pip install 'sqlml[export]'; skipped)")
        return
    import numpy as np

    path = os.path.join(tour.out_dir, f"{MODEL}.onnx")
    tour.show(f"EXPORT MODEL '{MODEL}@production' TO '{path.replace(chr(39), chr(39) * 2)}'")
    con = tour.con
    december = con.sql(f"SELECT {FEATURES}, ml_predict_proba('{MODEL}', {FEATURES})[{late}] AS p FROM delay_features "
                       f"WHERE month = 12 ORDER BY flight_id LIMIT 2000").to_arrow_table()
    feeds = {}
    for name in (n.strip() for n in FEATURES.split(",")):
        values = december.column(name).to_numpy(zero_copy_only=False)
        feeds[name] = values.astype(object) if values.dtype == object else values.astype(np.float32)
    session = onnxruntime.InferenceSession(path)
    probabilities = session.run(["probabilities"], feeds)[0][:, late - 1]
    expected = december.column("p").to_numpy(zero_copy_only=False).astype(np.float64)
    ok = ~np.isnan(expected)
    difference = float(np.abs(probabilities[ok] - expected[ok]).max())
    facts["onnx_max_difference"] = difference
    tour.say(f"  ONNX Runtime on {int(ok.sum())} December flights: P(late) differs from ml_predict_proba by at most {difference:.1e}.")
    tour.say("  (TorchScript: TO 'delay_clf.pt'; weights with the encoding as metadata: TO 'delay_clf.safetensors';")
    tour.say("   IMPORT MODEL name FROM 'file' brings any of them back as a new version.)")
