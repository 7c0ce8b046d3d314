"""ml_lf_summary and friends: Snorkel's LFAnalysis definitions, in plain SQL."""

import duckdb
import numpy as np
import pytest

import sqlml
from sqlml.macros import macro_statements

#      lf0 lf1 lf2  gold
HAND = [
    (0, 0, -1, 0),
    (1, 0, -1, 1),
    (-1, -1, -1, 0),
    (1, -1, 1, 1),
    (0, -1, 1, None),
    (-1, 1, 1, 0),
]


def matrix_table(con, rows, name="m", k=2):
    m = len(rows[0]) - 1
    values = ", ".join(
        "(" + ", ".join([str(i)] + [str(v) for v in r[:-1]] + ["NULL" if r[-1] is None else str(r[-1])]) + ")"
        for i, r in enumerate(rows)
    )
    cols = ", ".join(["id"] + [f"l{j}" for j in range(m)] + ["gold"])
    con.sql(f"CREATE TABLE {name} AS SELECT * FROM (VALUES {values}) AS t({cols})")
    classes = ", ".join(f"'c{c}'" for c in range(k))
    for j in range(m):
        with_classes = f" WITH (classes := [{classes}])" if j == 0 else ""
        con.sql(f"CREATE LABELING FUNCTION lf{j} ON {name}{with_classes} AS nullif(l{j}, -1)")
    con.sql(f"APPLY LABELING FUNCTIONS ON {name} KEY id")


def test_summary_by_hand(con):
    matrix_table(con, HAND)
    rows = con.sql("SELECT lf, polarity, coverage, overlap, conflict, correct, incorrect, emp_accuracy "
                   "FROM ml_lf_summary('m', gold := 'gold')").fetchall()
    assert rows == [
        ("lf0", ["c0", "c1"], 4 / 6, 4 / 6, 2 / 6, 3, 0, 1.0),
        ("lf1", ["c0", "c1"], 3 / 6, 3 / 6, 1 / 6, 1, 2, pytest.approx(1 / 3)),
        ("lf2", ["c1"], 3 / 6, 3 / 6, 1 / 6, 1, 1, 0.5),
    ]
    # without gold the gold columns stay empty
    assert con.sql("SELECT correct, incorrect, emp_accuracy FROM ml_lf_summary('m')").fetchall() == [(None,) * 3] * 3
    assert con.sql("FROM ml_label_stats('m')").fetchall() == [(6, 5 / 6, 5 / 6, 2 / 6)]


def test_gold_as_class_names(con):
    con.sql("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a', 'x'), (2, 'b', 'x'), (3, 'b', 'y')) AS t(id, v, g)")
    con.sql("CREATE LABELING FUNCTION f ON t WITH (classes := ['x', 'y']) AS CASE WHEN v = 'b' THEN 'y' END")
    con.sql("APPLY LABELING FUNCTIONS ON t KEY id")
    assert con.sql("SELECT correct, incorrect, emp_accuracy FROM ml_lf_summary('t', gold := 'g')").fetchall() == [(1, 1, 0.5)]


def snorkel_summary(L, Y):
    """LFAnalysis definitions (snorkel/labeling/analysis.py), restated in numpy."""
    n, m = L.shape
    votes = L != -1
    n_votes = votes.sum(axis=1)
    labels_per_row = np.array([len(set(r[r != -1])) for r in L])
    out = []
    for j in range(m):
        v = votes[:, j]
        gold = Y != -1
        correct = int((v & gold & (L[:, j] == Y)).sum())
        incorrect = int((v & gold & (L[:, j] != Y)).sum())
        out.append(dict(
            polarity=sorted(set(L[v, j].tolist())),
            coverage=v.mean(),
            overlaps=(v & (n_votes >= 2)).mean(),
            conflicts=(v & (labels_per_row >= 2)).mean(),
            correct=correct,
            incorrect=incorrect,
            emp=correct / (correct + incorrect) if correct + incorrect else 0.0,
        ))
    return out


def test_agrees_with_snorkel_definitions_on_random_votes(con):
    rng = np.random.default_rng(3)
    n, m, k = 300, 5, 3
    L = np.where(rng.random((n, m)) < 0.4, rng.integers(0, k, (n, m)), -1)
    Y = np.where(rng.random(n) < 0.7, rng.integers(0, k, n), -1)
    rows = [tuple(L[i].tolist()) + (None if Y[i] == -1 else int(Y[i]),) for i in range(n)]
    matrix_table(con, rows, k=k)
    got = con.sql("SELECT polarity, coverage, overlap, conflict, correct, incorrect, emp_accuracy "
                  "FROM ml_lf_summary('m', gold := 'gold')").fetchall()
    for row, want in zip(got, snorkel_summary(L, Y), strict=True):
        assert row[0] == [f"c{c}" for c in want["polarity"]]
        assert row[1:4] == pytest.approx((want["coverage"], want["overlaps"], want["conflicts"]))
        assert row[4:6] == (want["correct"], want["incorrect"])
        assert row[6] == pytest.approx(want["emp"])


def test_learned_accuracy_after_a_label_model(con):
    matrix_table(con, HAND * 5)
    assert con.sql("SELECT learned_accuracy FROM ml_lf_summary('m')").fetchall() == [(None,)] * 3
    con.sql("CREATE LABEL MODEL lm ON m WITH (method := 'dawid_skene')")
    learned = [r[0] for r in con.sql("SELECT learned_accuracy FROM ml_lf_summary('m')").fetchall()]
    assert all(0 <= a <= 1 for a in learned)
    props = con.sql("SELECT properties->'lf_accuracies' FROM ml_catalog(kind := 'label model')").fetchall()[0][0]
    assert learned == pytest.approx([float(x) for x in __import__("json").loads(props).values()])


def test_majority_vote_macro(con):
    matrix_table(con, HAND)
    assert con.sql("FROM ml_majority_vote('m') ORDER BY id").fetchall() == [
        (0, "c0", 2, 2), (1, "c0", 1, 2), (3, "c1", 2, 2), (4, "c0", 1, 2), (5, "c1", 2, 2),
    ]


def test_macros_run_in_plain_duckdb(db_path):
    con = sqlml.connect(db_path)
    matrix_table(con, HAND)
    con.close()
    plain = duckdb.connect(db_path)
    for statement in macro_statements():
        plain.execute(statement)
    rows = plain.execute("SELECT lf, coverage, correct FROM ml_lf_summary('m', gold := 'gold')").fetchall()
    assert rows == [("lf0", 4 / 6, 3), ("lf1", 3 / 6, 1), ("lf2", 3 / 6, 1)]
    plain.close()


def test_macros_run_in_the_official_duckdb_shell(db_path):
    """duckdb-cli 1.5.x reads a file sqlml wrote and runs the labeling macros on it."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "duckdb"
    cli = str(beside) if beside.exists() else shutil.which("duckdb")
    if cli is None:
        pytest.skip("the duckdb CLI is not installed (pip install -e '.[test]')")
    con = sqlml.connect(db_path)
    matrix_table(con, HAND)
    con.close()
    macros = Path(__file__).resolve().parents[2] / "sql" / "macros"
    out = subprocess.run(
        [cli, db_path, "-csv", "-c", f".read {macros / '00_core.sql'}", "-c", f".read {macros / '10_labeling.sql'}",
         "-c", "SELECT lf, correct, incorrect FROM ml_lf_summary('m', gold := 'gold')"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["lf,correct,incorrect", "lf0,3,0", "lf1,1,2", "lf2,1,1"]


def test_summary_before_apply_says_to_apply(con):
    from sqlml.errors import LabelingError

    con.sql("CREATE TABLE t AS SELECT range AS id, range % 3 AS x FROM range(10)")
    con.sql('CREATE TABLE "Odd ""t"" name" AS SELECT 1 AS id')
    con.sql("CREATE LABELING FUNCTION f ON t WITH (classes := ['a', 'b']) AS CASE WHEN x = 1 THEN 'a' END")
    for macro in ("ml_lf_summary", "ml_label_stats", "ml_votes", "ml_majority_vote"):
        with pytest.raises(LabelingError, match=r"table 't' has labeling functions but no votes yet; "
                                                r"run APPLY LABELING FUNCTIONS ON t first"):
            con.sql(f"FROM {macro}('t')").fetchall()
    with pytest.raises(LabelingError, match=r"no labeling functions .* APPLY LABELING FUNCTIONS ON \"Odd \"\"t\"\" name\""):
        con.sql("""FROM ml_lf_summary('Odd "t" name')""")
    with pytest.raises(LabelingError, match="APPLY LABELING FUNCTIONS ON <table> first"):
        con.sql("FROM ml_lf_summary('no_such_table')")
    with pytest.raises(duckdb.CatalogException):  # other catalog errors stay DuckDB's
        con.sql("FROM no_such_table")
    con.sql("APPLY LABELING FUNCTIONS ON t KEY id")
    assert con.sql("SELECT lf, coverage FROM ml_lf_summary('t')").fetchall() == [("f", 0.3)]
