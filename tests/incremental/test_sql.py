"""The SQL surface: ml_read_video, registry CNNs, ml_video_inference, ml_occlusion_map, ml_frame_tensor."""

import numpy as np
import pytest
import torch

import sqlml
from sqlml.errors import DataError, InvalidOptionError, UnknownObjectError, VideoError
from sqlml.incremental.nets import pnet, vgg_style

from .conftest import static_scene, write_clip
from .test_graph import Untraceable


@pytest.fixture(autouse=True)
def architectures():
    sqlml.register_architecture("test_pnet", pnet, options={"mean": [0.5], "std": [128 / 255]})
    sqlml.register_architecture("test_vgg", vgg_style, options={"width": 0.25, "layers": None, "batch_norm": False})
    sqlml.register_architecture("test_untraceable", lambda shape, n, options: Untraceable())


@pytest.fixture
def scene(tmp_path):
    """A 64x96 fixed-camera clip with a moving square (lossless)."""
    return write_clip(tmp_path / "scene clip.avi", static_scene(n=8, h=64, w=96, box=10))


def import_model(con, tmp_path, name, architecture, factory, classes=None, extra=""):
    weights = tmp_path / f"{architecture}.pt"
    torch.save(factory().state_dict(), weights)
    outputs = f"classes := {classes!r}" if classes else "n_outputs := 2"
    con.sql(
        f"CREATE MODEL {name} WITH (architecture := '{architecture}', weights := '{weights}', "
        f"input_shape := [3, 64, 96], {outputs}{extra})"
    )


def vgg_factory():
    return vgg_style((3, 64, 96), 3, {"layers": [8, 8, "M", 16, 16, "M", 16, "M"]})


def test_read_video_in_sql(con, scene):
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene}', fps := 5, size := [32, 48], start := 0.2, \"end\" := 1.0)")
    rows = con.sql("SELECT video, frame, time_s, height, width, channels, octet_length(image) FROM frames").fetchall()
    assert rows == [(scene, f, pytest.approx(f / 10), 32, 48, 3, 32 * 48 * 3) for f in (2, 4, 6)]
    named = con.sql(f"SELECT DISTINCT video FROM ml_read_video('{scene}', video := 'cam 1', stop := 0.3)").fetchall()
    assert named == [("cam 1",)]


def test_read_video_errors_name_the_file(con, tmp_path):
    with pytest.raises(VideoError, match="missing.mp4"):
        con.sql(f"SELECT * FROM ml_read_video('{tmp_path / 'missing.mp4'}')").fetchall()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError, match="broken.avi"):
        con.sql(f"SELECT count(*) FROM ml_read_video('{broken}')").fetchall()


def test_read_images(con, tmp_path):
    import cv2

    for i in range(2):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((10, 12, 3), 60 * i, np.uint8))
    rows = con.sql(f"SELECT id, height, width, channels FROM ml_read_images('{tmp_path}/img*.png', size := [5, 6])").fetchall()
    assert rows == [(str(tmp_path / "img0.png"), 5, 6, 3), (str(tmp_path / "img1.png"), 5, 6, 3)]
    with pytest.raises(VideoError, match="no image file"):
        con.sql(f"SELECT * FROM ml_read_images('{tmp_path}/none*.png')").fetchall()


def test_video_inference_incremental_equals_full_and_ml_predict(con, tmp_path, scene):
    import_model(con, tmp_path, "clf", "test_vgg", vgg_factory, classes=["a", "b", "c"], extra=", layers := [8, 8, 'M', 16, 16, 'M', 16, 'M']")
    con.sql(f"CREATE TABLE \"my frames\" AS SELECT * FROM ml_read_video('{scene}')")
    columns = "SELECT frame, prediction, probabilities, mode, recomputed FROM "
    full = con.sql(columns + "ml_video_inference('clf', '\"my frames\"', mode := 'full', persist := false)").fetchall()
    inc = con.sql(columns + "ml_video_inference('clf', 'SELECT * FROM \"my frames\"', persist := false)").fetchall()
    tensor = "ml_frame_tensor(image, height, width, channels, 'clf')"
    predicted = con.sql(f"SELECT frame, ml_predict('clf', {tensor}), ml_predict_proba('clf', {tensor}) FROM \"my frames\" ORDER BY frame").fetchall()
    assert [r[0] for r in full] == [r[0] for r in inc] == list(range(8))
    assert {r[3] for r in full} == {"full"} and all(r[4] == 1.0 for r in full)
    assert inc[0][3] == "full" and "incremental" in {r[3] for r in inc[1:]}
    for f, i, p in zip(full, inc, predicted, strict=True):
        assert f[1] == i[1] == p[1]
        assert np.abs(np.array(f[2]) - np.array(i[2])).max() <= 1e-4
        assert np.abs(np.array(f[2]) - np.array(p[2])).max() <= 1e-4
    assert all(0 < r[4] < 1 for r in inc if r[3] == "incremental")


def test_cnn_architecture_trained_from_sql_on_frames(con, tmp_path):
    clip = write_clip(tmp_path / "small.avi", static_scene(n=8, h=24, w=32, box=5))
    con.sql(f"CREATE TABLE frames AS SELECT *, CASE WHEN frame < 4 THEN 'left' ELSE 'right' END AS side FROM ml_read_video('{clip}')")
    con.sql(
        "CREATE MODEL sides WITH (architecture := 'cnn', label := 'side', input_shape := [3, 24, 32], epochs := 2, "
        "channels := [8, 8], progress := false) "
        "AS SELECT CAST(ml_frame_tensor(image, height, width, channels) AS FLOAT[2304]) AS input, side FROM frames"
    )
    via_predict = con.sql("SELECT ml_predict('sides', ml_frame_tensor(image, height, width, channels, 'sides')) FROM frames ORDER BY frame").fetchall()
    via_video = con.sql("SELECT prediction FROM ml_video_inference('sides', 'frames')").fetchall()
    assert via_predict == via_video
    assert {p for (p,) in via_video} <= {"left", "right"}


def test_fully_convolutional_pnet_summaries(con, tmp_path, scene):
    import_model(con, tmp_path, "face", "test_pnet", pnet)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene}')")
    full = con.sql("SELECT summary, output_shape FROM ml_video_inference('face', 'frames', mode := 'full')").fetchall()
    inc = con.sql("SELECT summary, output_shape, mode FROM ml_video_inference('face', 'frames', persist := false)").fetchall()
    assert full[0][1] == [2, 27, 43]  # (64 - 2) / 2 ceil -> 31, then two 3x3 convs: 27 x 43
    assert "incremental" in {r[2] for r in inc}
    for f, i in zip(full, inc, strict=True):
        assert np.abs(np.array(f[0]) - np.array(i[0])).max() <= 1e-4


def test_states_persist_and_resume_across_queries_and_connections(db_path, tmp_path, scene):
    con = sqlml.connect(db_path)
    import_model(con, tmp_path, "face", "test_pnet", pnet)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene}')")
    con.sql("SELECT * FROM ml_video_inference('face', 'SELECT * FROM frames WHERE frame < 4')").fetchall()
    stored = con.sql("SELECT model, version, video, frame, exact FROM sqlml.incremental_states").fetchall()
    assert stored == [("face", 1, scene, 3, True)]
    layers = con.sql("SELECT count(*), sum(octet_length(data)) FROM sqlml.incremental_tensors").fetchall()[0]
    assert layers[0] >= 5 and layers[1] > 0
    again = con.sql("SELECT frame, mode FROM ml_video_inference('face', 'SELECT * FROM frames WHERE frame >= 3')").fetchall()
    assert again[0] == (3, "reuse")  # the hot state is frame 3's
    con.close()
    con = sqlml.connect(db_path)  # nothing hot: resumes from the stored state of frame 7
    rows = con.sql("SELECT frame, mode FROM ml_video_inference('face', 'SELECT * FROM frames WHERE frame >= 7')").fetchall()
    assert rows == [(7, "reuse")]
    con.close()


def test_unsupported_model_runs_full_with_reason(con, tmp_path, scene):
    torch.save(Untraceable().state_dict(), tmp_path / "u.pt")
    con.sql(f"CREATE MODEL odd WITH (architecture := 'test_untraceable', weights := '{tmp_path / 'u.pt'}', input_shape := [3, 64, 96], n_outputs := 4)")
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene}', stop := 0.3)")
    rows = con.sql("SELECT mode, reason, output_shape FROM ml_video_inference('odd', 'frames')").fetchall()
    assert {r[0] for r in rows} == {"full"} and all("traced" in r[1] for r in rows)
    assert rows[0][2] == [4, 64, 96]


def test_occlusion_map_sql(con, tmp_path, scene):
    import_model(con, tmp_path, "clf", "test_vgg", vgg_factory, classes=["a", "b", "c"], extra=", layers := [8, 8, 'M', 16, 16, 'M', 16, 'M']")
    con.sql(f"CREATE TABLE images AS SELECT * FROM ml_read_video('{scene}', stop := 0.2)")
    out = tmp_path / "maps"
    query = (
        "SELECT key, target, target_label, rows, cols, heatmap, mode, png "
        "FROM ml_occlusion_map('clf', 'images', patch := 16, stride := 8, target := 'b', mode := '{}', out_dir := '{}')"
    )
    inc = con.sql(query.format("incremental", out)).fetchall()
    full = con.sql(query.format("full", out)).fetchall()
    assert len(inc) == 2 and [r[0] for r in inc] == [f"{scene}:0", f"{scene}:1"]
    for i, f in zip(inc, full, strict=True):
        assert i[1:5] == f[1:5] == (1, "b", 7, 11)
        assert np.abs(np.array(i[5]) - np.array(f[5])).max() <= 1e-4
        assert (i[6], f[6]) == ("incremental", "full")
    import cv2

    assert cv2.imread(inc[0][7]).shape == (64, 96, 3)
    with pytest.raises(InvalidOptionError, match="'zebra' is not a class"):
        con.sql("SELECT * FROM ml_occlusion_map('clf', 'images', target := 'zebra')").fetchall()


def test_bad_inputs(con, tmp_path, scene):
    import_model(con, tmp_path, "face", "test_pnet", pnet)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene}', stop := 0.2)")
    with pytest.raises(InvalidOptionError, match="mode"):
        con.sql("SELECT * FROM ml_video_inference('face', 'frames', mode := 'fast')").fetchall()
    with pytest.raises(InvalidOptionError, match="tau"):
        con.sql("SELECT * FROM ml_video_inference('face', 'frames', tau := 2.0)").fetchall()
    with pytest.raises(UnknownObjectError, match="fase"):
        con.sql("SELECT * FROM ml_video_inference('fase', 'frames')").fetchall()
    con.sql("CREATE TABLE no_pixels AS SELECT frame, video FROM frames")
    with pytest.raises(DataError, match="image, height, width, channels"):
        con.sql("SELECT * FROM ml_video_inference('face', 'no_pixels')").fetchall()


def test_read_only_connection_infers_without_writing(db_path, tmp_path, scene):
    con = sqlml.connect(db_path)
    import_model(con, tmp_path, "face", "test_pnet", pnet)
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene}', stop := 0.4)")
    con.close()
    con = sqlml.connect(db_path, read_only=True)
    rows = con.sql("SELECT frame, mode FROM ml_video_inference('face', 'frames')").fetchall()
    assert [r[0] for r in rows] == [0, 1, 2, 3]
    assert con.sql("SELECT count(*) FROM sqlml.incremental_states").fetchall() == [(0,)]
    con.close()


def test_gray_model_on_color_frames(con, tmp_path, scene):
    """A model reading [1, H, W] gets the frames in gray, in ml_frame_tensor and ml_video_inference alike."""
    gray = lambda shape, n, options: vgg_style(shape, n, {"layers": [4, "M", 8, "M"]})  # noqa: E731
    sqlml.register_architecture("test_gray", gray)
    torch.save(gray((1, 64, 96), 2, {}).state_dict(), tmp_path / "gray.pt")
    con.sql(f"CREATE MODEL g WITH (architecture := 'test_gray', weights := '{tmp_path / 'gray.pt'}', input_shape := [1, 64, 96], n_outputs := 2)")
    con.sql(f"CREATE TABLE frames AS SELECT * FROM ml_read_video('{scene}', stop := 0.3)")
    video = con.sql("SELECT probabilities FROM ml_video_inference('g', 'frames', mode := 'full')").fetchall()
    direct = con.sql("SELECT ml_predict_proba('g', ml_frame_tensor(image, height, width, channels, 'g')) FROM frames ORDER BY frame").fetchall()
    assert len(video) == 3
    for (a,), (b,) in zip(video, direct, strict=True):
        assert np.abs(np.array(a) - np.array(b)).max() <= 1e-5
    assert len(con.sql("SELECT ml_frame_tensor(image, height, width, channels, 'g') AS t FROM frames LIMIT 1").fetchall()[0][0]) == 64 * 96
