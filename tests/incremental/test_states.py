"""Materialized states: stored in DuckDB, read back, reused by a later query, never misused."""

import numpy as np
import torch

import sqlml
from sqlml.incremental import states
from sqlml.incremental.engine import State
from sqlml.incremental.graph import compile_model
from sqlml.incremental.inference import Preprocess, VideoQuery, infer_frames

from .conftest import static_scene
from .test_engine import eager_cost, small_vgg


def test_save_and_load_round_trip(con):
    tensors = {"x": torch.rand(1, 3, 8, 8), "relu": torch.rand(1, 4, 4, 4)}
    key = states.StateKey("m", 1, "cam", "sig")
    io = states.StateIO()
    written = states.save(con.duckdb, key, State(tensors, None, frame=7, key_frame=3), io=io)
    assert written == (3 * 64 + 64) * 4 and io.bytes_written == written
    loaded = states.load(con.duckdb, key, frame=9, io=io)
    assert loaded.frame == 7 and loaded.key_frame == 3 and loaded.exact
    assert all(torch.equal(loaded.tensors[k], tensors[k]) for k in tensors)
    loaded.tensors["x"][0, 0, 0, 0] = 5.0  # writable: updates splice into it
    assert io.loaded == 1 and io.seconds_reading > 0
    row = con.sql("SELECT model, version, video, frame, layers, bytes FROM sqlml.incremental_states").fetchall()
    assert row == [("m", 1, "cam", 7, 2, written)]


def test_other_signature_or_video_is_not_used(con):
    key = states.StateKey("m", 1, "cam", "sig")
    states.save(con.duckdb, key, State({"x": torch.zeros(1, 1, 2, 2)}, None, frame=0))
    assert states.load(con.duckdb, states.StateKey("m", 1, "cam", "other weights")) is None
    assert states.load(con.duckdb, states.StateKey("m", 2, "cam", "sig")) is None
    assert states.load(con.duckdb, states.StateKey("m", 1, "cam2", "sig")) is None


def test_nearest_earlier_frame_and_pruning(con):
    key = states.StateKey("m", 1, "cam", "sig")
    for frame in (10, 20, 30, 40, 50):
        states.save(con.duckdb, key, State({"x": torch.full((1, 1, 2, 2), float(frame))}, None, frame=frame), keep=3)
    kept = [r[0] for r in con.sql("SELECT frame FROM sqlml.incremental_states ORDER BY frame").fetchall()]
    assert kept == [30, 40, 50]
    assert con.sql("SELECT count(DISTINCT frame) FROM sqlml.incremental_tensors").fetchall() == [(3,)]
    assert states.load(con.duckdb, key, frame=45).frame == 40
    assert states.load(con.duckdb, key, frame=5).frame == 30  # none before: the nearest after
    assert states.drop(con.duckdb, "m", video="cam") == 3
    assert states.load(con.duckdb, key) is None


def _query(program, duck, hot=None, **options):
    return VideoQuery(program, model="vgg", version=1, preprocess=Preprocess(), duck=duck, hot=hot,
                      io=states.StateIO(), cost_factory=eager_cost, **options)  # fmt: skip


def test_state_reused_across_queries_and_connections(db_path):
    model = small_vgg()
    frames = [("cam", i, f) for i, f in enumerate(static_scene(n=8, h=48, w=48))]
    program = compile_model(model, (3, 48, 48))
    con = sqlml.connect(db_path)
    first = list(infer_frames(_query(program, con.duckdb), frames[:4]))
    assert [r["mode"] for r in first] == ["full", "incremental", "incremental", "incremental"]
    con.close()

    con = sqlml.connect(db_path)  # a new connection: no hot state, the stored one
    query = _query(program, con.duckdb)
    second = list(infer_frames(query, frames[3:]))
    assert query.io.loaded == 1 and query.io.bytes_read > 0
    assert second[0]["mode"] == "reuse"  # frame 3 is the stored state's frame
    assert [r["mode"] for r in second[1:]] == ["incremental"] * 4
    with torch.inference_mode():
        for row, (_, _, pixels) in zip(second, frames[3:], strict=True):
            want = model(Preprocess().tensor(pixels)).softmax(1)[0]
            assert torch.allclose(torch.tensor(row["probabilities"]), want, atol=1e-5)
    stored = con.sql("SELECT frame, exact FROM sqlml.incremental_states").fetchall()
    assert (7, True) in stored
    con.close()


def test_hot_state_skips_the_database(con):
    model = small_vgg()
    frames = [("cam", i, f) for i, f in enumerate(static_scene(n=6, h=48, w=48))]
    program = compile_model(model, (3, 48, 48))
    hot = states.HotStates()
    list(infer_frames(_query(program, None, hot=hot), frames[:3]))
    assert len(hot) == 1
    rows = list(infer_frames(_query(program, None, hot=hot), frames[3:]))
    assert [r["mode"] for r in rows] == ["incremental"] * 3


def test_other_weights_do_not_resume(db_path):
    frames = [("cam", i, f) for i, f in enumerate(static_scene(n=3, h=48, w=48))]
    con = sqlml.connect(db_path)
    list(infer_frames(_query(compile_model(small_vgg(), (3, 48, 48)), con.duckdb), frames))
    torch.manual_seed(1)
    other = compile_model(small_vgg(), (3, 48, 48))  # same architecture, other weights
    rows = list(infer_frames(_query(other, con.duckdb), frames))
    assert rows[0]["mode"] == "full" and "first frame" in rows[0]["reason"]
    con.close()


def test_exact_query_never_resumes_an_approximate_state(con):
    model = small_vgg()
    frames = [("cam", i, f) for i, f in enumerate(static_scene(n=6, h=48, w=48))]
    program = compile_model(model, (3, 48, 48))
    hot = states.HotStates()
    list(infer_frames(_query(program, con.duckdb, hot=hot, threshold=30.0), frames[:3]))
    stored = con.sql("SELECT exact FROM sqlml.incremental_states").fetchall()
    assert stored == [(False,)]
    rows = list(infer_frames(_query(program, con.duckdb, hot=hot), frames[3:]))  # exact: neither hot nor stored state
    assert rows[0]["mode"] == "full" and "first frame" in rows[0]["reason"]
    approx = list(infer_frames(_query(program, con.duckdb, threshold=30.0), frames[3:]))  # approximate may resume
    assert approx[0]["mode"] != "full"


def test_last_frame_keeps_its_state_even_while_backing_off(con):
    """A query ending inside a run of fallbacks (a moving camera, screened on pixels) still stores
    its last frame's state."""
    from sqlml.incremental.cost import CostModel

    model = small_vgg()
    program = compile_model(model, (3, 48, 48))
    frames = [("cam", i, (np.random.default_rng(i).random((48, 48, 3)) * 255).astype(np.uint8)) for i in range(7)]
    query = VideoQuery(program, model="vgg", preprocess=Preprocess(), duck=con.duckdb, io=states.StateIO(),
                       cost_factory=lambda: CostModel(adaptive=False))  # fmt: skip
    rows = list(infer_frames(query, frames))
    assert [r["mode"] for r in rows] == ["full"] * 7
    assert any(r["reason"].startswith("still moving") for r in rows)  # no state kept while it moves
    assert con.sql("SELECT frame FROM sqlml.incremental_states").fetchall() == [(6,)]
