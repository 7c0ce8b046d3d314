"""The training chapter of the tour runs in quick mode and compares the three label sources."""

import io

from sqlml.demo import CHAPTERS
from sqlml.demo.tour import run_tour


def test_training_chapter_quick(tmp_path):
    chapters = [0, CHAPTERS.index("sqlml.demo.ch3_training")]
    out = io.StringIO()
    tour = run_tour(str(tmp_path / "tour.duckdb"), chapters=chapters, quick=True, out_dir=str(tmp_path), stream=out)
    results = tour.facts["training"]
    assert set(results) == {"delay_gold", "delay_majority_vote", "delay_clf"}
    rows = {r["rows"] for r in results.values()}
    assert len(rows) == 1 and rows.pop() > 10_000  # the same later month for every model
    for metrics in results.values():
        assert 0.5 < metrics["accuracy"] <= 1 and 0 < metrics["log_loss"] and 0 <= metrics["recall"] <= 1
    if tour.facts["labels_from"] == "this chapter":
        # hard majority labels are overconfident; the label model's probabilities are not
        assert results["delay_clf"]["log_loss"] < results["delay_majority_vote"]["log_loss"]
    text = out.getvalue()
    assert "CREATE OR REPLACE MODEL delay_clf" in text and "ml_predict_proba('delay_clf'" in text
