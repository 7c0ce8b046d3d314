"""The label model's output table and catalog entries.

Table ``name``: the key column (named as in the source), ``label`` (class name),
``probs`` FLOAT[k] (in declared class order), ``confidence`` (max of probs),
``source`` ('gold' | 'weak' | 'abstain') and ``weight``: ``gold_weight`` (1.0) for
gold rows, ``weak_weight`` (0.9) x (confidence - 1/k) / (1 - 1/k) for rows with votes,
0 for rows without votes or gold (they carry the class balance as probs).

Hard labels break exact ties by the larger class balance, then the first declared class.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np

from sqlml import catalog
from sqlml.errors import DataError, ObjectExistsError
from sqlml.labeling import store
from sqlml.labeling.fit import OUT, PATTERNS
from sqlml.sqlutil import fetch_value, quote_ident

SOURCES = ("gold", "weak", "abstain")
PER_PATTERN = "__sqlml_lm_per_pattern"


def check_name(duck, name: str, replace: bool) -> None:
    existing = catalog.get_object(duck, store.MODEL_KIND, name)
    if existing is not None and not replace:
        raise ObjectExistsError(store.MODEL_KIND, name)
    if existing is None and fetch_value(
        duck, "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND lower(table_name) = lower(?)", [name]
    ):
        raise DataError(
            f"a table named {name!r} exists and is not a label model's output; choose another name for the "
            f"label model or drop that table.", obj=name,
        )


def hard_labels(probs: np.ndarray, balance: np.ndarray) -> np.ndarray:
    top = probs.max(axis=1, keepdims=True)
    tied = probs >= top - 1e-9
    k = probs.shape[1]
    rank = balance * (k + 1) - np.arange(k) * 1e-6  # larger balance first, then lower index
    return np.where(tied, rank[None, :], -np.inf).argmax(axis=1)


def write(connection, name, label_set, stats, rows, model, probs, lfs, *, method, options, gold, fit_seconds,
          stats_seconds, replace):
    """Per-pattern results (P rows, from numpy) joined back to every row's pattern in SQL.

    Python never holds a per-row array: DuckDB recomputes each row's pattern and streams
    the join with the small per-pattern table straight into the output table.
    """
    duck = connection.duckdb
    k = stats.k
    labels = hard_labels(probs, model.class_balance)
    confidence = probs.max(axis=1)
    has_votes = np.bincount(stats.entry_pattern, minlength=stats.n_patterns) > 0
    is_gold = stats.gold >= 0
    source = np.where(is_gold, 0, np.where(has_votes, 1, 2))  # index into SOURCES
    gold_weight = float(options.get("gold_weight", 1.0))
    weak_weight = float(options.get("weak_weight", 0.9))
    certainty = np.clip((confidence - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)
    weight = np.where(is_gold, gold_weight, np.where(has_votes, weak_weight * certainty, 0.0))
    # a numpy scan of P rows (no Arrow: its scan machinery costs ~50 MB of RSS; no list
    # parameters: DuckDB holds them as boxed values, ~40 MB for 30k patterns)
    columns = {"pid": np.arange(stats.n_patterns, dtype=np.int32), "label": labels.astype(np.int32),
               "confidence": confidence.astype(np.float32), "source": source.astype(np.int8),
               "weight": weight.astype(np.float32)}
    columns.update({f"p{c}": np.ascontiguousarray(probs[:, c], dtype=np.float32) for c in range(k)})
    duck.register(PER_PATTERN, columns)
    try:
        probs_sql = ", ".join(f"r.p{c}" for c in range(k))
        duck.execute(
            f"CREATE OR REPLACE TEMP TABLE {OUT} AS SELECT p.sig, p.gold, (?::VARCHAR[])[r.label + 1] AS label, "
            f"CAST([{probs_sql}] AS FLOAT[{k}]) AS probs, r.confidence, (?::VARCHAR[])[r.source + 1] AS source, "
            f"r.weight FROM {PATTERNS} AS p JOIN {PER_PATTERN} AS r USING (pid)",
            [label_set.classes, list(SOURCES)],
        )
    finally:
        duck.unregister(PER_PATTERN)
    target = quote_ident(name)
    select = (
        f"SELECT r.__key AS {quote_ident(label_set.key)}, o.label, o.probs, o.confidence, o.source, o.weight "
        f"FROM ({{}}) AS r JOIN {OUT} AS o ON o.sig = r.sig AND o.gold = r.gold"
    )
    try:
        duck.execute(f"DROP TABLE IF EXISTS {target}")
        for part in range(rows.slices):  # one slice of the rows at a time (see fit.RowPatterns)
            lead = f"CREATE TABLE {target} AS " if part == 0 else f"INSERT INTO {target} "
            duck.execute(lead + select.format(rows.sql(part)), rows.params)
    finally:
        duck.execute(f"DROP TABLE IF EXISTS {OUT}")
    source = np.array(SOURCES)[source]
    counts = {s: float(stats.counts[source == s].sum()) for s in ("gold", "weak", "abstain")}
    accuracies = model.accuracies()
    fitted_at = datetime.now()
    lf_accuracy = {lf.name: (None if np.isnan(a) else round(float(a), 6)) for lf, a in zip(lfs, accuracies, strict=True)}
    clean_options = {key: value for key, value in options.items()}
    properties = {
        "table": label_set.table,
        "key": label_set.key,
        "gold": gold,
        "method": method,
        "options": clean_options,
        "classes": label_set.classes,
        "class_balance": [round(float(p), 6) for p in model.class_balance],
        "lf_accuracies": lf_accuracy,
        "stats_seconds": round(stats_seconds, 6),  # SQL: vote patterns (and co-occurrence)
        "fit_seconds": round(fit_seconds, 6),  # numpy: the method itself
        "iterations": int(model.iterations),
        "history_tail": [round(h, 8) for h in model.history[-5:]],
        "rows": int(stats.n_rows),
        "patterns": int(stats.n_patterns),
        "gold_rows": int(counts["gold"]),
        "weak_rows": int(counts["weak"]),
        "abstain_rows": int(counts["abstain"]),
        "fitted_at": fitted_at.isoformat(),
    }
    json.dumps(properties, default=str)  # fail here, not in the catalog, on odd option values
    catalog.put_object(duck, store.MODEL_KIND, name, properties, replace=replace)
    duck.execute("DELETE FROM sqlml.label_model_lfs WHERE model = ?", [name])
    duck.executemany(
        "INSERT INTO sqlml.label_model_lfs VALUES (?, ?, ?, ?, ?)",
        [[name, label_set.table, lf, acc, fitted_at] for lf, acc in lf_accuracy.items()],
    ) if lf_accuracy else None

    return {
        "label_model": [name],
        "method": [method],
        "rows": [int(stats.n_rows)],
        "gold": [int(counts["gold"])],
        "weak": [int(counts["weak"])],
        "abstain": [int(counts["abstain"])],
        "class_balance": [[round(float(p), 4) for p in model.class_balance]],
        "fit_seconds": [round(fit_seconds, 4)],
    }


def drop_label_model(duck, name: str, *, missing_ok: bool = False) -> None:
    if catalog.get_object(duck, store.MODEL_KIND, name) is None:
        if missing_ok:
            return
        catalog.require_object(duck, store.MODEL_KIND, name)
    duck.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")
    duck.execute("DELETE FROM sqlml.label_model_lfs WHERE model = ?", [name])
    catalog.delete_object(duck, store.MODEL_KIND, name)
