"""Weak supervision, sqlml side by side with snorkel 0.10 (measured in the same run).

    bash bench/setup_snorkel.sh                       # once: the anchor in bench/.venv-snorkel
    PYTHONPATH=. python bench/weak_supervision.py [--data ../shared/data/wrench] [--quick]

1. Applying 10 keyword LFs to 100k short texts: sqlml SQL LFs and Python (Arrow) LFs vs
   snorkel's PandasLFApplier (the label matrices must be identical).
2. Label model at 1M rows x 10 LFs (synthetic, known truth; balanced and 90/10 without the
   prior): fit time, peak memory (each side in its own process, 3 interleaved runs, the
   median reported), accuracy vs the true-parameter posterior.
3. WRENCH youtube / sms / trec test splits: LF votes imported as SQL LFs over `weak_labels`;
   sqlml's default method (with and without the valid split as GOLD) vs majority vote and
   snorkel's default LabelModel, all scored by snorkel's probs_to_preds (WRENCH's tie-break).
4. ml_lf_summary vs LFAnalysis.lf_summary(Y) on WRENCH youtube's valid split.

Writes bench/results/weak_supervision.json and prints the ratios.
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

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from procstats import peak_mb  # noqa: E402
from ws_anchor import KEYWORD_LFS  # noqa: E402  (the same LFs on both sides)

SNORKEL_PY = HERE / ".venv-snorkel" / "bin" / "python"
WORDS = ("the a this video is my song love best i you check out subscribe channel free please http www com lol "
         "great music amazing watch now new like share so good year old beautiful voice part nice").split()


def anchor(*args) -> dict:
    out = subprocess.run([str(SNORKEL_PY), str(HERE / "ws_anchor.py"), *map(str, args)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"snorkel side failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def worker(*args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"sqlml worker failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- 1. applying LFs ----------------------------------------------------------------------


def synth_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 14, size=n)
    words = np.array(WORDS)[rng.integers(0, len(WORDS), size=lengths.sum())]
    ends = np.cumsum(lengths)
    return [" ".join(words[e - n_words:e]) for e, n_words in zip(ends, lengths)]


def bench_apply(tmp: Path, n: int) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc

    import sqlml

    texts = synth_texts(n)
    (tmp / "texts.txt").write_text("\n".join(texts))
    snorkel = anchor("apply", tmp / "texts.txt", tmp / "L_apply.npy")
    L_snorkel = np.load(tmp / "L_apply.npy")
    results = {"rows": n, "snorkel_pandas_lf_applier_s": snorkel["seconds"]}
    for kind in ("sql", "python"):
        con = sqlml.connect()
        con.register("texts_src", pa.table({"id": np.arange(n), "text": texts}))
        con.sql("CREATE TABLE docs AS FROM texts_src")
        con.unregister("texts_src")
        for i, (name, keyword, label) in enumerate(KEYWORD_LFS):
            classes = ["ham", "spam"] if i == 0 else None
            if kind == "sql":
                con.register(sqlml.keyword_lf(name, on="docs", column="text", keywords=[keyword], label=label,
                                              classes=classes))
            else:
                def fn(text, keyword=keyword, label=label):
                    return pc.if_else(pc.match_substring(pc.utf8_lower(text), keyword), label, None)

                con.register(sqlml.labeling_function(on="docs", inputs=["text"], name=name, classes=classes)(fn))
        started = time.perf_counter()
        con.sql("APPLY LABELING FUNCTIONS ON docs KEY id")
        seconds = time.perf_counter() - started
        votes = con.sql(
            f"SELECT id, lf, label FROM sqlml.\"votes_{_storage('docs')}\""
        ).fetchnumpy()
        L = np.full((n, len(KEYWORD_LFS)), -1)
        L[votes["id"], votes["lf"]] = votes["label"]
        results[f"sqlml_{kind}_lfs_s"] = seconds
        results[f"sqlml_{kind}_equal_to_snorkel"] = bool(np.array_equal(L, L_snorkel))
        results[f"speedup_{kind}"] = snorkel["seconds"] / seconds
        con.close()
    return results


def _storage(table: str) -> str:
    from sqlml.labeling.store import storage_id

    return storage_id(table)


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


FIT_REPEATS = 3  # each side's fit, alternating, in fresh processes: the median run is reported


def median_run(runs: list[dict]) -> dict:
    """The run with the median fit time, with every run's time and peak RSS attached."""
    chosen = dict(sorted(runs, key=lambda r: r["fit_seconds"])[len(runs) // 2])
    chosen["runs_fit_seconds"] = [r["fit_seconds"] for r in runs]
    chosen["runs_peak_rss_mb"] = [r["peak_rss_mb"] for r in runs]
    return chosen


def bench_fit(tmp: Path, n: int, balance: list[float], tag: str) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    L, y, acc = synthetic(n, 10, len(balance), np.array(balance))
    np.save(tmp / f"L_{tag}.npy", L.astype(np.int64))
    np.save(tmp / f"y_{tag}.npy", y)
    cols = {"id": np.arange(n)} | {f"l{j}": L[:, j] for j in range(L.shape[1])}
    pq.write_table(pa.table(cols), tmp / f"L_{tag}.parquet")
    # the machine's load moves between processes (snorkel's fit took 3.4 to 26 s in runs on the
    # same data), so both sides run FIT_REPEATS times, interleaved, and report their median
    ours_runs, theirs_runs = [], []
    for _ in range(FIT_REPEATS):
        ours_runs.append(worker("fit", tmp / f"L_{tag}.parquet", tmp / f"y_{tag}.npy"))
        theirs_runs.append(anchor("fit", tmp / f"L_{tag}.npy", tmp / f"y_{tag}.npy"))
    ours, theirs = median_run(ours_runs), median_run(theirs_runs)
    best = oracle_accuracy(L, y, acc, np.array(balance))
    return {
        "rows": n, "lfs": L.shape[1], "class_balance": balance, "oracle_accuracy": best,
        "sqlml": ours, "snorkel": theirs,
        "fit_speedup": theirs["fit_seconds"] / ours["fit_seconds"],
        "statement_vs_fit_plus_predict": (theirs["fit_seconds"] + theirs["predict_seconds"]) / ours["statement_seconds"],
        "peak_rss_ratio": ours["peak_rss_mb"] / theirs["peak_rss_mb"],
        "fit_rss_increase_ratio": (ours["peak_rss_mb"] - ours["rss_before_fit_mb"])
        / max(theirs["peak_rss_mb"] - theirs["rss_before_fit_mb"], 1e-9),
        "sqlml_gap_to_oracle_points": 100 * (best - ours["accuracy"]),
        "snorkel_gap_to_oracle_points": 100 * (best - theirs["accuracy"]),
    }


def worker_fit(parquet: str, y_path: str) -> dict:
    """In its own process: load votes, APPLY, then CREATE LABEL MODEL (timed, peak RSS).

    It imports only what sqlml needs (no pyarrow.parquet: DuckDB reads the file), as the
    snorkel side imports only numpy and snorkel."""
    import sqlml

    y = np.load(y_path)
    con = sqlml.connect()
    con.sql("CREATE TABLE syn AS SELECT * FROM read_parquet(?)", [parquet])
    m = len([c for c in con.sql("SELECT * FROM syn LIMIT 0").columns if c.startswith("l")])
    for j in range(m):
        classes = " WITH (classes := ['c0', 'c1'])" if j == 0 else ""
        con.sql(f"CREATE LABELING FUNCTION lf{j} ON syn{classes} AS nullif(l{j}, -1)")
    started = time.perf_counter()
    con.sql("APPLY LABELING FUNCTIONS ON syn KEY id")
    apply_seconds = time.perf_counter() - started
    before = peak_mb()
    started = time.perf_counter()
    row = con.sql("CREATE LABEL MODEL syn_labels ON syn WITH (seed := 0)").fetchall()[0]
    statement = time.perf_counter() - started
    props = json.loads(con.sql("SELECT properties FROM ml_catalog(kind := 'label model')").fetchall()[0][0])
    pred = con.sql("SELECT CAST(label[2:] AS INTEGER) AS p FROM syn_labels ORDER BY id").fetchnumpy()["p"]
    return {
        "apply_seconds": apply_seconds, "statement_seconds": statement,
        "fit_seconds": props["stats_seconds"] + props["fit_seconds"],
        "stats_seconds": props["stats_seconds"], "numpy_fit_seconds": props["fit_seconds"],
        "accuracy": float((pred == y).mean()), "estimated_balance": props["class_balance"],
        "peak_rss_mb": peak_mb(), "rss_before_fit_mb": before, "patterns": props["patterns"], "row": str(row),
    }


# -- 3. WRENCH ----------------------------------------------------------------------------------


def load_split(path: Path):
    with open(path) as f:
        d = json.load(f)
    rows = [d[key] for key in sorted(d, key=int)]
    return [r["weak_labels"] for r in rows], [r["label"] for r in rows]


def bench_wrench(data: Path, tmp: Path, names: list[str]) -> dict:
    import pyarrow as pa

    import sqlml

    probs = {}
    timings = {}
    for name in names:
        splits = [load_split(data / name / f"{s}.json") for s in ("train", "valid", "test")]
        weak = [w for s in splits for w in s[0]]
        n_train, n_valid, n_test = (len(s[1]) for s in splits)
        gold = [None] * n_train + splits[1][1] + [None] * n_test
        k = int(max(max(max(w) for w in weak), max(max(s[1]) for s in splits)) + 1)
        con = sqlml.connect()
        con.register("src", pa.table({"id": np.arange(len(weak)), "weak_labels": weak, "valid_gold": gold}))
        con.sql(f"CREATE TABLE {name} AS FROM src")
        con.unregister("src")
        classes = ", ".join(f"'{c}'" for c in range(k))
        for j in range(len(weak[0])):
            with_classes = f" WITH (classes := [{classes}])" if j == 0 else ""
            con.sql(f"CREATE LABELING FUNCTION lf{j} ON {name}{with_classes} AS nullif(weak_labels[{j + 1}], -1)")
        variants = {
            "sqlml_default": "",
            "sqlml_default_with_valid_gold": "GOLD valid_gold",
            "sqlml_majority": "WITH (method := 'majority')",
            "sqlml_dawid_skene": "WITH (method := 'dawid_skene')",
            "sqlml_triplet": "WITH (method := 'triplet')",
            "sqlml_default_uniform_prior": "WITH (class_balance := 'uniform')",
        }
        for variant, clause in variants.items():
            started = time.perf_counter()
            con.sql(f"CREATE OR REPLACE LABEL MODEL lm ON {name} KEY id {clause}")
            timings[f"{name}/{variant}"] = time.perf_counter() - started
            test = con.sql(f"SELECT probs FROM lm WHERE id >= {n_train + n_valid} ORDER BY id").fetchnumpy()["probs"]
            probs[f"{name}/{variant}"] = np.stack(test).astype(np.float64)
        con.close()
    np.savez(tmp / "sqlml_probs.npz", **probs)
    scores = anchor("wrench", data, tmp / "sqlml_probs.npz")
    return {"scores": scores, "sqlml_seconds": timings}


def bench_analysis(data: Path, tmp: Path) -> dict:
    import pyarrow as pa

    import sqlml

    weak, labels = load_split(data / "youtube" / "valid.json")
    np.save(tmp / "L_an.npy", np.array(weak))
    np.save(tmp / "y_an.npy", np.array(labels))
    theirs = anchor("analysis", tmp / "L_an.npy", tmp / "y_an.npy")
    con = sqlml.connect()
    con.register("src", pa.table({"id": np.arange(len(weak)), "weak_labels": weak, "gold": labels}))
    con.sql("CREATE TABLE yt AS FROM src")
    for j in range(len(weak[0])):
        classes = " WITH (classes := ['0', '1'])" if j == 0 else ""
        con.sql(f"CREATE LABELING FUNCTION lf{j} ON yt{classes} AS nullif(weak_labels[{j + 1}], -1)")
    con.sql("APPLY LABELING FUNCTIONS ON yt KEY id")
    ours = con.sql("SELECT coverage, overlap, conflict, correct, incorrect, emp_accuracy "
                   "FROM ml_lf_summary('yt', gold := 'gold')").fetchnumpy()
    pairs = zip(("Coverage", "Overlaps", "Conflicts", "Correct", "Incorrect", "Emp. Acc."), ours.values())
    diff = {col: float(np.abs(np.array(theirs[col]) - np.asarray(mine, dtype=float)).max()) for col, mine in pairs}
    return {"max_abs_difference": diff, "rows": len(labels)}


def readme_table(r: dict) -> str:
    """The table of docs/benchmarks/weak_supervision.md, from a results file."""
    ap = r["apply_100k_x_10_keyword_lfs"]
    lines = ["| measurement | sqlml | snorkel 0.10 | ratio | target |", "|---|---|---|---|---|"]
    snorkel_s = ap["snorkel_pandas_lf_applier_s"]
    for kind, target in (("sql", 100), ("python", 30)):
        lines.append(
            f"| apply 10 keyword LFs to {ap['rows']:,} texts, {kind.upper() if kind == 'sql' else 'Python'} LFs "
            f"(same label matrix: {ap[f'sqlml_{kind}_equal_to_snorkel']}) | {ap[f'sqlml_{kind}_lfs_s']:.2f} s | "
            f"{snorkel_s:.1f} s (PandasLFApplier) | {ap[f'speedup_{kind}']:.0f}x | >= {target}x |"
        )
    for tag, label in (("balanced", "balanced"), ("imbalanced_90_10", "90/10, prior not given")):
        f = r[f"fit_1M_x_10_{tag}"]
        ours, theirs = f["sqlml"], f["snorkel"]
        lines.append(
            f"| label model fit, 1M x 10 LFs, {label}: fit (SQL statistics + method) | {ours['fit_seconds']:.2f} s | "
            f"{theirs['fit_seconds']:.2f} s | {f['fit_speedup']:.1f}x | >= 3x |"
        )
        lines.append(
            f"| same, whole CREATE LABEL MODEL (writes 1M labels) vs fit + predict_proba | "
            f"{ours['statement_seconds']:.2f} s | {theirs['fit_seconds'] + theirs['predict_seconds']:.2f} s | "
            f"{f['statement_vs_fit_plus_predict']:.1f}x | |"
        )
        increase = (ours["peak_rss_mb"] - ours["rss_before_fit_mb"]) / max(theirs["peak_rss_mb"] - theirs["rss_before_fit_mb"], 1e-9)
        lines.append(
            f"| same, peak RSS of the process (growth during the fit) | {ours['peak_rss_mb']:.0f} MB "
            f"(+{ours['peak_rss_mb'] - ours['rss_before_fit_mb']:.0f}) | {theirs['peak_rss_mb']:.0f} MB "
            f"(+{theirs['peak_rss_mb'] - theirs['rss_before_fit_mb']:.0f}) | {f['peak_rss_ratio']:.2f} ({increase:.2f}) | <= 0.33 |"
        )
        lines.append(
            f"| same, accuracy (true-parameter posterior {100 * f['oracle_accuracy']:.2f}) | "
            f"{100 * ours['accuracy']:.2f} | {100 * theirs['accuracy']:.2f} | gap {f['sqlml_gap_to_oracle_points']:.2f} pt | "
            f"gap <= 0.5 pt |"
        )
    scores = r.get("wrench", {}).get("scores", {})
    for name, metric in (("youtube", "accuracy"), ("sms", "f1"), ("trec", "accuracy")):
        if name not in scores:
            continue
        s = scores[name]
        best = max(s["snorkel_majority_vote"][metric], s["snorkel_label_model"][metric])
        ours = s["sqlml_default"][metric]
        lines.append(
            f"| WRENCH {name} test {metric}: sqlml default (with valid gold: "
            f"{100 * s['sqlml_default_with_valid_gold'][metric]:.1f}) | {100 * ours:.1f} | "
            f"LabelModel {100 * s['snorkel_label_model'][metric]:.1f}, majority {100 * s['snorkel_majority_vote'][metric]:.1f} "
            f"| {100 * (ours - best):+.1f} pt | >= best |"
        )
    if "lf_summary_vs_snorkel" in r:
        worst = max(r["lf_summary_vs_snorkel"]["max_abs_difference"].values())
        lines.append(f"| ml_lf_summary vs LFAnalysis.lf_summary(Y), WRENCH youtube valid | max abs difference {worst:.1g} | | | identical |")
    return "\n".join(lines)


def default_data() -> Path:
    """``../shared/data/wrench`` beside the checkout (a worktree sits one level deeper)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "wrench").is_dir():
            return base / "shared" / "data" / "wrench"
    return ROOT.parent / "shared" / "data" / "wrench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(default_data()), help="folder with WRENCH youtube/ sms/ trec/")
    ap.add_argument("--quick", action="store_true", help="10x smaller (a smoke run, not the measurement)")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--table", action="store_true", help="print the docs/benchmarks/weak_supervision.md table of the last results and exit")
    ap.add_argument("--only", choices=("apply", "fit", "wrench"), action="append",
                    help="run only these parts, updating the last results file")
    a = ap.parse_args()
    if a.table:
        print(readme_table(json.loads((HERE / "results" / "weak_supervision.json").read_text())))
        return
    if a.worker:
        print(json.dumps(worker_fit(*a.worker[1:])))
        return
    if not SNORKEL_PY.exists():
        sys.exit("the anchor is missing: run bash bench/setup_snorkel.sh first")
    scale = 10 if a.quick else 1
    data = Path(a.data)
    out = HERE / "results" / ("weak_supervision_quick.json" if a.quick else "weak_supervision.json")
    parts = set(a.only or ("apply", "fit", "wrench"))
    result = json.loads(out.read_text()) if a.only and out.exists() else {}
    result.update({"machine": f"{os.cpu_count()} cores", "load_average_at_start": os.getloadavg()})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "apply" in parts:
            print("applying LFs ...", flush=True)
            result["apply_100k_x_10_keyword_lfs"] = bench_apply(tmp, 100_000 // scale)
            print(json.dumps(result["apply_100k_x_10_keyword_lfs"], indent=1), flush=True)
        for tag, balance in (("balanced", [0.5, 0.5]), ("imbalanced_90_10", [0.9, 0.1])) if "fit" in parts else ():
            print(f"label model 1M x 10, {tag} ...", flush=True)
            result[f"fit_1M_x_10_{tag}"] = bench_fit(tmp, 1_000_000 // scale, balance, tag)
            print(json.dumps(result[f"fit_1M_x_10_{tag}"], indent=1), flush=True)
        if data.is_dir() and "wrench" in parts:
            print("WRENCH ...", flush=True)
            result["wrench"] = bench_wrench(data, tmp, ["youtube", "sms", "trec"])
            print(json.dumps(result["wrench"], indent=1), flush=True)
            result["lf_summary_vs_snorkel"] = bench_analysis(data, tmp)
            print(json.dumps(result["lf_summary_vs_snorkel"], indent=1), flush=True)
    result["load_average_at_end"] = os.getloadavg()
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
