"""Noise-aware training: per-row weights and soft labels from a label model enter the loss."""

import io

import numpy as np
import pyarrow as pa
import pytest
import torch

ACCURACY = "SELECT accuracy FROM ml_evaluate(?, 'test', label := 'truth')"


def weak_labels(n, seed):
    """Rows with a true label and five labeling-function votes at known noise rates.

    LF0 is right 95% of the time. LF1..LF4 are biased towards 'late': they say 'late'
    for 90% of late flights but also for 70% of on-time ones, so their majority outvotes
    LF0 on most on-time rows. A label model that knows these rates (as one fitted to
    the votes estimates them) weighs LF0 correctly; majority vote cannot.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 2))
    truth = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    p_late = np.array([[0.05, 0.95]] + [[0.7, 0.9]] * 4)  # P(vote late | truth = on_time, late)
    votes = (rng.uniform(size=(n, 5)) < p_late[:, truth].T).astype(int)
    majority = (votes.sum(axis=1) >= 3).astype(int)
    like = np.ones((n, 2))
    for j in range(5):
        for c in (0, 1):
            like[:, c] *= np.where(votes[:, j] == 1, p_late[j, c], 1 - p_late[j, c])
    probs = like / like.sum(axis=1, keepdims=True)
    names = np.array(["on_time", "late"])
    return pa.table(
        {
            "key": np.arange(n),
            "x1": x[:, 0],
            "x2": x[:, 1],
            "truth": names[truth],
            "majority": names[majority],
            "label": names[probs.argmax(axis=1)],
            # the label model's columns: probs in class order ['late', 'on_time']
            "probs": pa.array(probs[:, ::-1].astype(np.float32).tolist(), pa.list_(pa.float32(), 2)),
            "confidence": probs.max(axis=1),
        }
    )


@pytest.fixture
def noisy(con):
    con.register("train_arrow", weak_labels(6000, seed=1))
    con.register("test_arrow", weak_labels(3000, seed=2))
    con.sql("CREATE TABLE train AS SELECT * FROM train_arrow")
    con.sql("CREATE TABLE test AS SELECT * FROM test_arrow")
    return con


def test_label_model_weighting_beats_majority_labels(noisy):
    con = noisy
    base = "architecture := 'logistic', epochs := 6, lr := 0.05, seed := 0"
    majority_acc = con.sql("SELECT avg((majority = truth)::INT) FROM train").fetchall()[0][0]
    assert majority_acc < 0.7  # the majority vote is badly wrong at these noise rates
    con.sql(f"CREATE MODEL by_majority WITH ({base}, label := 'majority') AS SELECT x1, x2, majority FROM train")
    con.sql(f"CREATE MODEL by_confidence WITH ({base}, weight := 'confidence') AS SELECT x1, x2, label, confidence FROM train")
    con.sql(
        f"CREATE MODEL by_probs WITH ({base}, soft_label := 'probs', classes := ['late', 'on_time']) "
        "AS SELECT x1, x2, label, probs FROM train"
    )
    accuracy = {m: con.sql(ACCURACY, [m]).fetchall()[0][0] for m in ("by_majority", "by_confidence", "by_probs")}
    assert accuracy["by_confidence"] > accuracy["by_majority"] + 0.15, accuracy
    assert accuracy["by_probs"] > accuracy["by_majority"] + 0.15, accuracy
    assert accuracy["by_probs"] > 0.9 and accuracy["by_confidence"] > 0.9, accuracy


def test_zero_weight_rows_do_not_count(con):
    con.sql(
        "CREATE TABLE t AS SELECT x, CASE WHEN flip THEN NOT truth ELSE truth END AS label, "
        "CASE WHEN flip THEN 0.0 ELSE 1.0 END AS w, truth FROM (SELECT (i % 100) / 50.0 - 1 AS x, "
        "(i % 100) >= 50 AS truth, hash(i) % 10 < 6 AS flip FROM range(3000) r(i))"
    )
    base = "architecture := 'logistic', epochs := 8, lr := 0.1"
    con.sql(f"CREATE MODEL weighted WITH ({base}, weight := 'w') AS SELECT x, label, w FROM t")
    con.sql(f"CREATE MODEL plain WITH ({base}) AS SELECT x, label FROM t")
    query = "SELECT accuracy FROM ml_evaluate(?, 'SELECT x, truth AS label FROM t')"
    assert con.sql(query, ["weighted"]).fetchall()[0][0] > 0.95
    assert con.sql(query, ["plain"]).fetchall()[0][0] < 0.6  # 60% flipped labels teach the opposite rule


def test_one_hot_soft_labels_equal_hard_labels(con):
    con.sql(
        "CREATE TABLE t AS SELECT (i % 37) / 37.0 AS x, CASE WHEN i % 37 > 18 THEN 'b' ELSE 'a' END AS label, "
        "CASE WHEN i % 37 > 18 THEN [0.0, 1.0] ELSE [1.0, 0.0] END::FLOAT[2] AS probs FROM range(1000) r(i)"
    )
    con.sql("CREATE MODEL hard WITH (epochs := 2, seed := 5) AS SELECT x, label FROM t")
    con.sql("CREATE MODEL soft WITH (epochs := 2, seed := 5, soft_label := 'probs') AS SELECT x, label, probs FROM t")
    w = {}
    for name in ("hard", "soft"):
        blob = con.sql("SELECT weights FROM sqlml.models WHERE name = ?", [name]).fetchall()[0][0]
        w[name] = torch.load(io.BytesIO(blob), weights_only=True)
    assert max((w["hard"][k] - w["soft"][k]).abs().max().item() for k in w["hard"]) < 1e-6


def test_soft_label_rows_without_probs_use_the_label(con):
    # rows where the label model abstained carry NULL probs: their hard label is used; rows with
    # neither are left out
    con.sql(
        "CREATE TABLE t AS SELECT (i % 10) / 10.0 AS x, "
        "CASE WHEN i % 7 = 0 THEN NULL WHEN i % 10 >= 5 THEN 'b' ELSE 'a' END AS label, "
        "CASE WHEN i % 3 = 0 THEN NULL WHEN i % 10 >= 5 THEN [0.1, 0.9] ELSE [0.9, 0.1] END::FLOAT[] AS probs "
        "FROM range(2100) r(i)"
    )
    (summary,) = con.sql(
        "CREATE MODEL m WITH (soft_label := 'probs', epochs := 5, lr := 0.05) AS SELECT x, label, probs FROM t"
    ).fetchall()
    kept = con.sql("SELECT count(*) FROM t WHERE label IS NOT NULL OR probs IS NOT NULL").fetchall()[0][0]
    assert summary[6] == kept < 2100
    assert con.sql("SELECT accuracy FROM ml_evaluate('m', 'SELECT x, label FROM t WHERE label IS NOT NULL')").fetchall()[0][0] > 0.95


def test_soft_label_width_must_match_classes(con):
    from sqlml.errors import DataError

    con.sql("CREATE TABLE t AS SELECT i % 2 AS x, (i % 2)::VARCHAR AS label, [0.2, 0.3, 0.5]::FLOAT[3] AS probs FROM range(10) r(i)")
    with pytest.raises(DataError, match="3 probabilities per row, but there are 2 classes"):
        con.sql("CREATE MODEL m WITH (soft_label := 'probs') AS SELECT x, label, probs FROM t")


def test_soft_labels_in_a_non_sorted_class_order_are_caught(noisy):
    from sqlml.errors import DataError

    # probs are ordered ['late', 'on_time']; sorted names would be the same here, so flip them
    noisy.sql("CREATE TABLE flipped AS SELECT x1, x2, label, [probs[2], probs[1]]::FLOAT[2] AS probs FROM train")
    with pytest.raises(DataError, match=r"agrees with the label in only .* they look ordered as \['on_time', 'late'\]"):
        noisy.sql("CREATE MODEL m WITH (soft_label := 'probs') AS SELECT x1, x2, label, probs FROM flipped")
    noisy.sql(
        "CREATE MODEL m WITH (soft_label := 'probs', classes := ['on_time', 'late'], epochs := 1) "
        "AS SELECT x1, x2, label, probs FROM flipped"
    )
