"""The tour's video chapter runs in quick mode and reports what it showed."""

import io
from pathlib import Path

from sqlml.demo import CHAPTERS
from sqlml.demo.tour import run_tour


def test_video_chapter_quick(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLML_DATA", str(tmp_path / "no data here"))  # the fallback: the generated clip only
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
    assert tour.facts["real_clip"] is None and "falls back to its generated clip" in text


def test_video_chapter_on_real_footage_when_the_data_is_there(tmp_path, monkeypatch):
    """The real-footage section runs when the shared data folder is found (here a stand-in: a
    generated clip under the real clip's name, PNet's layout with random weights)."""
    import torch

    from sqlml.incremental.nets import pnet

    from .conftest import static_scene, write_clip

    data = tmp_path / "data"
    (data / "video").mkdir(parents=True)
    (data / "weights").mkdir()
    write_clip(data / "video" / "highway_static.mp4", static_scene(n=30, h=90, w=160, box=12), fps=24, fourcc="mp4v")
    torch.save(pnet().state_dict(), data / "weights" / "pnet.pt")
    monkeypatch.setenv("SQLML_DATA", str(data))
    out = io.StringIO()
    index = CHAPTERS.index("sqlml.demo.ch6_video")
    tour = run_tour(str(tmp_path / "tour.duckdb"), chapters=[0, index], quick=True, stream=out, out_dir=str(tmp_path / "out"))
    text = out.getvalue()
    assert tour.facts["real_clip"] == "highway_static.mp4"
    assert "on highway_static.mp4: whole queries full" in text
    assert tour.facts["real_speedup"] > 0 and 0.0 <= tour.facts["real_face_max_within"] <= 1.0
