"""The snorkel 0.10 side of bench/weak_supervision.py; runs in bench/.venv-snorkel.

Subcommands (each prints one JSON object on the last line of stdout):
    apply TEXTS.txt L_OUT.npy            PandasLFApplier, 10 keyword LFs
    fit L.npy Y.npy [balance]            LabelModel.fit + predict_proba: time, peak RSS, accuracy
    wrench DIR SQLML_PROBS.npz           LabelModel / MajorityLabelVoter on WRENCH splits, and the
                                         metrics of every model's test probabilities (sqlml's too),
                                         all through snorkel's probs_to_preds (WRENCH's tie-break)
    analysis L.npy Y.npy                 LFAnalysis.lf_summary(Y) as lists
    serve JOB.json                       a persistent worker (worker_protocol): 'repeat' runs the
                                         job's work once and returns its seconds; kinds: apply
                                         (PandasLFApplier), fit (LabelModel.fit + predict_proba on
                                         `threads` torch threads), sklearn (TfidfVectorizer 1-2
                                         grams + LogisticRegression on texts and hard labels)
"""

import json
import logging
import sys
import time
import warnings

import numpy as np
from procstats import peak_mb  # bench/ is this script's folder, first on sys.path

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

# (name, keyword, label): the same ten keyword LFs as the sqlml side
KEYWORD_LFS = [
    ("kw_check_out", "check out", 1), ("kw_subscribe", "subscribe", 1), ("kw_http", "http", 1),
    ("kw_channel", "my channel", 1), ("kw_free", "free", 1), ("kw_please", "please", 1),
    ("kw_song", "song", 0), ("kw_love", "love", 0), ("kw_best", "best", 0), ("kw_lol", "lol", 0),
]


def cmd_apply(texts_path, out_path):
    import pandas as pd
    from snorkel.labeling import LabelingFunction, PandasLFApplier

    texts = open(texts_path).read().split("\n")
    df = pd.DataFrame({"text": texts})

    def make(keyword, label):
        return lambda x: label if keyword in x.text.lower() else -1

    lfs = [LabelingFunction(name, f=make(k, lab)) for name, k, lab in KEYWORD_LFS]
    started = time.perf_counter()
    L = PandasLFApplier(lfs).apply(df, progress_bar=False)
    seconds = time.perf_counter() - started
    np.save(out_path, L)
    return {"rows": len(df), "seconds": seconds}


def cmd_fit(L_path, y_path, balance=None):
    L = np.load(L_path)
    y = np.load(y_path)
    from snorkel.labeling.model import LabelModel

    k = int(max(L.max(), y.max()) + 1)
    LabelModel(cardinality=k, verbose=False).fit(L[:1000], n_epochs=2, seed=1, progress_bar=False)  # torch warm-up
    before = peak_mb()
    model = LabelModel(cardinality=k, verbose=False)
    started = time.perf_counter()
    model.fit(L, class_balance=None if balance is None else json.loads(balance), seed=123, progress_bar=False)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.predict_proba(L)
    predict_seconds = time.perf_counter() - started
    pred = model.predict(L, tie_break_policy="random")
    return {"fit_seconds": fit_seconds, "predict_seconds": predict_seconds, "accuracy": float((pred == y).mean()),
            "peak_rss_mb": peak_mb(), "rss_before_fit_mb": before, "L_int64_mb": L.astype(np.int64).nbytes / 2**20}


def load_split(path):
    with open(path) as f:
        d = json.load(f)
    rows = [d[key] for key in sorted(d, key=int)]
    return np.array([r["weak_labels"] for r in rows], dtype=np.int64), np.array([r["label"] for r in rows])


def metrics(probs, y):
    from snorkel.utils import probs_to_preds

    pred = probs_to_preds(np.asarray(probs, dtype=np.float64), tie_break_policy="random")
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y != 1)).sum())
    fn = int(((pred != 1) & (y == 1)).sum())
    return {"accuracy": float((pred == y).mean()), "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0}


def cmd_wrench(data_dir, sqlml_probs):
    from snorkel.labeling.model import LabelModel, MajorityLabelVoter

    theirs = dict(np.load(sqlml_probs))
    out = {}
    for name in sorted({k.split("/")[0] for k in theirs}):
        parts = [load_split(f"{data_dir}/{name}/{split}.json") for split in ("train", "valid", "test")]
        L = np.vstack([p[0] for p in parts])
        y_test = parts[2][1]
        k = int(max(L.max(), max(p[1].max() for p in parts)) + 1)
        n_test = len(y_test)
        result = {}
        started = time.perf_counter()
        lm = LabelModel(cardinality=k, verbose=False)
        lm.fit(L, seed=123, progress_bar=False)  # snorkel's defaults: 100 epochs, lr 0.01, no prior
        result["snorkel_label_model"] = {**metrics(lm.predict_proba(L)[-n_test:], y_test),
                                         "fit_seconds": time.perf_counter() - started}
        result["snorkel_majority_vote"] = metrics(MajorityLabelVoter(cardinality=k).predict_proba(L)[-n_test:], y_test)
        for key, probs in theirs.items():
            if key.startswith(name + "/"):
                result[key.split("/", 1)[1]] = metrics(probs, y_test)
        out[name] = result
    return out


def cmd_analysis(L_path, y_path):
    from snorkel.labeling import LFAnalysis

    L, y = np.load(L_path), np.load(y_path)
    summary = LFAnalysis(L).lf_summary(Y=y)
    return {col: [float(v) if not isinstance(v, list) else v for v in summary[col].tolist()]
            for col in ("Coverage", "Overlaps", "Conflicts", "Correct", "Incorrect", "Emp. Acc.")}


def cmd_serve(job_path):
    from worker_protocol import serve_protocol

    job = json.load(open(job_path))
    if job["kind"] == "apply":
        import pandas as pd
        from snorkel.labeling import LabelingFunction, PandasLFApplier

        df = pd.DataFrame({"text": open(job["texts"]).read().split("\n")})

        def make(keyword, label):
            return lambda x: label if keyword in x.text.lower() else -1

        applier = PandasLFApplier([LabelingFunction(name, f=make(k, lab)) for name, k, lab in KEYWORD_LFS])

        def work():
            L = applier.apply(df, progress_bar=False)
            np.save(job["out"], L)
    elif job["kind"] == "fit":
        import torch
        from snorkel.labeling.model import LabelModel

        torch.set_num_threads(int(job["threads"]))
        L = np.load(job["L"])
        k = int(L.max() + 1)
        LabelModel(cardinality=k, verbose=False).fit(L[:1000], n_epochs=2, seed=1, progress_bar=False)  # torch warm-up

        def work():
            model = LabelModel(cardinality=k, verbose=False)
            model.fit(L, seed=123, progress_bar=False)
            model.predict_proba(L)
    else:  # sklearn: the end-model anchor
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        data = json.load(open(job["data"]))

        def work():
            X = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(data["texts"])
            LogisticRegression(max_iter=1000).fit(X, data["labels"], sample_weight=data["weights"])

    first_peak = []

    def repeat():
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
        if not first_peak:  # the peak of one run (later runs may grow the heap a little)
            first_peak.append(peak_mb())
        return {"seconds": seconds}

    serve_protocol({"kind": job["kind"]}, repeat,
                   lambda: {"peak_rss_mb": first_peak[0] if first_peak else peak_mb(), "peak_rss_all_runs_mb": peak_mb()})


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    result = {"apply": cmd_apply, "fit": cmd_fit, "wrench": cmd_wrench, "analysis": cmd_analysis,
              "serve": cmd_serve}[command](*args)
    if result is not None:
        print(json.dumps(result, default=float))
