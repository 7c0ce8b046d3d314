"""CREATE / DROP LABEL MODEL: the output table, gold, catalog, bad input."""

import json

import numpy as np
import pyarrow as pa
import pytest

from sqlml.errors import DataError, InvalidOptionError, LabelingError, ObjectExistsError, UnknownObjectError


def synthetic_table(con, n=3000, m=6, k=2, seed=0, name="syn", balance=None):
    rng = np.random.default_rng(seed)
    balance = np.full(k, 1 / k) if balance is None else np.asarray(balance)
    y = rng.choice(k, n, p=balance)
    cols = {"id": np.arange(n), "truth": y}
    for j in range(m):
        wrong = (y + rng.integers(1, k, n)) % k
        acc = 0.6 + 0.3 * j / m
        cols[f"l{j}"] = np.where(rng.random(n) < 0.4, np.where(rng.random(n) < acc, y, wrong), -1)
    con.register("__src", pa.table(cols))
    con.sql(f"CREATE TABLE {name} AS FROM __src")
    con.unregister("__src")
    classes = ", ".join(f"'c{c}'" for c in range(k))
    for j in range(m):
        with_classes = f" WITH (classes := [{classes}])" if j == 0 else ""
        con.sql(f"CREATE LABELING FUNCTION {name}_lf{j} ON {name}{with_classes} AS nullif(l{j}, -1)")
    return y


def test_output_table(con):
    y = synthetic_table(con)
    shown = con.sql("CREATE LABEL MODEL syn_labels ON syn KEY id WITH (seed := 0)").fetchall()
    assert shown[0][:2] == ("syn_labels", "label_model")
    described = {r[0]: r[1] for r in con.sql("DESCRIBE syn_labels").fetchall()}
    assert described == {
        "id": "BIGINT", "label": "VARCHAR", "probs": "FLOAT[2]", "confidence": "FLOAT", "source": "VARCHAR",
        "weight": "FLOAT",
    }
    rows = con.sql("SELECT id, label, probs, confidence, source, weight FROM syn_labels ORDER BY id").fetchall()
    assert len(rows) == len(y)
    pred = np.array([int(r[1][1]) for r in rows])
    assert (pred == y).mean() > 0.75
    for _, label, probs, confidence, source, weight in rows:
        assert sum(probs) == pytest.approx(1, abs=1e-5)
        assert confidence == pytest.approx(max(probs))
        assert label == f"c{int(np.argmax(probs))}" or probs[0] == probs[1]
        if source == "abstain":
            assert weight == 0
        else:
            assert source == "weak" and 0 <= weight < 1
    assert {r[4] for r in rows} == {"weak", "abstain"}


def test_all_abstain_rows_get_the_class_balance_and_no_weight(con):
    con.sql("CREATE TABLE t AS SELECT range AS id, range % 4 = 0 AS flag FROM range(40)")
    con.sql("CREATE LABELING FUNCTION a ON t WITH (classes := ['no', 'yes']) AS CASE WHEN flag THEN 'yes' END")
    con.sql("CREATE LABELING FUNCTION b ON t AS CASE WHEN flag THEN 'yes' END")
    con.sql("CREATE LABELING FUNCTION c ON t AS CASE WHEN id = 1 THEN 'no' END")
    con.sql("CREATE LABEL MODEL lm ON t KEY id WITH (method := 'majority', class_balance := [0.8, 0.2])")
    abstain = con.sql("SELECT DISTINCT label, probs, weight FROM lm WHERE source = 'abstain'").fetchall()
    assert abstain == [("no", pytest.approx((0.8, 0.2)), 0.0)]
    assert con.sql("SELECT count(*) FROM lm WHERE source = 'abstain'").fetchall() == [(29,)]


def test_gold_overrides_and_is_counted(con):
    y = synthetic_table(con)
    con.sql("ALTER TABLE syn ADD COLUMN expert VARCHAR")
    con.sql("UPDATE syn SET expert = 'c' || truth WHERE id < 200")
    con.sql("CREATE LABEL MODEL lm ON syn KEY id GOLD expert WITH (method := 'dawid_skene', anchor := true)")
    gold_rows = con.sql("SELECT id, label, probs, source, weight FROM lm WHERE id < 200 ORDER BY id").fetchall()
    assert all(r[3] == "gold" and r[4] == 1.0 and r[1] == f"c{y[r[0]]}" and max(r[2]) == 1.0 for r in gold_rows)
    assert con.sql("SELECT max(weight) FROM lm WHERE source = 'weak'").fetchall()[0][0] < 1.0
    props = json.loads(con.sql("SELECT properties FROM ml_catalog(kind := 'label model')").fetchall()[0][0])
    assert props["gold_rows"] == 200 and props["gold"] == "expert"
    assert props["method"] == "dawid_skene" and props["options"] == {"method": "dawid_skene", "anchor": True}
    assert set(props["lf_accuracies"]) == {f"syn_lf{j}" for j in range(6)}
    assert props["fit_seconds"] >= 0 and props["rows"] == 3000
    assert abs(props["class_balance"][0] - (y == 0).mean()) < 0.05


@pytest.mark.parametrize("method", ["label_model", "majority", "dawid_skene", "triplet"])
def test_every_method_multiclass(con, method):
    y = synthetic_table(con, n=2000, m=8, k=6, seed=2)
    con.sql(f"CREATE LABEL MODEL lm ON syn KEY id WITH (method := '{method}', seed := 3)")
    probs = con.sql("SELECT probs FROM lm ORDER BY id").fetchnumpy()["probs"]
    pred = np.array([np.argmax(p) for p in probs])
    assert (pred == y).mean() > 0.6
    assert con.sql("SELECT typeof(probs) FROM lm LIMIT 1").fetchall() == [("FLOAT[6]",)]


def test_deterministic_for_a_seed(con):
    synthetic_table(con, k=3)
    con.sql("CREATE LABEL MODEL a ON syn KEY id WITH (seed := 5)")
    con.sql("CREATE LABEL MODEL b ON syn KEY id WITH (seed := 5)")
    assert con.sql("SELECT count(*) FROM a JOIN b USING (id) WHERE a.probs <> b.probs").fetchall() == [(0,)]


def test_or_replace_and_drop(con):
    synthetic_table(con)
    con.sql("CREATE LABEL MODEL lm ON syn KEY id")
    with pytest.raises(ObjectExistsError):
        con.sql("CREATE LABEL MODEL lm ON syn KEY id")
    con.sql("CREATE OR REPLACE LABEL MODEL lm ON syn KEY id WITH (method := 'triplet')")
    assert "triplet" in con.sql("SELECT properties FROM ml_catalog(kind := 'label model')").fetchall()[0][0]
    con.sql("DROP LABEL MODEL lm")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'lm'").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM sqlml.label_model_lfs").fetchall() == [(0,)]
    con.sql("DROP LABEL MODEL IF EXISTS lm")
    with pytest.raises(UnknownObjectError):
        con.sql("DROP LABEL MODEL lm")


def test_refuses_to_overwrite_a_plain_table(con):
    synthetic_table(con)
    con.sql("CREATE TABLE taken AS SELECT 1 AS x")
    with pytest.raises(DataError, match="not a label model"):
        con.sql("CREATE OR REPLACE LABEL MODEL taken ON syn KEY id")
    assert con.sql("SELECT * FROM taken").fetchall() == [(1,)]


def test_bad_options_and_classes(con):
    synthetic_table(con)
    with pytest.raises(InvalidOptionError, match="unknown method 'snorkel'"):
        con.sql("CREATE LABEL MODEL lm ON syn KEY id WITH (method := 'snorkel')")
    with pytest.raises(InvalidOptionError, match="epochz"):
        con.sql("CREATE LABEL MODEL lm ON syn KEY id WITH (epochz := 3)")
    with pytest.raises(InvalidOptionError, match="class_balance"):
        con.sql("CREATE LABEL MODEL lm ON syn KEY id WITH (class_balance := [1.0])")
    with pytest.raises(LabelingError, match="differ from the classes"):
        con.sql("CREATE LABEL MODEL lm ON syn KEY id WITH (classes := ['x', 'y'])")
    with pytest.raises(DataError, match="no gold column 'nope'"):
        con.sql("CREATE LABEL MODEL lm ON syn KEY id GOLD nope")
    with pytest.raises(UnknownObjectError, match="labeled table"):
        con.sql("CREATE LABEL MODEL lm ON nothing KEY id")
    # nothing of the failed statements remains
    assert con.sql("SELECT count(*) FROM ml_catalog(kind := 'label model')").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'lm'").fetchall() == [(0,)]


def test_class_balance_policies(con):
    synthetic_table(con, balance=[0.85, 0.15])
    con.sql("ALTER TABLE syn ADD COLUMN expert INTEGER")
    con.sql("UPDATE syn SET expert = truth WHERE id < 300")
    con.sql("CREATE LABEL MODEL u ON syn KEY id WITH (class_balance := 'uniform')")
    con.sql("CREATE LABEL MODEL g ON syn KEY id GOLD expert WITH (class_balance := 'gold')")
    con.sql("CREATE LABEL MODEL e ON syn KEY id")
    balances = dict(
        (r[0], json.loads(r[1])["class_balance"])
        for r in con.sql("SELECT name, properties FROM ml_catalog(kind := 'label model')").fetchall()
    )
    assert balances["u"] == [0.5, 0.5]
    assert balances["g"][0] == pytest.approx(0.85, abs=0.06)
    assert balances["e"][0] == pytest.approx(0.85, abs=0.06)


def test_empty_table(con):
    con.sql("CREATE TABLE empty (id INTEGER, x INTEGER)")
    con.sql("CREATE LABELING FUNCTION f ON empty WITH (classes := ['a', 'b']) AS CASE WHEN x > 1 THEN 'a' END")
    with pytest.raises(DataError, match="no rows"):
        con.sql("CREATE LABEL MODEL lm ON empty KEY id")


def test_new_rows_are_labeled_on_refit(con):
    synthetic_table(con, n=500)
    con.sql("CREATE LABEL MODEL lm ON syn KEY id")
    con.sql("INSERT INTO syn SELECT id + 1000, truth, l0, l1, l2, l3, l4, l5 FROM syn WHERE id < 10")
    con.sql("CREATE OR REPLACE LABEL MODEL lm ON syn")
    assert con.sql("SELECT count(*) FROM lm").fetchall() == [(510,)]


@pytest.mark.parametrize("m", [6, 40])  # 40 binary LFs: patterns as code lists, not one BIGINT
def test_rows_in_slices_give_the_same_table(con, monkeypatch, m):
    from sqlml.labeling import fit

    synthetic_table(con, n=1200, m=m)
    con.sql("ALTER TABLE syn ADD COLUMN expert VARCHAR")
    con.sql("UPDATE syn SET expert = 'c' || truth WHERE id % 7 = 0")
    con.sql("INSERT INTO syn (id, truth) VALUES (5000, 0), (5001, 1)")  # no votes at all
    con.sql("UPDATE syn SET expert = 'c1' WHERE id = 5001")
    con.sql("CREATE LABEL MODEL whole ON syn KEY id GOLD expert WITH (seed := 1)")
    monkeypatch.setattr(fit, "ROWS_PER_PASS", 100)  # 13 passes over hash(key) % 13
    con.sql("CREATE LABEL MODEL sliced ON syn KEY id GOLD expert WITH (seed := 1)")
    assert con.sql("SELECT count(*) FROM sliced").fetchall() == [(1202,)]
    differ = con.sql("SELECT count(*) FROM (FROM whole EXCEPT ALL FROM sliced UNION ALL (FROM sliced EXCEPT ALL FROM whole))")
    assert differ.fetchall() == [(0,)]
    assert con.sql("SELECT id, source, weight FROM sliced WHERE id = 5001 AND label = 'c1'").fetchall() == [
        (5001, "gold", 1.0)
    ]
    assert con.sql("SELECT source, weight FROM sliced WHERE id = 5000").fetchall() == [("abstain", 0.0)]
    assert con.sql("SELECT count(*) FROM sliced WHERE source = 'gold'").fetchall() == [(1 + len(range(0, 1200, 7)),)]
