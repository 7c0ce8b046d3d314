"""Chapter 3: train a delay classifier from SQL on the label model's probabilistic labels.

Three models learn from the same flights with different labels: the expert's small gold
sample only, the labeling functions' majority vote, and the label model's probabilities
weighted by confidence. All three then predict later months, where the true arrival
delays are known.

Chapter 1 leaves ``delay_labels`` (and ``delay_majority``). When it has not run, this
chapter builds the same kind of labels itself: a few labeling functions as SQL
expressions and a small naive-Bayes label model whose accuracies come from the expert
sample.
"""

from __future__ import annotations

import math

TITLE = "Chapter 3 - training: CREATE MODEL on probabilistic labels"

FEATURES = "dep_hour, weekday, carrier, origin, distance, visib, precip, wind_speed"

# What a model may know before take-off; chapter 5 serves models trained on it.
FEATURE_VIEW = """
CREATE OR REPLACE VIEW delay_features AS
SELECT f.flight_id, f.month, f.sched_dep_time // 100 AS dep_hour, dayofweek(f.time_hour) AS weekday,
       f.carrier, f.origin, f.distance,
       coalesce(w.visib, 10) AS visib, coalesce(w.precip, 0) AS precip, coalesce(w.wind_speed, 0) AS wind_speed,
       CASE WHEN f.arr_delay > 15 THEN 'late' ELSE 'on_time' END AS truth
FROM flights AS f LEFT JOIN weather AS w USING (origin, time_hour)
WHERE f.arr_delay IS NOT NULL
"""


def run(tour) -> None:
    train_months, test_months = ("(1)", "(10)") if tour.quick else ("(1, 2, 3, 4, 5, 6, 7, 8, 9)", "(10, 11, 12)")
    epochs, batch = (3, 256) if tour.quick else (8, 1024)
    tour.say("The features a model may use are known before take-off: schedule, carrier, airport, weather.")
    tour.run(FEATURE_VIEW)
    key, classes, majority = _labels(tour)
    tour.say(f"\nLabels: {'delay_labels from chapter 1' if tour.facts.get('labels_from') == 'chapter 1' else 'built here (chapter 1 has not run)'}; "
             f"class order of the probabilities: {classes}.")
    tour.show("SELECT source, count(*) AS flights, round(avg(weight), 3) AS avg_weight FROM delay_labels GROUP BY ALL ORDER BY 1")

    common = f"epochs := {epochs}, batch_size := {batch}, lr := 0.003, hidden := [64, 32], seed := 0, validation_split := 0.1"
    join = f"FROM delay_features AS f JOIN delay_labels AS l ON f.flight_id = l.{key} WHERE f.month IN {train_months}"
    tour.say("\n1. The expert's gold sample alone: accurate labels, but few of them (so smaller batches and")
    tour.say("   more epochs, stopped early when the held-out loss stops improving).")
    tour.show(
        f"CREATE OR REPLACE MODEL delay_gold WITH ({common.replace(f'epochs := {epochs}, batch_size := {batch}', 'epochs := 40, batch_size := 64')}, "
        f"early_stopping := 3, classes := {classes}) AS\n"
        f"SELECT {FEATURES}, l.label {join} AND l.source = 'gold'"
    )
    tour.say("\n2. The labeling functions' majority vote, every flight with a vote, each counting the same:")
    tour.show(
        f"CREATE OR REPLACE MODEL delay_majority_vote WITH ({common}, classes := {classes}) AS\n"
        f"SELECT {FEATURES}, m.label FROM delay_features AS f JOIN {majority} AS m ON f.flight_id = m.{key}\n"
        f"WHERE f.month IN {train_months} AND m.label IS NOT NULL"
    )
    tour.say("\n3. The label model's probabilities as soft labels, each row weighted (gold rows most, abstains not at all):")
    tour.show(
        f"CREATE OR REPLACE MODEL delay_clf WITH ({common}, soft_label := 'probs', weight := 'weight',\n"
        f"    classes := {classes}) AS\nSELECT {FEATURES}, l.label, l.probs, l.weight {join}"
    )
    tour.say("\nEvery version is in the registry; every epoch in sqlml.training_runs:")
    tour.show("SELECT name, version, architecture, task, classes, status, weight_bytes FROM ml_models() ORDER BY name")
    tour.show(
        "SELECT model, epoch, round(train_loss, 4) AS train_loss, round(val_loss, 4) AS val_loss, rows, round(seconds, 2) AS seconds "
        "FROM sqlml.training_runs WHERE model = 'delay_clf' ORDER BY epoch"
    )
    tour.say(f"\nNow the later months {test_months}, against what really happened:")
    test = f"SELECT {FEATURES}, truth FROM delay_features WHERE month IN {test_months}"
    rows = tour.show(
        "\nUNION ALL\n".join(
            "SELECT model, rows, round(accuracy, 4) AS accuracy, round(f1, 4) AS macro_f1, round(log_loss, 4) AS log_loss "
            f"FROM ml_evaluate('{m}', '{test}', label := 'truth')"
            for m in ("delay_gold", "delay_majority_vote", "delay_clf")
        )
    )
    tour.facts["training"] = {r[0]: {"rows": r[1], "accuracy": r[2], "f1": r[3], "log_loss": r[4]} for r in rows}
    tour.say("\nHow far weak labels beat a few hundred expert labels depends on how good the labeling functions")
    tour.say("are; what holds either way is that hard majority votes, every row counted alike, teach the model")
    tour.say("overconfident probabilities (the highest log-loss), while the label model's weighted probabilities do not.")
    tour.say("\nMost flights arrive on time, so always saying 'on_time' already scores high accuracy (with a macro")
    tour.say("F1 near 0.45); log-loss measures the probabilities. Probabilities are what a delay alert uses:")
    tour.say("flag the flights with P(late) above 0.3, and see how many of them really were late.")
    late = classes.index("late") + 1
    alert = tour.show(
        "\nUNION ALL\n".join(
            f"SELECT '{m}' AS model, count(*) FILTER (WHERE p > 0.3) AS flagged,\n"
            "       round(avg((truth = 'late')::INT) FILTER (WHERE p > 0.3), 3) AS precision,\n"
            "       round(count(*) FILTER (WHERE p > 0.3 AND truth = 'late') / count(*) FILTER (WHERE truth = 'late'), 3) AS recall\n"
            f"FROM (SELECT truth, ml_predict_proba('{m}', {FEATURES})[{late}] AS p FROM delay_features WHERE month IN {test_months})"
            for m in ("delay_gold", "delay_majority_vote", "delay_clf")
        )
    )
    for model, flagged, precision, recall in alert:
        tour.facts["training"][model].update(flagged=flagged, precision=precision, recall=recall)
    tour.say("\nPredictions are SQL functions, vectorized, with the model loaded once per connection:")
    tour.show(
        f"SELECT flight_id, carrier, origin, dep_hour, truth,\n"
        f"       ml_predict('delay_clf', {FEATURES}) AS predicted,\n"
        f"       ml_predict_proba('delay_clf', {FEATURES}) AS probabilities\n"
        f"FROM delay_features WHERE month IN {test_months} ORDER BY flight_id LIMIT 5"
    )
    tour.say("\nOther strategies: strategy := 'data_parallel' trains the same model with PyTorch DDP over")
    tour.say("worker processes; an interrupted CREATE MODEL resumes from its last epoch's checkpoint.")


def _labels(tour) -> tuple[str, list[str], str]:
    """(key column, class order of probs, majority-vote table); labels built here if chapter 1 has not run."""
    con = tour.con
    if _exists(con, "delay_labels"):
        tour.facts["labels_from"] = "chapter 1"
        columns = [r[0] for r in con.sql("DESCRIBE delay_labels").fetchall()]
        key = "key" if "key" in columns else "flight_id"
    else:
        tour.facts["labels_from"] = "this chapter"
        key = "flight_id"
        _build_labels(tour)
    if not _exists(con, "delay_majority"):
        _build_majority(tour)
    return key, _class_order(con), "delay_majority"


def _exists(con, name: str) -> bool:
    found = con.sql(
        "SELECT (SELECT count(*) FROM duckdb_tables() WHERE table_name = ?) + "
        "(SELECT count(*) FROM duckdb_views() WHERE view_name = ?)",
        [name, name],
    ).fetchall()
    return found[0][0] > 0


def _class_order(con) -> list[str]:
    """Which class each position of ``probs`` stands for: read off confident rows."""
    rows = con.sql(
        "SELECT label, list_position(probs, list_max(probs)) AS at, count(*) FROM delay_labels "
        "WHERE probs IS NOT NULL AND confidence > 0.55 GROUP BY ALL ORDER BY 3 DESC"
    ).fetchall()
    order: dict[int, str] = {}
    for label, at, _ in rows:
        if at not in order and label not in order.values():
            order[at] = label
    return [order[i] for i in sorted(order)]


LFS = ["by_hour", "by_carrier", "by_weather", "by_wind", "by_season"]


def _build_votes(tour) -> None:
    tour.run(
        """
CREATE OR REPLACE TABLE delay_votes AS
SELECT flight_id,
       CASE WHEN flight_id % 200 = 0 THEN truth END AS expert_label,
       CASE WHEN dep_hour >= 17 THEN 'late' WHEN dep_hour < 9 THEN 'on_time' END AS by_hour,
       CASE WHEN carrier IN ('EV', 'YV', 'FL', 'F9') THEN 'late'
            WHEN carrier IN ('HA', 'AS', 'US', 'VX', 'DL', 'AA') THEN 'on_time' END AS by_carrier,
       CASE WHEN visib < 3 OR precip > 0 THEN 'late' END AS by_weather,
       CASE WHEN wind_speed > 20 THEN 'late' END AS by_wind,
       CASE WHEN month IN (9, 10, 11) THEN 'on_time' END AS by_season
FROM delay_features
"""
    )


def _build_labels(tour) -> None:
    """Labeling functions as SQL, and a naive-Bayes label model fitted on the expert sample."""
    tour.say("\nChapter 1 has not run, so the labels are made here: labeling functions as SQL expressions")
    tour.say("(NULL abstains) and a small label model that trusts each one as far as the expert sample says.")
    _build_votes(tour)
    lfs = LFS
    # naive Bayes over each function's outcome (late / on_time / abstain), counted on the expert sample
    counts = tour.con.sql(
        "UNPIVOT (SELECT expert_label, " + ", ".join(f"coalesce({lf}, 'abstain') AS {lf}" for lf in lfs)
        + " FROM delay_votes WHERE expert_label IS NOT NULL) ON " + ", ".join(lfs)
        + " INTO NAME lf VALUE outcome"
    ).aggregate("lf, outcome, expert_label, count(*) AS n").fetchall()
    n = {(lf, o, y): c for lf, o, y, c in counts}
    totals = {y: sum(c for (lf, o, yy), c in n.items() if yy == y and lf == lfs[0]) for y in ("late", "on_time")}
    prior = totals["late"] / (totals["late"] + totals["on_time"])

    def ratio(lf: str, outcome: str) -> float:
        p = {y: (n.get((lf, outcome, y), 0) + 1) / (totals[y] + 3) for y in totals}
        return math.log(p["late"] / p["on_time"])

    log_odds = " + ".join(
        f"CASE coalesce({lf}, 'abstain') "
        + " ".join(f"WHEN '{o}' THEN {ratio(lf, o):.6f}" for o in ("late", "on_time", "abstain"))
        + " END"
        for lf in lfs
    )
    tour.say("  evidence per vote, log P(vote | late) / P(vote | on_time), from the expert sample:")
    for lf in lfs:
        seen = [o for o in ("late", "on_time", "abstain") if any(n.get((lf, o, y)) for y in totals)]
        tour.say(f"    {lf:<11} " + "  ".join(f"{o}: {ratio(lf, o):+.2f}" for o in seen))
    votes = " + ".join(f"({lf} IS NOT NULL)::INT" for lf in lfs)
    tour.run(
        f"""
CREATE OR REPLACE TABLE delay_labels AS
WITH scored AS (
    SELECT flight_id, expert_label, {votes} AS n_votes,
           1 / (1 + exp(-(ln({prior} / (1 - {prior})) + {log_odds}))) AS p_late
    FROM delay_votes
)
SELECT flight_id,
       CASE WHEN expert_label IS NOT NULL THEN expert_label WHEN n_votes = 0 THEN NULL
            WHEN p_late > 0.5 THEN 'late' ELSE 'on_time' END AS label,
       CASE WHEN expert_label = 'late' THEN [0.0, 1.0] WHEN expert_label = 'on_time' THEN [1.0, 0.0]
            ELSE [1 - p_late, p_late] END::FLOAT[2] AS probs,
       CASE WHEN expert_label IS NOT NULL THEN 1.0 ELSE greatest(p_late, 1 - p_late) END AS confidence,
       CASE WHEN expert_label IS NOT NULL THEN 'gold' WHEN n_votes = 0 THEN 'abstain' ELSE 'weak' END AS source,
       CASE WHEN expert_label IS NOT NULL THEN 1.0 WHEN n_votes = 0 THEN 0.0 ELSE greatest(p_late, 1 - p_late) END AS weight
FROM scored
"""
    )


def _build_majority(tour) -> None:
    """Majority vote of the labeling functions (ties abstain); expert labels where there are some."""
    if not _exists(tour.con, "delay_votes"):
        _build_votes(tour)
    votes = " + ".join(f"({lf} IS NOT NULL)::INT" for lf in LFS)
    late_votes = " + ".join(f"({lf} IS NOT DISTINCT FROM 'late')::INT" for lf in LFS)
    tour.run(
        f"""
CREATE OR REPLACE TABLE delay_majority AS
SELECT flight_id,
       CASE WHEN expert_label IS NOT NULL THEN expert_label WHEN 2 * n_late > n_votes THEN 'late'
            WHEN 2 * n_late < n_votes THEN 'on_time' END AS label
FROM (SELECT flight_id, expert_label, {votes} AS n_votes, {late_votes} AS n_late FROM delay_votes)
"""
    )
