"""Weak supervision, sqlml side by side with snorkel 0.10 and scikit-learn (measured in the same run).

    bash bench/setup_snorkel.sh                        # once: the anchor in bench/.venv-snorkel
    flock /tmp/sqlml-bench.lock .venv/bin/python bench/weak_supervision.py [--data ../shared/data] [--quick]

Every ratio is the median of per-round ratios of paired, interleaved rounds (bench/rounds.py),
with min and max; both sides are warm, persistent processes given the same threads.

1. Applying 10 keyword LFs to 100k short texts: sqlml SQL LFs (and Python Arrow LFs) vs
   snorkel's PandasLFApplier (the label matrices must be identical); 1 DuckDB thread vs
   snorkel's single-threaded applier, and DuckDB's 2 threads beside it.
2. The whole CREATE LABEL MODEL at 1M rows x 10 LFs (synthetic, known truth; balanced and
   90/10 without the prior) vs snorkel LabelModel.fit + predict_proba, both sides on 1 thread,
   then both on 2 threads; peak memory; accuracy vs the true-parameter posterior; then the
   fitted model applied to 1M new rows (ml_label_model_predict): time and peak memory.
3. WRENCH youtube / sms / trec: votes imported (CREATE LABELING FUNCTIONS ... FROM COLUMN
   weak_labels); every sqlml method vs snorkel's LabelModel and majority vote on the test split
   (snorkel's probs_to_preds, WRENCH's tie-break).
4. The end model: a text model (CREATE MODEL ... text := ['text'], soft labels and weights) trained
   on sqlml's label model over the train split (+ the valid split as GOLD) and scored on test,
   against the issue's anchor (snorkel labels + scikit-learn LR); its training time on youtube's
   train split beside scikit-learn's TfidfVectorizer + LogisticRegression on the same rows.
5. ml_lf_summary vs LFAnalysis.lf_summary(Y) on WRENCH youtube's valid split.

A missing WRENCH folder stops the run (bench/rounds.py data_folder). Writes
bench/results/weak_supervision.json (weak_supervision_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from procstats import peak_mb, rss_mb  # noqa: E402
from rounds import data_folder, fmt, log, machine, ratio, scratch, summary, write  # noqa: E402
from worker_protocol import Worker, serve_protocol  # noqa: E402
from ws_anchor import KEYWORD_LFS  # noqa: E402  (the same LFs on both sides)

SNORKEL_PY = HERE / ".venv-snorkel" / "bin" / "python"
WORDS = ("the a this video is my song love best i you check out subscribe channel free please http www com lol "
         "great music amazing watch now new like share so good year old beautiful voice part nice").split()
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def snorkel_worker(job: dict, tmp: Path, threads: int = 1) -> Worker:
    """A persistent snorkel-venv process serving ``job`` (see ws_anchor.cmd_serve) on ``threads`` threads."""
    path = tmp / f"job_{job['kind']}_{time.monotonic_ns()}.json"
    path.write_text(json.dumps(job))
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    os.environ.update({v: str(threads) for v in THREAD_VARS})
    try:
        return Worker([str(SNORKEL_PY), str(HERE / "ws_anchor.py"), "serve"], path, tmp / f"{path.stem}.log")
    finally:
        for v, value in saved.items():
            os.environ.pop(v) if value is None else os.environ.__setitem__(v, value)


def sqlml_worker(job: dict, tmp: Path) -> Worker:
    path = tmp / f"job_sqlml_{time.monotonic_ns()}.json"
    path.write_text(json.dumps(job))
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + env_path if env_path else "")
    return Worker([sys.executable, __file__, "--worker"], path, tmp / f"{path.stem}.log")


def rounds_of(a, b, rounds: int, label: str) -> dict[str, list[float]]:
    """Seconds per round of two sides given as callables returning their own seconds, interleaved."""
    times = {"a": [], "b": []}
    for r in range(rounds):
        order = (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a))
        for name, side in order:
            times[name].append(side())
        log(f"{label}: round {r + 1}/{rounds}", {n: round(t[-1], 4) for n, t in times.items()})
    return times


# -- 1. applying LFs ----------------------------------------------------------------------


def synth_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 14, size=n)
    words = np.array(WORDS)[rng.integers(0, len(WORDS), size=lengths.sum())]
    ends = np.cumsum(lengths)
    return [" ".join(words[e - n_words:e]) for e, n_words in zip(ends, lengths)]


def _docs_connection(texts, kind: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    import sqlml

    con = sqlml.connect()
    con.register("texts_src", pa.table({"id": np.arange(len(texts)), "text": texts}))
    con.sql("CREATE TABLE docs AS FROM texts_src")
    con.unregister("texts_src")
    for i, (name, keyword, label) in enumerate(KEYWORD_LFS):
        classes = ["ham", "spam"] if i == 0 else None
        if kind == "sql":
            con.register(sqlml.keyword_lf(name, on="docs", column="text", keywords=[keyword], label=label, classes=classes))
        else:
            def fn(text, keyword=keyword, label=label):
                return pc.if_else(pc.match_substring(pc.utf8_lower(text), keyword), label, None)

            con.register(sqlml.labeling_function(on="docs", inputs=["text"], name=name, classes=classes)(fn))
    return con


def _label_matrix(con, n: int) -> np.ndarray:
    from sqlml.labeling.store import storage_id

    votes = con.sql(f'SELECT id, lf, label FROM sqlml."votes_{storage_id("docs")}"').fetchnumpy()
    L = np.full((n, len(KEYWORD_LFS)), -1)
    L[votes["id"], votes["lf"]] = votes["label"]
    return L


def bench_apply(tmp: Path, n: int, rounds: int) -> dict:
    texts = synth_texts(n)
    (tmp / "texts.txt").write_text("\n".join(texts))
    snorkel = snorkel_worker({"kind": "apply", "texts": str(tmp / "texts.txt"), "out": str(tmp / "L_apply.npy")}, tmp)
    result = {"rows": n, "lfs": len(KEYWORD_LFS)}
    try:
        snorkel.ask("repeat", "run")  # warm-up, and the matrix to compare with
        L_snorkel = np.load(tmp / "L_apply.npy")
        for kind, threads in (("sql", 1), ("sql", 2), ("python", 1)):
            con = _docs_connection(texts, kind)
            con.sql(f"SET threads = {threads}")

            def ours(con=con):
                started = time.perf_counter()
                con.sql("APPLY LABELING FUNCTIONS ON docs KEY id WITH (full := true)")
                return time.perf_counter() - started

            ours()  # warm-up
            times = rounds_of(lambda: snorkel.ask("repeat", "run")["seconds"], ours, rounds, f"apply {kind} {threads}t")
            tag = f"{kind}_{threads}_thread{'s' if threads > 1 else ''}"
            result[tag] = {
                "speedup": ratio({"snorkel": times["a"], "sqlml": times["b"]}, "snorkel", "sqlml"),
                "sqlml": summary(times["b"]), "snorkel": summary(times["a"]),
                "equal_to_snorkel": bool(np.array_equal(_label_matrix(con, n), L_snorkel)),
                "threads": {"sqlml_duckdb": threads, "snorkel": 1},
            }
            log(f"apply {tag}: {fmt(result[tag]['speedup'])}")
            con.close()
    finally:
        snorkel.finish()
    return result


# -- 2. label model at scale -------------------------------------------------------------------


def synthetic(n, m, k, balance, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=balance)
    cov, acc = rng.uniform(0.1, 0.5, m), rng.uniform(0.55, 0.95, m)
    L = np.full((n, m), -1, dtype=np.int8)
    for j in range(m):
        wrong = (y + rng.integers(1, k, size=n)) % k
        L[:, j] = np.where(rng.random(n) < cov[j], np.where(rng.random(n) < acc[j], y, wrong), -1)
    return L, y, acc


def oracle_accuracy(L, y, acc, balance) -> float:
    k = len(balance)
    logp = np.tile(np.log(balance), (len(L), 1))
    for j in range(L.shape[1]):
        fired = L[:, j] >= 0
        for c in range(k):
            lik = np.where(L[:, j] == c, acc[j], (1 - acc[j]) / (k - 1))
            logp[fired, c] += np.log(lik[fired])
    return float((logp.argmax(axis=1) == y).mean())


def _write_votes(path: Path, L: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": np.arange(len(L))} | {f"l{j}": L[:, j] for j in range(L.shape[1])}), path)


def bench_fit(tmp: Path, n: int, balance: list[float], tag: str, rounds: int) -> dict:
    L, y, acc = synthetic(n, 10, len(balance), np.array(balance))
    np.save(tmp / f"L_{tag}.npy", L.astype(np.int64))
    np.save(tmp / f"y_{tag}.npy", y)
    _write_votes(tmp / f"L_{tag}.parquet", L)
    L_new, _, _ = synthetic(n, 10, len(balance), np.array(balance), seed=1)
    L_new = np.where(L_new >= 0, L_new, -1)
    _write_votes(tmp / f"L_{tag}_new.parquet", L_new)
    best = oracle_accuracy(L, y, acc, np.array(balance))
    result = {"rows": n, "lfs": L.shape[1], "class_balance": balance, "oracle_accuracy": best}
    for threads in (1, 2):
        ours = sqlml_worker({"parquet": str(tmp / f"L_{tag}.parquet"), "y": str(tmp / f"y_{tag}.npy"),
                             "new": str(tmp / f"L_{tag}_new.parquet"), "threads": threads}, tmp)
        theirs = snorkel_worker({"kind": "fit", "L": str(tmp / f"L_{tag}.npy"), "threads": threads}, tmp, threads)
        try:
            ours.ask("repeat", "run"), theirs.ask("repeat", "run")  # warm-up
            times = rounds_of(lambda: theirs.ask("repeat", "run")["seconds"],
                              lambda: ours.ask("repeat", "run")["statement_seconds"], rounds, f"fit {tag} {threads}t")
        finally:
            mine, other = ours.finish(), theirs.finish()
        key = f"threads_{threads}"
        result[key] = {
            "statement_vs_fit_plus_predict": ratio({"snorkel": times["a"], "sqlml": times["b"]}, "snorkel", "sqlml"),
            "sqlml_statement": summary(times["b"]), "snorkel_fit_plus_predict_proba": summary(times["a"]),
            "sqlml": mine, "snorkel_peak_rss_mb": other["peak_rss_mb"],
            "peak_rss_ratio": mine["peak_rss_mb"] / other["peak_rss_mb"],
            "threads": {"sqlml_duckdb": threads, "snorkel_torch": threads},
        }
        log(f"fit {tag} {threads} thread(s): {fmt(result[key]['statement_vs_fit_plus_predict'])}")
    result["sqlml_gap_to_oracle_points"] = 100 * (best - result["threads_1"]["sqlml"]["accuracy"])
    return result


def worker_fit(job: dict) -> None:
    """In its own process: load votes, APPLY, then CREATE LABEL MODEL per 'repeat'; at 'rest',
    accuracy, the fit's catalog numbers, and ml_label_model_predict over 1M new rows."""
    import sqlml

    con = sqlml.connect()
    con.sql(f"SET threads = {int(job['threads'])}")
    con.sql("CREATE TABLE syn AS SELECT * FROM read_parquet(?)", [job["parquet"]])
    m = len([c for c in con.sql("SELECT * FROM syn LIMIT 0").columns if c.startswith("l")])
    for j in range(m):
        classes = " WITH (classes := ['c0', 'c1'])" if j == 0 else ""
        con.sql(f"CREATE LABELING FUNCTION lf{j} ON syn{classes} AS nullif(l{j}, -1)")
    started = time.perf_counter()
    con.sql("APPLY LABELING FUNCTIONS ON syn KEY id")
    apply_seconds = time.perf_counter() - started
    before = rss_mb()

    first_peak = []

    def repeat():
        started = time.perf_counter()
        con.sql("CREATE OR REPLACE LABEL MODEL syn_labels ON syn WITH (seed := 0)")
        seconds = time.perf_counter() - started
        if not first_peak:  # the peak of one statement (repeats grow the heap a little, on both sides)
            first_peak.append(peak_mb())
        return {"statement_seconds": seconds}

    def rest():
        y = np.load(job["y"])
        props = json.loads(con.sql("SELECT properties FROM ml_catalog(kind := 'label model')").fetchall()[0][0])
        pred = con.sql("SELECT CAST(label[2:] AS INTEGER) AS p FROM syn_labels ORDER BY id").fetchnumpy()["p"]
        all_runs_peak = peak_mb()
        con.sql("CREATE TABLE syn_new AS SELECT * FROM read_parquet(?)", [job["new"]])  # after the fits: not in their peak
        started = time.perf_counter()
        con.sql("CREATE TABLE applied AS SELECT * FROM ml_label_model_predict('syn_labels', 'SELECT * FROM syn_new')")
        predict_seconds = time.perf_counter() - started
        return {
            "apply_seconds": apply_seconds, "stats_seconds": props["stats_seconds"],
            "numpy_fit_seconds": props["fit_seconds"], "accuracy": float((pred == y).mean()),
            "estimated_balance": props["class_balance"], "patterns": props["patterns"],
            "rss_before_fit_mb": before, "peak_rss_mb": first_peak[0], "peak_rss_all_runs_mb": all_runs_peak,
            "predict_new_rows": int(con.sql("SELECT count(*) FROM applied").fetchall()[0][0]),
            "predict_seconds": predict_seconds, "peak_rss_after_predict_mb": peak_mb(),
            "predict_rss_growth_mb": peak_mb() - all_runs_peak,
        }

    serve_protocol({"rows": int(con.sql("SELECT count(*) FROM syn").fetchall()[0][0])}, repeat, rest)


# -- 3. WRENCH label models --------------------------------------------------------------------


def load_split(path: Path):
    with open(path) as f:
        d = json.load(f)
    rows = [d[key] for key in sorted(d, key=int)]
    return [r["weak_labels"] for r in rows], [r["label"] for r in rows], [r["data"]["text"] for r in rows]


def wrench_connection(data: Path, name: str):
    """A connection with table ``name`` (train + valid + test rows: id, text, weak_labels, split,
    valid_gold, y) and its votes imported as labeling functions; (con, sizes, k)."""
    import pyarrow as pa

    import sqlml

    splits = [load_split(data / name / f"{s}.json") for s in ("train", "valid", "test")]
    sizes = [len(s[1]) for s in splits]
    weak = [w for s in splits for w in s[0]]
    k = int(max(max(max(w) for w in weak), max(max(s[1]) for s in splits)) + 1)
    con = sqlml.connect()
    con.register("src", pa.table({
        "id": np.arange(len(weak)), "text": [t for s in splits for t in s[2]], "weak_labels": weak,
        "split": ["train"] * sizes[0] + ["valid"] * sizes[1] + ["test"] * sizes[2],
        "valid_gold": [None] * sizes[0] + [str(v) for v in splits[1][1]] + [None] * sizes[2],
        "y": [str(v) for s in splits for v in s[1]],
    }))
    con.sql(f"CREATE TABLE {name} AS FROM src")
    con.unregister("src")
    classes = ", ".join(f"'{c}'" for c in range(k))
    con.sql(f"CREATE LABELING FUNCTIONS ON {name} FROM COLUMN weak_labels WITH (classes := [{classes}], prefix := 'lf')")
    return con, sizes, k


LABEL_MODEL_VARIANTS = {
    "sqlml_default": "",
    "sqlml_default_with_valid_gold": "GOLD valid_gold",
    "sqlml_majority": "WITH (method := 'majority')",
    "sqlml_dawid_skene": "WITH (method := 'dawid_skene')",
    "sqlml_triplet": "WITH (method := 'triplet')",
    "sqlml_default_uniform_prior": "WITH (class_balance := 'uniform')",
    "sqlml_auto_on_valid_gold": "GOLD valid_gold WITH (method := 'auto')",
}


def bench_wrench(data: Path, tmp: Path, names: list[str]) -> dict:
    probs, timings = {}, {}
    for name in names:
        con, sizes, _ = wrench_connection(data, name)
        for variant, clause in LABEL_MODEL_VARIANTS.items():
            started = time.perf_counter()
            con.sql(f"CREATE OR REPLACE LABEL MODEL lm ON {name} KEY id {clause}")
            timings[f"{name}/{variant}"] = time.perf_counter() - started
            test = con.sql(f"SELECT probs FROM lm WHERE id >= {sizes[0] + sizes[1]} ORDER BY id").fetchnumpy()["probs"]
            probs[f"{name}/{variant}"] = np.stack(test).astype(np.float64)
        con.close()
    np.savez(tmp / "sqlml_probs.npz", **probs)
    return {"scores": anchor("wrench", data, tmp / "sqlml_probs.npz"), "sqlml_seconds": timings}


def anchor(*args) -> dict:
    import subprocess

    out = subprocess.run([str(SNORKEL_PY), str(HERE / "ws_anchor.py"), *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"snorkel side failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- 4. the end model ------------------------------------------------------------------------------

#: the issue's anchor: snorkel 0.10 LabelModel labels on train + scikit-learn LR on n-grams (test split)
END_MODEL_ANCHOR = {"youtube": ("accuracy", 0.904), "sms": ("f1", 0.734), "trec": ("accuracy", 0.562)}
#: the label model the end model learns from: the valid split's gold rows clamped (GOLD), the class
#: balance estimated from the votes alone (a 500-row gold sample's 13% spam prior, with one-sided
#: spam LFs, would turn most single spam votes into ham)
END_LABEL_MODEL = "GOLD valid_gold WITH (class_balance := 'estimate', seed := 0)"
END_MODEL = ("text := ['text'], soft_label := 'probs', weight := 'weight', classes := [{classes}], "
             "architecture := 'logistic', epochs := 30, lr := 0.01, threads := 1, seed := 0, progress := false")


def end_model_sql(name: str, k: int, label_model: str = "lm") -> str:
    classes = ", ".join(f"'{c}'" for c in range(k))
    return (f"CREATE OR REPLACE MODEL em WITH ({END_MODEL.format(classes=classes)}) AS "
            f"SELECT t.text, l.label, l.probs, l.weight FROM {name} AS t JOIN {label_model} AS l USING (id) "
            f"WHERE l.source <> 'abstain'")


def _scores(con, name: str, model: str = "em") -> dict:
    rows = con.sql(f"SELECT ml_predict('{model}', text) AS p, y FROM {name} WHERE split = 'test' ORDER BY id").fetchall()
    pred, truth = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    tp, fp, fn = (int(((pred == "1") & (truth == "1")).sum()), int(((pred == "1") & (truth != "1")).sum()),
                  int(((pred != "1") & (truth == "1")).sum()))
    return {"accuracy": float((pred == truth).mean()), "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0}


def bench_end_model(data: Path, tmp: Path, names: list[str], rounds: int) -> dict:
    out = {}
    for name in names:
        con, sizes, k = wrench_connection(data, name)
        labeled = f"{name}_tv"  # the label model sees train + valid, never test
        con.sql(f"CREATE TABLE {labeled} AS SELECT * FROM {name} WHERE split <> 'test'")
        con.sql(f"CREATE LABELING FUNCTIONS ON {labeled} FROM COLUMN weak_labels WITH (classes := "
                f"[{', '.join(repr(str(c)) for c in range(k))}], prefix := '{name}_lf')")
        result = {}
        for variant, clause in (("sqlml_label_model", END_LABEL_MODEL),
                                ("sqlml_majority", "GOLD valid_gold WITH (method := 'majority', class_balance := 'estimate')"),
                                ("sqlml_label_model_no_gold", "WITH (seed := 0)")):
            con.sql(f"CREATE OR REPLACE LABEL MODEL lm ON {labeled} KEY id {clause}")
            started = time.perf_counter()
            con.sql(end_model_sql(labeled, k))
            result[variant] = {**_scores(con, name), "train_seconds": time.perf_counter() - started}
            log(f"end model {name} {variant}: {result[variant]}")
        metric, anchor_value = END_MODEL_ANCHOR[name]
        result["metric"], result["anchor"] = metric, anchor_value
        result["target"] = round(anchor_value + 0.01, 3)
        result["met"] = result["sqlml_label_model"][metric] >= result["target"]
        out[name] = result
        if name == "youtube":
            out["youtube_training_time"] = training_time(con, labeled, k, tmp, rounds)
        con.close()
    return out


def training_time(con, table: str, k: int, tmp: Path, rounds: int) -> dict:
    """CREATE MODEL (text, logistic, 30 epochs) vs TfidfVectorizer + LogisticRegression on the same
    rows of youtube's train split, one thread each, paired rounds."""
    con.sql(f"CREATE OR REPLACE LABEL MODEL lm_train ON {table} KEY id {END_LABEL_MODEL}")
    rows = con.sql(f"SELECT t.text, l.label, l.weight FROM {table} AS t JOIN lm_train AS l USING (id) "
                   f"WHERE l.source <> 'abstain' AND t.split = 'train' ORDER BY id").fetchall()
    con.sql(f"CREATE OR REPLACE VIEW train_rows AS SELECT * FROM {table} WHERE split = 'train'")
    sql = end_model_sql("train_rows", k, "lm_train")
    (tmp / "sk.json").write_text(json.dumps({"texts": [r[0] for r in rows], "labels": [r[1] for r in rows],
                                             "weights": [r[2] for r in rows]}))
    sk = snorkel_worker({"kind": "sklearn", "data": str(tmp / "sk.json")}, tmp, threads=1)

    def ours():
        started = time.perf_counter()
        con.sql(sql)
        return time.perf_counter() - started

    try:
        ours(), sk.ask("repeat", "run")
        times = rounds_of(lambda: sk.ask("repeat", "run")["seconds"], ours, rounds, "youtube training time")
    finally:
        sk.finish()
    return {"rows": len(rows), "sqlml_create_model": summary(times["b"]), "sklearn_tfidf_lr": summary(times["a"]),
            "sqlml_over_sklearn": ratio({"sqlml": times["b"], "sklearn": times["a"]}, "sqlml", "sklearn"),
            "threads": {"sqlml_torch": 1, "sklearn": 1}}


def bench_analysis(data: Path, tmp: Path) -> dict:
    import pyarrow as pa

    import sqlml

    weak, labels, _ = load_split(data / "youtube" / "valid.json")
    np.save(tmp / "L_an.npy", np.array(weak))
    np.save(tmp / "y_an.npy", np.array(labels))
    theirs = anchor("analysis", tmp / "L_an.npy", tmp / "y_an.npy")
    con = sqlml.connect()
    con.register("src", pa.table({"id": np.arange(len(weak)), "weak_labels": weak, "gold": labels}))
    con.sql("CREATE TABLE yt AS FROM src")
    con.sql("CREATE LABELING FUNCTIONS ON yt FROM COLUMN weak_labels WITH (classes := ['0', '1'], prefix := 'lf')")
    con.sql("APPLY LABELING FUNCTIONS ON yt KEY id")
    ours = con.sql("SELECT coverage, overlap, conflict, correct, incorrect, emp_accuracy "
                   "FROM ml_lf_summary('yt', gold := 'gold')").fetchnumpy()
    pairs = zip(("Coverage", "Overlaps", "Conflicts", "Correct", "Incorrect", "Emp. Acc."), ours.values())
    diff = {col: float(np.abs(np.array(theirs[col]) - np.asarray(mine, dtype=float)).max()) for col, mine in pairs}
    return {"max_abs_difference": diff, "rows": len(labels)}


def readme_table(r: dict) -> str:
    """The table of docs/benchmarks/weak_supervision.md, from a results file."""
    lines = ["| measurement | sqlml | anchor | ratio (median of rounds, min-max) | target |", "|---|---|---|---|---|"]
    ap = r.get("apply_100k_x_10_keyword_lfs")
    if ap:
        for tag, what in (("sql_1_thread", "SQL LFs, 1 DuckDB thread"), ("sql_2_threads", "SQL LFs, 2 DuckDB threads"),
                          ("python_1_thread", "Python (Arrow) LFs, 1 thread")):
            a = ap[tag]
            lines.append(
                f"| apply 10 keyword LFs to {ap['rows']:,} texts, {what} (same matrix: {a['equal_to_snorkel']}) | "
                f"{a['sqlml']['median_s']:.3f} s | {a['snorkel']['median_s']:.2f} s PandasLFApplier | "
                f"{a['speedup']['median']:.0f}x ({a['speedup']['min']:.0f}-{a['speedup']['max']:.0f}) | "
                f"{'>= 100x' if tag.startswith('sql') else '>= 30x'} |")
    for tag, label in (("balanced", "balanced"), ("imbalanced_90_10", "90/10, prior not given")):
        f = r.get(f"fit_1M_x_10_{tag}")
        if not f or "threads_1" not in f:  # (absent, or a result file of the earlier format)
            continue
        for threads in (1, 2):
            t = f[f"threads_{threads}"]
            q = t["statement_vs_fit_plus_predict"]
            lines.append(
                f"| whole CREATE LABEL MODEL, 1M x 10 LFs, {label}, {threads} thread(s) each | "
                f"{t['sqlml_statement']['median_s']:.2f} s | {t['snorkel_fit_plus_predict_proba']['median_s']:.2f} s "
                f"fit + predict_proba | {q['median']:.1f}x ({q['min']:.1f}-{q['max']:.1f}) | >= 3x |")
        t1 = f["threads_1"]
        lines.append(
            f"| same, peak RSS of the process after one statement / fit (1 thread) | {t1['sqlml']['peak_rss_mb']:.0f} MB | "
            f"{t1['snorkel_peak_rss_mb']:.0f} MB | "
            f"{t1['peak_rss_ratio']:.2f} | <= 0.33 |")
        lines.append(
            f"| same, accuracy (true-parameter posterior {100 * f['oracle_accuracy']:.2f}) | "
            f"{100 * t1['sqlml']['accuracy']:.2f} | | gap {f['sqlml_gap_to_oracle_points']:.2f} pt | gap <= 0.5 pt |")
        lines.append(
            f"| ml_label_model_predict on 1M new rows x 10 LFs ({label}) | {t1['sqlml']['predict_seconds']:.2f} s, "
            f"peak RSS {t1['sqlml']['peak_rss_after_predict_mb']:.0f} MB (+{t1['sqlml'].get('predict_rss_growth_mb', 0):.0f}) "
            f"| | | no Python per row |")
    end = r.get("end_model", {})
    for name in ("youtube", "sms", "trec"):
        if name not in end:
            continue
        e = end[name]
        m = e["metric"]
        lines.append(
            f"| WRENCH {name} test {m}, text end model on sqlml's label model (majority labels: "
            f"{e['sqlml_majority'][m]:.3f}; no gold: {e['sqlml_label_model_no_gold'][m]:.3f}) | "
            f"{e['sqlml_label_model'][m]:.3f} | {e['anchor']:.3f} snorkel labels + LR | "
            f"{100 * (e['sqlml_label_model'][m] - e['anchor']):+.1f} pt | >= {e['target']:.3f} |")
    tt = end.get("youtube_training_time")
    if tt:
        q = tt["sqlml_over_sklearn"]
        lines.append(
            f"| training time, youtube train split ({tt['rows']} rows), 1 thread each | "
            f"{tt['sqlml_create_model']['median_s']:.2f} s CREATE MODEL | {tt['sklearn_tfidf_lr']['median_s']:.3f} s "
            f"TfidfVectorizer + LogisticRegression | {q['median']:.1f}x slower ({q['min']:.1f}-{q['max']:.1f}) | reported |")
    scores = r.get("wrench", {}).get("scores", {})
    for name, metric in (("youtube", "accuracy"), ("sms", "f1"), ("trec", "accuracy")):
        if name not in scores:
            continue
        s = scores[name]
        lines.append(
            f"| WRENCH {name} test {metric}, label model alone: sqlml default (with valid gold "
            f"{s['sqlml_default_with_valid_gold'][metric]:.3f}; majority {s['sqlml_majority'][metric]:.3f}; "
            f"auto on valid gold {s.get('sqlml_auto_on_valid_gold', {}).get(metric, float('nan')):.3f}) | "
            f"{s['sqlml_default'][metric]:.3f} | LabelModel {s['snorkel_label_model'][metric]:.3f}, majority "
            f"{s['snorkel_majority_vote'][metric]:.3f} | | |")
    if "lf_summary_vs_snorkel" in r:
        worst = max(r["lf_summary_vs_snorkel"]["max_abs_difference"].values())
        lines.append(f"| ml_lf_summary vs LFAnalysis.lf_summary(Y), WRENCH youtube valid | max abs difference {worst:.1g} | | | identical |")
    return "\n".join(lines)


PARTS = ("apply", "fit", "wrench", "end_model")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="the shared data folder (holding wrench/); default ../shared/data")
    ap.add_argument("--quick", action="store_true", help="10x smaller, 3 rounds (a smoke run, not the measurement)")
    ap.add_argument("--rounds", type=int, default=None, help="paired rounds per comparison (default 9; --quick 3)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("job", nargs="?", help=argparse.SUPPRESS)
    ap.add_argument("--table", action="store_true", help="print the docs/benchmarks/weak_supervision.md table of the last results and exit")
    ap.add_argument("--only", choices=PARTS, action="append", help="run only these parts, updating the last results file")
    a = ap.parse_args()
    name = "weak_supervision_quick" if a.quick else "weak_supervision"
    out = HERE / "results" / f"{name}.json"
    if a.table:
        print(readme_table(json.loads(out.read_text())))
        return
    if a.worker:
        worker_fit(json.loads(Path(a.job).read_text()))
        return
    if not SNORKEL_PY.exists():
        sys.exit("the anchor is missing: run bash bench/setup_snorkel.sh first")
    parts = set(a.only or PARTS)
    data = data_folder(a.data, needs=("wrench/youtube", "wrench/sms", "wrench/trec")) / "wrench" \
        if parts & {"wrench", "end_model"} else None
    scale = 10 if a.quick else 1
    rounds = a.rounds or (3 if a.quick else 9)
    result = json.loads(out.read_text()) if a.only and out.exists() else {}
    result["machine_at_start"] = machine()
    result["rounds"] = rounds
    with scratch("sqlml-bench-ws-") as tmp:
        if "apply" in parts:
            log("applying LFs ...")
            result["apply_100k_x_10_keyword_lfs"] = bench_apply(tmp, 100_000 // scale, rounds)
        for tag, balance in (("balanced", [0.5, 0.5]), ("imbalanced_90_10", [0.9, 0.1])) if "fit" in parts else ():
            log(f"label model 1M x 10, {tag} ...")
            result[f"fit_1M_x_10_{tag}"] = bench_fit(tmp, 1_000_000 // scale, balance, tag, rounds)
        if "wrench" in parts:
            log("WRENCH label models ...")
            result["wrench"] = bench_wrench(data, tmp, ["youtube", "sms", "trec"])
            result["lf_summary_vs_snorkel"] = bench_analysis(data, tmp)
        if "end_model" in parts:
            log("WRENCH end models ...")
            result["end_model"] = bench_end_model(data, tmp, ["youtube", "sms", "trec"], rounds)
    result["machine_at_end"] = machine()
    path = write(result, name)
    print(readme_table(result))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
