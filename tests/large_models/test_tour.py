"""The large-models chapter of the tour runs in quick mode: a spilled model over budget, and a grid."""

import io

from sqlml.demo import CHAPTERS
from sqlml.demo.tour import run_tour


def test_large_models_chapter_quick(tmp_path):
    chapters = [0, CHAPTERS.index("sqlml.demo.ch4_large_models")]
    out = io.StringIO()
    tour = run_tour(str(tmp_path / "tour.duckdb"), chapters=chapters, quick=True, out_dir=str(tmp_path), stream=out)
    facts = tour.facts["large_models"]
    assert facts["state_bytes"] > 2 * facts["budget_bytes"]  # the model is well over the device budget
    spill = facts["spill"]
    assert spill["shards"] >= 2 and 0 < spill["peak_resident_bytes"] <= spill["device_memory"] == facts["budget_bytes"]
    assert facts["identical"]  # spilled and resident predict the same probabilities for every flight
    grid = facts["grid"]
    assert len(grid) == 4 and sum(r["best"] for r in grid) == 1
    best = next(r for r in grid if r["best"])
    assert best["value"] == min(r["value"] for r in grid)
    text = out.getvalue()
    assert "ml_memory_estimate" in text and "CREATE OR REPLACE MODELS delay_grid" in text
