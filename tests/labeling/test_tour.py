"""The tour's weak-supervision chapter, in quick mode."""

import io

import sqlml
from sqlml.demo.tour import run_tour


def test_chapter_runs_and_leaves_delay_labels(tmp_path):
    db = str(tmp_path / "tour.duckdb")
    out = io.StringIO()
    tour = run_tour(db, chapters=[0, 1], quick=True, out_dir=str(tmp_path / "out"), stream=out)
    scores = tour.facts["labeling"]
    assert set(scores) == {"label model", "majority vote"}
    assert scores["label model"]["accuracy"] > scores["majority vote"]["accuracy"]
    con = sqlml.connect(db)
    columns = {r[0]: r[1] for r in con.sql("DESCRIBE delay_labels").fetchall()}
    assert columns == {"flight_id": "BIGINT", "label": "VARCHAR", "probs": "FLOAT[2]", "confidence": "FLOAT",
                       "source": "VARCHAR", "weight": "FLOAT"}
    assert {r[0] for r in con.sql("SELECT DISTINCT source FROM delay_labels").fetchall()} == {"gold", "weak", "abstain"}
    learned = con.sql("SELECT count(learned_accuracy) FROM ml_lf_summary('flight_facts')").fetchall()
    assert learned == [(9,)]
    con.close()
    assert "ml_lf_summary" in out.getvalue()
    text = tour.facts["text"]
    assert text["text_model_accuracy"] > text["label_model_accuracy"]  # the end model generalizes past the LFs
    assert text["text_model_accuracy"] > 0.9 and text["coverage"] < 0.95
    assert text["served"] == ["spam", "ham"]
