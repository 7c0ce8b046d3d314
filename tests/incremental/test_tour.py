"""The tour's video chapter runs in quick mode and reports what it showed."""

import io
from pathlib import Path

from sqlml.demo import CHAPTERS
from sqlml.demo.tour import run_tour


def test_video_chapter_quick(tmp_path):
    out = io.StringIO()
    index = CHAPTERS.index("sqlml.demo.ch6_video")
    tour = run_tour(str(tmp_path / "tour.duckdb"), chapters=[0, index], quick=True, stream=out, out_dir=str(tmp_path / "out"))
    text = out.getvalue()
    assert "ml_video_inference" in text and "ml_occlusion_map" in text
    assert tour.facts["video_agreement"] == 1.0  # exact mode agrees with full inference on every frame
    assert tour.facts["video_speedup"] > 0
    assert tour.facts["resumed_mode"] in ("reuse", "incremental")  # resumed from the stored state, not a full pass
    png = Path(tour.facts["occlusion_png"])
    assert png.is_file() and png.stat().st_size > 0
