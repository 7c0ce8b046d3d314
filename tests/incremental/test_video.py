"""Video ingest with OpenCV: frames, sampling, sizes, streaming, and errors that name the file."""

import numpy as np
import pytest

from sqlml.errors import InvalidOptionError, VideoError
from sqlml.incremental import video

from .conftest import static_scene, write_clip


def test_frames_round_trip_lossless(clip):
    frames = list(video.iter_frames(clip))
    assert [f.number for f in frames] == list(range(12))
    assert frames[3].time_s == pytest.approx(0.3)
    assert np.array_equal(frames[5].pixels, static_scene()[5])  # RGB, bit-exact with FFV1


def test_probe(clip):
    info = video.probe(clip)
    assert (info.width, info.height, info.frames) == (64, 48, 12)
    assert info.fps == pytest.approx(10.0)


def test_fps_start_stop_and_size(clip):
    frames = list(video.iter_frames(clip, fps=5, start=0.2, stop=1.0, size=[24, 32]))
    assert [f.number for f in frames] == [2, 4, 6, 8]
    assert frames[0].pixels.shape == (24, 32, 3)
    square = next(video.iter_frames(clip, size=16))
    assert square.pixels.shape == (16, 16, 3)


def test_arrow_batches_stream(clip):
    batches = list(video.frame_batches(clip, batch_frames=5, video="cam1"))
    assert [b.num_rows for b in batches] == [5, 5, 2]
    row = batches[1].to_pylist()[0]
    assert row["video"] == "cam1" and row["frame"] == 5
    assert (row["height"], row["width"], row["channels"]) == (48, 64, 3)
    assert np.array_equal(video.pixels(row["image"], 48, 64, 3), static_scene()[5])


def test_load_video_into_a_table(con, clip):
    assert video.load_video(con, clip, "my frames", fps=5) == 6
    rows = con.sql('SELECT frame, octet_length(image) FROM "my frames" ORDER BY frame').fetchall()
    assert rows == [(f, 48 * 64 * 3) for f in range(0, 12, 2)]


def test_mjpg_clip_decodes(tmp_path):
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    smooth = np.stack([np.tile(ramp, (48, 1))] * 3, axis=-1)
    path = write_clip(tmp_path / "clip.avi", [smooth] * 4, fourcc="MJPG")
    frames = list(video.iter_frames(path))
    assert len(frames) == 4
    assert np.abs(frames[0].pixels.astype(int) - smooth).mean() < 4  # lossy, but close


def test_missing_file_is_named(tmp_path):
    missing = str(tmp_path / "nope.mp4")
    with pytest.raises(VideoError, match="nope.mp4.*does not exist") as caught:
        list(video.iter_frames(missing))
    assert caught.value.path == missing


def test_undecodable_file_is_named(tmp_path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError, match="broken.mp4"):
        list(video.iter_frames(str(garbage)))
    with pytest.raises(VideoError, match="directory"):
        video.probe(str(tmp_path))


def test_bad_options():
    with pytest.raises(InvalidOptionError, match="size"):
        video.parse_size([1, 2, 3])
    with pytest.raises(InvalidOptionError, match="fps"):
        list(video.iter_frames(__file__, fps=0))


def test_pixels_checks_the_blob_size():
    with pytest.raises(VideoError, match="does not match"):
        video.pixels(b"\x00" * 10, 2, 2, 3)


def test_load_video_statement_streams_into_a_table(con, clip):
    shown = con.sql(f"LOAD VIDEO '{clip}' INTO \"cam frames\" WITH (fps := 5, size := [24, 32], video := 'cam 1')").fetchall()
    assert shown == [("cam 1", "cam frames", 6)]
    rows = con.sql('SELECT video, frame, height, width FROM "cam frames" ORDER BY frame').fetchall()
    assert rows == [("cam 1", f, 24, 32) for f in range(0, 12, 2)]
    with pytest.raises(Exception, match="already exists"):
        con.sql(f"LOAD VIDEO '{clip}' INTO \"cam frames\"")
    con.sql(f"LOAD VIDEO '{clip}' INTO \"cam frames\" WITH (replace := true, stop := 0.3)")
    assert con.sql('SELECT count(*) FROM "cam frames"').fetchall() == [(3,)]


def test_load_video_statement_errors(con, tmp_path):
    from sqlml.errors import SqlmlSyntaxError

    with pytest.raises(VideoError, match="gone.mp4"):
        con.sql(f"LOAD VIDEO '{tmp_path / 'gone.mp4'}' INTO frames")
    with pytest.raises(InvalidOptionError, match="fsp"):
        con.sql(f"LOAD VIDEO '{tmp_path / 'gone.mp4'}' INTO frames WITH (fsp := 5)")
    with pytest.raises(SqlmlSyntaxError, match="INTO"):
        con.sql("LOAD VIDEO 'x.mp4' frames")
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'frames'").fetchall() == [(0,)]
