"""The label model's output table and catalog entries.

Table ``name``: the key column (named as in the source), ``label`` (class name),
``probs`` FLOAT[k] (in declared class order), ``confidence`` (max of probs),
``source`` ('gold' | 'weak' | 'abstain') and ``weight``: ``gold_weight`` (1.0) for
gold rows, ``weak_weight`` (0.9) x (confidence - 1/k) / (1 - 1/k) for rows with votes,
0 for rows without votes or gold (their probs: the posterior given no votes).

Hard labels break exact ties by the larger class balance, then the first declared class.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np

from sqlml import catalog
from sqlml.errors import DataError
from sqlml.labeling import store
from sqlml.labeling.fit import OUT, PATTERNS
from sqlml.sqlutil import fetch_value, quote_ident

SOURCES = ("gold", "weak", "abstain")
PER_PATTERN = "__sqlml_lm_per_pattern"


def check_name(duck, name: str, replace: bool) -> None:
    existing = catalog.get_object(duck, store.MODEL_KIND, name)
    catalog.require_new(duck, store.MODEL_KIND, name, replace=replace, exists=existing is not None)
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


def pattern_results(stats, model, probs, options: dict) -> dict[str, np.ndarray]:
    """Per pattern: hard label, confidence, source, weight and the probabilities (columns)."""
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
    return columns


def write_labels(duck, target: str, label_set, stats, rows, columns: dict, *, temp: bool = False) -> None:
    """Per-pattern results (P rows, from numpy) joined back to every row's pattern in SQL.

    Python never holds a per-row array: DuckDB recomputes each row's pattern and streams
    the join with the small per-pattern table straight into ``target`` (created here).
    """
    k = stats.k
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
    select = (
        f"SELECT r.__key AS {quote_ident(label_set.key)}, o.label, o.probs, o.confidence, o.source, o.weight "
        f"FROM ({{}}) AS r JOIN {OUT} AS o ON o.sig = r.sig AND o.gold = r.gold"
    )
    create = "CREATE TEMP TABLE" if temp else "CREATE TABLE"
    # without GOLD, rows without votes all have the empty pattern: the slices aggregate the
    # votes alone (a third of the work of also grouping every labeled row), and the rest are
    # added by one anti-join against what was written
    voted_only = not rows.with_gold
    try:
        duck.execute(f"DROP TABLE IF EXISTS {target}")
        if rows.materialized:  # the voted rows' patterns, kept by fit.collect
            duck.execute(f"{create} {target} AS " + select.format(f"FROM {rows.materialized}"))
        for part in range(rows.slices) if not rows.materialized else ():  # one slice at a time (fit.RowPatterns)
            lead = f"{create} {target} AS " if part == 0 else f"INSERT INTO {target} "
            duck.execute(lead + select.format(rows.sql(part, voted_only)), rows.params)
        if voted_only:
            key = quote_ident(label_set.key)
            duck.execute(
                f"INSERT INTO {target} SELECT r.{key}, o.label, o.probs, o.confidence, o.source, o.weight "
                f"FROM {label_set.rows_sql} AS r, {OUT} AS o WHERE o.sig = {rows.empty} AND o.gold = -1 "
                f"AND NOT EXISTS (SELECT 1 FROM {target} AS t WHERE t.{key} = r.{key})"
            )
    finally:
        duck.execute(f"DROP TABLE IF EXISTS {OUT}")


def write(connection, name, label_set, stats, rows, model, probs, lfs, *, method, options, gold, fit_seconds,
          stats_seconds, replace):
    """The output table ``name``, the catalog entry, the learned accuracies and the parameters."""
    duck = connection.duckdb
    columns = pattern_results(stats, model, probs, options)
    write_labels(duck, quote_ident(name), label_set, stats, rows, columns)
    source = columns["source"]
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
    save_params(duck, name, model, lfs)

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
    duck.execute("DELETE FROM sqlml.label_model_params WHERE model = ?", [name])
    catalog.delete_object(duck, store.MODEL_KIND, name)


def save_params(duck, name: str, model, lfs) -> None:
    """What ml_label_model_predict needs to label new rows: the fitted distributions."""
    from sqlml.labeling.models.majority import MajorityModel

    duck.execute("DELETE FROM sqlml.label_model_params WHERE model = ?", [name])
    duck.execute(
        "INSERT INTO sqlml.label_model_params VALUES (?, ?, ?, ?, ?, ?, ?)",
        [name, [lf.name for lf in lfs], [lf.fingerprint for lf in lfs],
         "votes" if isinstance(model, MajorityModel) else "model",
         [float(v) for v in model.class_balance], np.asarray(model.log_vote, dtype=np.float64).ravel().tolist(),
         None if model.log_abstain is None else np.asarray(model.log_abstain, dtype=np.float64).ravel().tolist()],
    )
