"""The tour's data-validation chapter runs in quick mode and finds what it says it finds."""

import io

from sqlml.demo import CHAPTERS
from sqlml.demo.tour import run_tour


def test_validation_chapter_quick(tmp_path):
    out = io.StringIO()
    chapter = CHAPTERS.index("sqlml.demo.ch2_validation")
    tour = run_tour(str(tmp_path / "tour.duckdb"), chapters=[0, chapter], quick=True, out_dir=str(tmp_path / "out"), stream=out)
    facts = tour.facts["validation"]
    assert "FEATURE_TYPE_LOW_FRACTION_PRESENT" in facts["feb_dep_time"]
    assert facts["storm_dep_time"] == ["FEATURE_TYPE_LOW_FRACTION_PRESENT"]
    assert any(d.startswith("ACK") for d in facts["july_new_destinations"])
    assert facts["clean_anomalies"] == [0, 0]
    assert facts["merged_spans"] == 3
    text = out.getvalue()
    assert "ALTER DATA SCHEMA flights_schema ACCEPT flights_2013_07" in text and "domain_added" in text
