"""CREATE LABEL MODEL: bring the votes up to date, aggregate them in SQL, fit, write labels.

The data a label model sees is computed by DuckDB: each labeled row's vote *pattern*
(its sorted list of (lf, label) codes) and gold class, grouped into distinct
(pattern, gold) rows with a count; for the methods that need it, the vote
co-occurrence matrix is a self-join of those patterns. Memory therefore scales with
the number of distinct patterns, not with rows x LFs x classes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sqlml import bounds, progress
from sqlml.bounds import number, whole
from sqlml.errors import DataError, InvalidOptionError, LabelingError
from sqlml.labeling import store
from sqlml.labeling.lf import source_columns
from sqlml.labeling.models import DEFAULT_METHOD, METHOD_OPTIONS, METHODS, USES_COOCCURRENCE
from sqlml.labeling.models.base import normalise
from sqlml.labeling.models.stats import VoteStats, clamp_gold
from sqlml.labeling.store import LabelSet
from sqlml.sqlutil import fetch_value, quote_ident

COMMON_OPTIONS = ("method", "classes", "class_balance", "seed", "anchor", "gold_weight", "weak_weight")
GOLD_BALANCE_STRENGTH = 50.0  # pseudo-rows the estimated balance counts for next to gold rows
ANCHOR_STRENGTH = 10.0  # pseudo-votes the model's LF estimate counts for next to gold votes
ROWS_PER_PASS = 250_000  # rows whose patterns one aggregate computes (memory, not speed)
PATTERNS, ENTRIES, OUT = "__sqlml_lm_patterns", "__sqlml_lm_entries", "__sqlml_lm_out"
ROW_SIGNATURES = "__sqlml_lm_row_signatures"  # (__key, sig, gold) of the voted rows, without GOLD


def _choice(*choices):
    return lambda v: None if v in choices else "expected one of " + ", ".join(map(repr, choices))


#: The range of every option with one (docs/limits.md), checked before anything runs.
RANGES = {
    "seed": whole(0, bounds.MAX_SEED),
    "anchor": _choice(True, False),
    "gold_weight": number(0, 1e6),
    "weak_weight": number(0, 1e6),
    "epochs": whole(1, bounds.MAX_EPOCHS),
    "lr": number(0, bounds.MAX_LR, low_open=True),
    "l2": number(0, 1e6),
    "abstain": _choice("ignore", "model"),
    "shrinkage": number(0, 1e12),
    "max_iter": whole(1, bounds.MAX_EPOCHS),
    "tol": number(0, 1),
    "smoothing": number(0, 1e6),
    "prior_accuracy": number(0, 1, low_open=True, high_open=True),
    "min_overlap": number(0, 1e12),
    "max_triplets": whole(1, 1_000_000),
}


def check_options(options: dict) -> str:
    method = str(options.get("method", DEFAULT_METHOD)).lower()
    if method not in METHODS and method != "auto":
        raise InvalidOptionError("CREATE LABEL MODEL", "method",
                                 f"unknown method {method!r}; use one of {', '.join(METHODS)} or 'auto'")
    allowed = COMMON_OPTIONS + METHOD_OPTIONS.get(method, ())
    where = f"CREATE LABEL MODEL (method {method})"
    for option, value in options.items():
        if option not in allowed:
            raise InvalidOptionError(where, option, allowed=allowed)
        if option in RANGES:
            bounds.require(where, option, value, RANGES[option])
    return method


def create_label_model(connection, name: str, table: str, *, key=None, gold=None, options: dict, replace: bool):
    from sqlml.labeling import output
    from sqlml.labeling.votes import apply

    started = time.perf_counter()
    duck = connection.duckdb
    method = check_options(options)
    output.check_name(duck, name, replace)
    apply(connection, table, key)
    label_set = store.require_label_set(duck, table)
    declared = options.get("classes")
    if declared is not None and [str(c) for c in declared] != label_set.classes:
        raise LabelingError(
            f"label model {name!r}: classes {declared} differ from the classes {label_set.classes} declared "
            f"for {table!r} by its labeling functions."
        )
    lfs = store.lfs_of(duck, table)
    if gold is not None:
        columns = source_columns(duck, label_set.parts)
        if gold.lower() not in columns:
            raise DataError(f"label model {name!r}: table {table!r} has no gold column {gold!r}.", obj=name, column=gold)
        gold = columns[gold.lower()][0]
    bar = progress.start(3, f"CREATE LABEL MODEL {name}", unit="steps")
    try:
        stats_started = time.perf_counter()
        lf_ids = [lf.lf_id for lf in lfs]
        rows = row_patterns(duck, label_set, lf_ids, gold)
        stats = collect(duck, label_set, lf_ids, rows)
        bar.update(1)
        if stats.n_rows == 0:
            raise DataError(f"label model {name!r}: table {table!r} has no rows to label.", obj=name)
        if method == "auto":  # the method that labels the gold rows best, fitted without them
            from sqlml.labeling.choose import choose_method

            method, scores = choose_method(duck, stats, options)
            options = {**options, "chosen_method": method, "gold_accuracy_by_method": scores}
        fit_options = resolve_options(duck, stats, method, options)
        fit_started = time.perf_counter()
        stats_seconds = fit_started - stats_started
        model = METHODS[method](stats, fit_options)
        if options.get("anchor") and (stats.gold >= 0).any() and method != "majority":
            anchor_on_gold(model, stats)
        fit_seconds = time.perf_counter() - fit_started
        bar.update(1)
        probs = clamp_gold(model.posterior(stats), stats.gold, stats.k)
        summary = output.write(
            connection, name, label_set, stats, rows, model, probs, lfs, method=method, options=options, gold=gold,
            fit_seconds=fit_seconds, stats_seconds=stats_seconds, replace=replace,
        )
        bar.update(1)
    finally:
        bar.close()
        for temp in (PATTERNS, ENTRIES, ROW_SIGNATURES):
            duck.execute(f"DROP TABLE IF EXISTS {temp}")
    summary["seconds"] = [round(time.perf_counter() - started, 4)]
    return summary


@dataclass
class RowPatterns:
    """SQL giving every labeled row's (__key, sig, gold), one slice of the rows at a time.

    One aggregate over the votes, the labeled rows (so rows without votes get the empty
    pattern) and, with GOLD, the gold values: no join over rows. A row's pattern is one
    number, sum over its votes of (label + 1) * (k + 1)^j, when that fits in BIGINT
    (m * log2(k + 1) < 62), else the sorted list of its codes j * k + label. It runs twice
    (for the pattern counts, then for the output) instead of keeping a per-row table, in
    ``slices`` passes over hash(key) % slices, so that the hash table of one pass holds
    about ROWS_PER_PASS rows (measured at 1M rows x 10 LFs: one pass +112 MB, four +26 MB).
    ``voted_only`` leaves out rows without votes (half the work: for counting patterns
    without GOLD, where those rows are simply n_rows minus the rest).
    """

    branches: list[str]  # votes, labeled rows[, gold]: each with a {slice} placeholder
    params: list
    sig: str
    having: str
    empty: str  # the empty pattern, as SQL
    n_rows: int
    slices: int
    materialized: str | None = None  # a table of the voted rows' (__key, sig, gold), once collected

    @property
    def with_gold(self) -> bool:
        return len(self.branches) > 2

    def sql(self, part: int, voted_only: bool = False) -> str:
        where = f"hash(__k) % {self.slices} = {part}" if self.slices > 1 else "true"
        branches = self.branches[:1] if voted_only else self.branches
        union = " UNION ALL ".join(b.format(slice=where) for b in branches)
        return f"SELECT __key, {self.sig} AS sig, coalesce(max(g), -1) AS gold FROM ({union}) GROUP BY __key{self.having}"


def row_patterns(duck, label_set: LabelSet, lf_ids: list[int], gold: str | None) -> RowPatterns:
    k, key = label_set.k, label_set.key_sql
    if numeric_patterns(k, len(lf_ids)):  # (k+1)^j by lf id, as a constant list (no join)
        by_id = [0] * (max(lf_ids) + 1)
        for j, lf_id in enumerate(lf_ids):
            by_id[lf_id] = (k + 1) ** j
        table = "[" + ", ".join(f"{v}::BIGINT" for v in by_id) + "]"
        code, empty = f"(label + 1) * {table}[lf + 1]", "0::BIGINT"
        sig = f"CAST(coalesce(sum(code), {empty}) AS BIGINT)"
    else:
        by_id = ["NULL"] * (max(lf_ids) + 1)  # votes of other lf ids (none expected) count for nothing
        for j, lf_id in enumerate(lf_ids):
            by_id[lf_id] = str(j)
        table = "[" + ", ".join(by_id) + "]"
        code, empty = f"{table}[lf + 1] * {k} + label", "[]::INTEGER[]"
        sig = f"coalesce(list(CAST(code AS INTEGER) ORDER BY code) FILTER (WHERE code IS NOT NULL), {empty})"
    branches = [
        f"SELECT __k AS __key, {code} AS code, NULL::INTEGER AS g, false AS listed "
        f"FROM (SELECT {key} AS __k, lf, label FROM {label_set.votes_sql}) WHERE {{slice}}",
        f"SELECT __k, NULL, NULL, true FROM (SELECT {key} AS __k FROM {label_set.rows_sql}) WHERE {{slice}}",
    ]
    params, having = [], ""
    if gold is not None:  # gold of rows outside the labeled rows is dropped by HAVING
        g = f"ml_class_index(?, {quote_ident(gold)})"
        branches.append(
            f"SELECT __k, NULL, g, false FROM (SELECT {key} AS __k, {g} AS g FROM {label_set.source_sql}) "
            f"WHERE g IS NOT NULL AND {{slice}}"
        )
        params, having = [label_set.classes], " HAVING bool_or(listed)"
    n_rows = int(fetch_value(duck, f"SELECT count(*) FROM {label_set.rows_sql}"))
    slices = max(1, -(-n_rows // ROWS_PER_PASS))
    return RowPatterns(branches, params, sig, having, empty, n_rows, slices)


def numeric_patterns(k: int, m: int) -> bool:
    return m * np.log2(k + 1) < 62


def collect(duck, label_set: LabelSet, lf_ids: list[int], rows: RowPatterns) -> VoteStats:
    """Patterns and counts from SQL into a VoteStats; temp tables PATTERNS (sig, gold, n, pid)
    and ENTRIES (pid, n, code) stay for the co-occurrence matrix and the output."""
    k, m = label_set.k, len(lf_ids)
    voted_only = not rows.with_gold  # then the rows without votes are counted, not aggregated
    if voted_only:  # the voted rows' patterns are kept (two BIGINTs a row) for writing the output
        for part in range(rows.slices):
            lead = f"CREATE OR REPLACE TEMP TABLE {ROW_SIGNATURES} AS " if part == 0 else f"INSERT INTO {ROW_SIGNATURES} "
            duck.execute(lead + rows.sql(part, True), rows.params)
        rows.materialized = ROW_SIGNATURES
        duck.execute(f"CREATE OR REPLACE TEMP TABLE {PATTERNS} AS SELECT sig, gold, count(*) AS n "
                     f"FROM {ROW_SIGNATURES} GROUP BY sig, gold")
    for part in range(rows.slices) if not voted_only else ():
        counted = f"SELECT sig, gold, count(*) AS n FROM ({rows.sql(part, voted_only)}) GROUP BY sig, gold"
        if part == 0:
            duck.execute(f"CREATE OR REPLACE TEMP TABLE {PATTERNS} AS {counted}", rows.params)
        else:
            duck.execute(f"INSERT INTO {PATTERNS} {counted}", rows.params)
    unvoted = rows.n_rows - int(fetch_value(duck, f"SELECT coalesce(sum(n), 0) FROM {PATTERNS}")) if voted_only else 0
    duck.execute(
        f"CREATE OR REPLACE TEMP TABLE {PATTERNS} AS "
        f"SELECT sig, gold, n, CAST(row_number() OVER (ORDER BY sig, gold) - 1 AS INTEGER) AS pid FROM "
        f"(SELECT sig, gold, sum(n) AS n FROM (FROM {PATTERNS} UNION ALL SELECT {rows.empty}, -1, ? WHERE ? > 0) "
        f"GROUP BY sig, gold)",
        [unvoted, unvoted],
    )
    if numeric_patterns(k, m):
        mapping = ", ".join(f"({j}, {(k + 1) ** j})" for j in range(m))
        duck.execute(
            f"CREATE OR REPLACE TEMP TABLE {ENTRIES} AS "
            f"SELECT p.pid, p.n, m.j * {k} + (p.sig // m.mult) % {k + 1} - 1 AS code "
            f"FROM {PATTERNS} AS p, (VALUES {mapping}) AS m(j, mult) WHERE (p.sig // m.mult) % {k + 1} > 0"
        )
    else:
        duck.execute(f"CREATE OR REPLACE TEMP TABLE {ENTRIES} AS SELECT pid, n, unnest(sig) AS code FROM {PATTERNS}")
    patterns = duck.execute(f"SELECT n, gold FROM {PATTERNS} ORDER BY pid").fetchnumpy()
    entries = duck.execute(f"SELECT pid, code FROM {ENTRIES} ORDER BY pid, code").fetchnumpy()
    codes = np.asarray(entries["code"], dtype=np.int64)
    return VoteStats(
        k=k,
        m=m,
        counts=np.asarray(patterns["n"], dtype=np.float64),
        gold=np.asarray(patterns["gold"], dtype=np.int64),
        entry_pattern=np.asarray(entries["pid"], dtype=np.int64),
        entry_lf=codes // k,
        entry_label=codes % k,
    )


def cooccurrence(duck, stats: VoteStats) -> np.ndarray:
    """O[a, b] = fraction of rows with votes a and b (a = lf * k + label): a self-join in SQL."""
    d = stats.m * stats.k
    O = np.zeros((d, d))
    pairs = duck.execute(
        f"SELECT a.code AS a, b.code AS b, sum(a.n) AS n FROM {ENTRIES} AS a JOIN {ENTRIES} AS b USING (pid) GROUP BY ALL"
    ).fetchnumpy()
    if len(pairs["a"]):
        O[np.asarray(pairs["a"], dtype=np.int64), np.asarray(pairs["b"], dtype=np.int64)] = np.asarray(pairs["n"], dtype=np.float64)
    return O / max(stats.n_rows, 1.0)


def resolve_options(duck, stats: VoteStats, method: str, options: dict) -> dict:
    """The options a method gets: seed, co-occurrence, and the class balance policy."""
    fit_options = {k: v for k, v in options.items() if k in METHOD_OPTIONS[method]}
    fit_options["seed"] = int(options.get("seed", 0))
    if method in USES_COOCCURRENCE:
        fit_options["cooccurrence"] = cooccurrence(duck, stats)
    k = stats.k
    gold = stats.gold >= 0
    gold_counts = np.bincount(stats.gold[gold], weights=stats.counts[gold], minlength=k)
    balance = options.get("class_balance")
    if isinstance(balance, str):
        policy = balance.lower()
        if policy == "uniform":
            fit_options["class_balance"] = np.full(k, 1.0 / k)
        elif policy == "gold":
            if not gold.any():
                raise InvalidOptionError("CREATE LABEL MODEL", "class_balance", "'gold' needs a GOLD column with labels")
            fit_options["class_balance"] = normalise(gold_counts + 1.0)
        elif policy == "estimate":  # from the votes alone, even with GOLD rows
            fit_options["class_balance"] = balance_from_votes(stats, method, fit_options)
        else:
            raise InvalidOptionError(
                "CREATE LABEL MODEL", "class_balance", "give a list of k proportions, 'estimate', 'gold' or 'uniform'"
            )
    elif balance is not None:
        values = np.asarray(balance, dtype=np.float64) if isinstance(balance, (list, tuple)) else None
        if values is None or len(values) != k or (values < 0).any() or values.sum() <= 0:
            raise InvalidOptionError("CREATE LABEL MODEL", "class_balance", f"give {k} non-negative proportions")
        fit_options["class_balance"] = normalise(values)
    if "class_balance" not in fit_options and gold.any() and method in USES_COOCCURRENCE:
        # gold rows estimate the balance, the moment estimate acting as a prior of fixed strength
        from sqlml.labeling.models.triplet import class_balance_from_moments

        estimate = class_balance_from_moments(fit_options["cooccurrence"], stats, fit_options)
        fit_options["class_balance"] = normalise(gold_counts + GOLD_BALANCE_STRENGTH * estimate)
    return fit_options


def balance_from_votes(stats: VoteStats, method: str, fit_options: dict) -> np.ndarray | None:
    """The class balance the votes imply, gold rows left out of it: the moment estimate for
    the co-occurrence methods, the frequency of clear majorities for majority vote, and
    None (EM estimates it) for Dawid-Skene."""
    if method in USES_COOCCURRENCE:
        from sqlml.labeling.models.triplet import class_balance_from_moments

        return class_balance_from_moments(fit_options["cooccurrence"], stats, fit_options)
    if method == "majority":
        from sqlml.labeling.models.majority import clear_majority_balance

        return clear_majority_balance(stats)
    return None


def anchor_on_gold(model, stats: VoteStats) -> None:
    """Blend each LF's vote distribution P(a | y, fired) with what the gold rows show."""
    k = stats.k
    gold = stats.gold >= 0
    onehot = np.zeros((stats.n_patterns, k))
    onehot[gold] = np.eye(k)[stats.gold[gold]]
    seen = stats.weighted_votes(onehot * stats.counts[:, None])  # [m, a, y] gold votes
    vote = np.exp(model.log_vote)
    fired = vote.sum(axis=1, keepdims=True)
    conditional = vote / np.maximum(fired, 1e-12)
    n_seen = seen.sum(axis=1, keepdims=True)
    blended = (seen + ANCHOR_STRENGTH * conditional) / (n_seen + ANCHOR_STRENGTH)
    model.log_vote = np.log(np.clip(blended * fired, 1e-12, None))
